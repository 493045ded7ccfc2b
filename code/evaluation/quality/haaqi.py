"""HAAQI v1 (music quality for hearing-impaired listeners), fast.

``haaqi`` gives the score of pyclarity's ``clarity.evaluator.haaqi.compute_haaqi``
(which wraps ``haaqi_v1``) for the same arguments, to about 1e-10, many times faster:
the ear model is compiled (``ear``) and so are the segment statistics (``segments``);
the spectral and covariance summaries call pyclarity's own small functions.
"""

from __future__ import annotations

import dataclasses
import logging
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from clarity.evaluator.haspi import eb
from clarity.utils.audiogram import Audiogram

from code.evaluation.quality.cepstrum import melcor9
from code.evaluation.quality.checks import (audiogram_levels, check_sample_rate, check_signal,
                                            is_silent)
from code.evaluation.quality.ear import ear_model
from code.evaluation.quality.segments import bm_covary, env_smooth
from code.evaluation.quality.workspace import thread_workspace

logger = logging.getLogger(__name__)

SILENCE_THRESHOLD_DB = 2.5  # silence threshold summed across bands, dB above threshold
SMOOTH_SEGMENT_MS = 8  # envelope smoothing segment (250 Hz envelope rate)
COVARIANCE_SEGMENT_MS = 16  # BM cross-covariance segment


@dataclasses.dataclass(frozen=True)
class HaaqiResult:
    """HAAQI and its parts, as pyclarity's ``haaqi_v1`` returns them."""

    score: float  # polynomial combination of the two models below, 0..1
    nonlinear: float  # 0.754 * cepstral_high ** 3 + 0.246 * bm_sync5
    linear: float  # 0.329 * d_loud + 0.671 * d_norm
    cepstral_high: float  # envelope modulation correlation, modulation bands 5-8
    bm_sync5: float  # BM (fine structure) coherence with the IHC's loss of sync at 3.5 kHz
    d_loud: float  # 1 - std of the long-term loudness-spectrum difference / 2.5, in 0..1
    d_norm: float  # 1 - std of the normalised spectrum difference / 25, in 0..1


def haaqi_parts(processed: np.ndarray, reference: np.ndarray, processed_sr: float,
                reference_sr: float, audiogram: Audiogram, *, equalisation: int = 1,
                level1: float = 65.0) -> HaaqiResult | None:
    """HAAQI with its components; ``None`` when either signal is silent (see ``haaqi``)."""
    processed = check_signal(processed, "processed")
    reference = check_signal(reference, "reference")
    processed_sr = check_sample_rate(processed_sr, "processed_sr")
    reference_sr = check_sample_rate(reference_sr, "reference_sr")
    if equalisation not in (1, 2):
        raise ValueError(f"expected equalisation 1 (add NAL-R to the reference) or 2 (NAL-R "
                         f"already in it), got {equalisation!r}")
    if not np.isfinite(level1):
        raise ValueError(f"expected a finite level1 (dB SPL of RMS 1), got {level1!r}")
    levels = audiogram_levels(audiogram, "HAAQI")
    if is_silent(processed) or is_silent(reference):
        logger.warning("HAAQI undefined: %s signal is silent or empty",
                       "reference" if is_silent(reference) else "processed")
        return None

    # Only numbers leave this function, so the ear model's arrays can live in this
    # thread's workspace (reused memory: no page faults for the next call)
    ear = ear_model(reference, reference_sr, processed, processed_sr, levels, equalisation,
                    level1, workspace=thread_workspace())
    with ThreadPoolExecutor(1) as pool:
        # The BM coherence (two threads of its own) while the envelopes' statistics run
        # here: the compiled loops release the GIL, so the cores stay busy
        covary_job = pool.submit(bm_covary, ear.reference_bm, ear.processed_bm,
                                 COVARIANCE_SEGMENT_MS, ear.sample_rate)
        reference_smooth = env_smooth(ear.reference_db, SMOOTH_SEGMENT_MS, ear.sample_rate)
        processed_smooth = env_smooth(ear.processed_db, SMOOTH_SEGMENT_MS, ear.sample_rate)
        _, _, cepstral_high, _ = melcor9(reference_smooth, processed_smooth,
                                         SILENCE_THRESHOLD_DB, 0.0, SMOOTH_SEGMENT_MS)
        dloud, dnorm, _ = eb.spectrum_diff(ear.reference_sl, ear.processed_sl)
        covariance, reference_ms, _ = covary_job.result()
    _, ihc_sync_covariance = eb.ave_covary2(covariance, reference_ms, SILENCE_THRESHOLD_DB)
    bm_sync5 = float(ihc_sync_covariance[4])  # with the IHC's loss of synchrony

    d_loud = min(max(1.0 - dloud[1] / 2.5, 0.0), 1.0)
    d_norm = min(max(1.0 - dnorm[1] / 25, 0.0), 1.0)
    nonlinear = 0.754 * (cepstral_high ** 3) + 0.246 * bm_sync5
    linear = 0.329 * d_loud + 0.671 * d_norm
    score = (0.336 * nonlinear + 0.001 * linear + 0.501 * (nonlinear ** 2)
             + 0.161 * (linear ** 2))
    return HaaqiResult(float(score), float(nonlinear), float(linear), float(cepstral_high),
                       bm_sync5, float(d_loud), float(d_norm))


def haaqi(processed: np.ndarray, reference: np.ndarray, processed_sr: float,
          reference_sr: float, audiogram: Audiogram, *, equalisation: int = 1,
          level1: float = 65.0) -> float:
    """HAAQI v1 of ``processed`` against ``reference``: pyclarity's ``compute_haaqi``, fast.

    Parameters:
        processed: 1-D float signal (the hearing-aid output), any length.
        reference: 1-D float signal (the clean reference at its presentation level);
            the longer of the two is cut to the shorter, as pyclarity does.
        processed_sr, reference_sr: their sampling rates in Hz (resampled to 24 kHz).
        audiogram: the listener's ear; it must span 250..6000 Hz (levels between the
            measured frequencies are interpolated, as pyclarity does).
        equalisation: 1 adds NAL-R to the reference here, 2 means it already has it.
        level1: dB SPL of a signal of RMS 1.

    Returns:
        The score in [0, 1]; ``nan`` (missing) when either signal is empty or all
        zeros, where HAAQI is undefined. (pyclarity raises or returns a NaN for a
        silent signal, and 1.0 or 0.0 for empty ones; a silent clip is not scored
        here.) The BM threshold noise comes from numpy's global generator, as in
        pyclarity: ``np.random.seed(s)`` before either gives the same draws.

    Raises:
        ValueError: for a signal that is not 1-D or holds non-finite samples, a sample
            rate that is not positive, an audiogram not spanning 250..6000 Hz, or an
            ``equalisation`` other than 1 or 2.
    """
    result = haaqi_parts(processed, reference, processed_sr, reference_sr, audiogram,
                         equalisation=equalisation, level1=level1)
    return float("nan") if result is None else result.score
