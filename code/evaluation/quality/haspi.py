"""HASPI v2 (speech intelligibility for hearing-impaired listeners), fast.

``haspi_v2`` gives pyclarity's ``clarity.evaluator.haspi.haspi_v2`` for the same
arguments and the same state of numpy's global random generator: the fast ear
model (``ear``, without the BM motion HASPI never reads, though its threshold noise
is still skipped over in the generator), the envelope low-pass evaluated only at
the kept samples, and the modulation features of ``modulation``; pyclarity's own
neural network maps the features to the score.
"""

from __future__ import annotations

import logging

import numpy as np
from clarity.evaluator.haspi.ip import get_neural_net, nn_feed_forward_ensemble
from clarity.utils.audiogram import Audiogram

from code.evaluation.quality.checks import (audiogram_levels, check_sample_rate, check_signal,
                                            is_silent)
from code.evaluation.quality.ear import SAMPLE_RATE, ear_model
from code.evaluation.quality.modulation import (cepstral_correlation_coef, env_filter,
                                                fir_modulation_filter,
                                                modulation_cross_correlation)
from code.evaluation.quality.workspace import thread_workspace

logger = logging.getLogger(__name__)

N_BASIS = 6  # cepstral basis functions
SILENCE_THRESHOLD_DB = 2.5  # dB SL
DITHER_DB = 0.1  # dither added to the envelopes, dB RMS
N_MODULATION_BANDS = 10


def haspi_v2(reference: np.ndarray, reference_sr: float, processed: np.ndarray,
             processed_sr: float, audiogram: Audiogram, *, level1: float = 65.0,
             f_lp: float = 320, itype: int = 0) -> tuple[float, np.ndarray]:
    """HASPI v2 of ``processed`` against ``reference``: pyclarity's ``haspi_v2``, fast.

    Parameters:
        reference: 1-D float clean speech at its presentation level.
        reference_sr: its sampling rate in Hz.
        processed: 1-D float processed signal (cut to the reference's length or the
            reference to its, whichever is shorter, as pyclarity does).
        processed_sr: its sampling rate in Hz.
        audiogram: the listener's ear; it must span 250..6000 Hz (levels between the
            measured frequencies are interpolated, as pyclarity does).
        level1: dB SPL of a signal of RMS 1.
        f_lp: envelope low-pass cutoff in Hz (0 < f_lp <= 3000; the envelopes are
            subsampled at 8 * f_lp).
        itype: 0 intelligibility (reference through a normal ear), as pyclarity.

    Returns:
        ``(score, raw)``: the intelligibility in [0, 1] and the ``[10]`` modulation-band
        correlations the network reads. ``(nan, nan * ones(10))`` (missing) when either
        signal is empty or all zeros, or the reference has at most one segment above
        the silence threshold (pyclarity raises ``ValueError`` there or fails).
        HASPI adds noise from numpy's global generator (the BM threshold noise of the
        ear model, then a 0.1 dB dither of the envelopes): this function advances the
        generator exactly as pyclarity does and draws the same dither, so after the
        same ``np.random.seed(s)`` both give the same score.

    Raises:
        ValueError: for a signal that is not 1-D or holds non-finite samples, a sample
            rate that is not positive, an audiogram not spanning 250..6000 Hz, an
            ``f_lp`` out of range or an ``itype`` other than 0, 1 or 2.
    """
    reference = check_signal(reference, "reference")
    processed = check_signal(processed, "processed")
    reference_sr = check_sample_rate(reference_sr, "reference_sr")
    processed_sr = check_sample_rate(processed_sr, "processed_sr")
    if itype not in (0, 1, 2):
        raise ValueError(f"expected itype 0, 1 or 2, got {itype!r}")
    if not np.isfinite(level1):
        raise ValueError(f"expected a finite level1 (dB SPL of RMS 1), got {level1!r}")
    f_sub = 8.0 * f_lp  # subsample to span 2 octaves above the cutoff frequency
    if not (np.isfinite(f_lp) and f_lp > 0 and f_sub <= SAMPLE_RATE):
        raise ValueError(f"expected 0 < f_lp <= {SAMPLE_RATE / 8:.0f} Hz, got {f_lp!r}")
    levels = audiogram_levels(audiogram, "HASPI")
    missing = (float("nan"), np.full(N_MODULATION_BANDS, np.nan))
    if is_silent(processed) or is_silent(reference):
        logger.warning("HASPI undefined: %s signal is silent or empty",
                       "reference" if is_silent(reference) else "processed")
        return missing

    # Only numbers leave this function: the ear model's arrays live in this thread's workspace
    ear = ear_model(reference, reference_sr, processed, processed_sr, levels, itype, level1,
                    want_bm=False, workspace=thread_workspace())
    reference_lp, processed_lp = env_filter(ear.reference_db, ear.processed_db, f_lp, f_sub,
                                            ear.sample_rate)
    cepstra = cepstral_correlation_coef(reference_lp, processed_lp, SILENCE_THRESHOLD_DB,
                                        DITHER_DB, N_BASIS)
    if cepstra is None:
        logger.warning("HASPI undefined: the reference is below the silence threshold")
        return missing
    reference_mod, processed_mod, _ = fir_modulation_filter(cepstra[0], cepstra[1], f_sub)
    raw = modulation_cross_correlation(reference_mod, processed_mod)
    params, weights_hidden, weights_out, normalization = get_neural_net()
    model = nn_feed_forward_ensemble(raw, params, weights_hidden, weights_out) / normalization
    return float(model[0]), raw
