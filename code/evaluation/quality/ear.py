"""The cochlear model shared by HAAQI and HASPI: pyclarity's ``eb.ear_model``, fast.

Same stages and numbers as ``clarity.evaluator.haspi.eb.ear_model``: resampling to
24 kHz, bulk alignment, optional NAL-R, middle ear, a 32-band gammatone filterbank
with level-dependent bandwidths, OHC compression, envelope alignment, dB SL
conversion, IHC adaptation, threshold noise on the BM motion and group-delay
compensation. The per-band loops are compiled (``ear_kernels``) and the reference
and processed signals run in two threads; the envelope alignment's
cross-correlations are batched FFTs over the bands; the threshold noise is drawn
from numpy's legacy generator in compiled code (``legacy_rng``), the same numbers
pyclarity draws with ``np.random.standard_normal``. Cheap stages (resampling, bulk
alignment, NAL-R, middle ear, loss parameters) call pyclarity's own functions.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import scipy.fft
from clarity.enhancer.nalr import NALR
from clarity.evaluator.haspi import eb
from clarity.utils.audiogram import Audiogram
from scipy.signal import butter, group_delay

from code.evaluation.quality.ear_kernels import (apply_smoothed_gain, gammatone, ohc_exponent,
                                                 shifted_plus_small, sl_and_adaptation)
from code.evaluation.quality.legacy_rng import add_standard_normal, skip_standard_normal
from code.evaluation.quality.pairwise import rms

SAMPLE_RATE = 24000.0  # the cochlear model's sampling rate (Hz)
AUDIOGRAM_FREQUENCIES = np.array([250, 500, 1000, 2000, 4000, 6000])  # of ``hearing_loss``
ALIGN_RANGE_MS = 100  # envelope alignment searches +/- this lag
IHC_THRESHOLD_DB = -10  # BM threshold noise, dB re auditory threshold
NALR_TAPS = 140  # FIR NAL-R length at 24 kHz (itype 1)
UPPER_KNEE_DB = 100  # OHC compression stops above this level (dB SPL)
OHC_LOWPASS_HZ = 800  # the OHC gain is smoothed by a 1st-order Butterworth at this cutoff
_SMALL = 1e-30  # pyclarity's guard against log(0) and division by 0
_TPT = 2 * np.pi / SAMPLE_RATE
_LN10 = np.log(10.0)


@dataclasses.dataclass(frozen=True)
class EarOutput:
    """What ``ear_model`` returns; arrays are float64 ``[bands, samples]`` at 24 kHz.

    ``reference_bm`` and ``processed_bm`` are ``None`` when the BM motion was not asked for.
    """

    reference_db: np.ndarray  # envelope, dB above threshold, after IHC adaptation
    reference_bm: np.ndarray | None  # BM motion with the same gains, plus threshold noise
    processed_db: np.ndarray
    processed_bm: np.ndarray | None
    reference_sl: np.ndarray  # ``[bands]`` average compressed level, dB SL
    processed_sl: np.ndarray
    sample_rate: float


def _band_parameters(hearing_loss: np.ndarray, nchan: int, shift: float | None) -> dict:
    # Centre frequencies and OHC/IHC parameters, from pyclarity's own functions.
    center_freq = eb.center_frequency(nchan)
    center_freq_control = eb.center_frequency(nchan, shift)
    _, bandwidth_control, _, _, _ = eb.loss_parameters(np.full(6, 100), center_freq_control)
    attn_ohc, bandwidth_min, low_knee, compression_ratio, attn_ihc = eb.loss_parameters(
        hearing_loss, center_freq)
    as_f64 = lambda a: np.ascontiguousarray(np.broadcast_to(a, (nchan,)), dtype=np.float64)  # noqa: E731
    return {"center_freq": as_f64(center_freq), "center_freq_control": as_f64(center_freq_control),
            "bandwidth_control": as_f64(bandwidth_control), "bandwidth_min": as_f64(bandwidth_min),
            "attn_ohc": as_f64(attn_ohc), "low_knee": as_f64(low_knee),
            "compression_ratio": as_f64(compression_ratio), "attn_ihc": as_f64(attn_ihc)}


def _prepare_inputs(reference: np.ndarray, reference_sr: float, processed: np.ndarray,
                    processed_sr: float, hearing_loss: np.ndarray,
                    itype: int) -> tuple[np.ndarray, np.ndarray]:
    # Resample to 24 kHz, cut to the shorter, align, NAL-R (itype 1), middle ear.
    reference_24, _ = eb.resample_24khz(reference, reference_sr)
    processed_24, _ = eb.resample_24khz(processed, processed_sr)
    n = min(len(reference_24), len(processed_24))
    reference_24, processed_24 = eb.input_align(reference_24[:n], processed_24[:n])
    nsamp = len(reference_24)
    if itype == 1:
        enhancer = NALR(NALR_TAPS, SAMPLE_RATE)
        nalr_fir, _ = enhancer.build(Audiogram(levels=hearing_loss,
                                               frequencies=AUDIOGRAM_FREQUENCIES))
        reference_24 = enhancer.apply(nalr_fir, reference_24)[NALR_TAPS:NALR_TAPS + nsamp]
    return (np.ascontiguousarray(eb.middle_ear(reference_24, SAMPLE_RATE), dtype=np.float64),
            np.ascontiguousarray(eb.middle_ear(processed_24, SAMPLE_RATE), dtype=np.float64))


def _pole(bandwidth: np.ndarray, center_freq: np.ndarray) -> np.ndarray:
    # The gammatone's pole radius per band, with numpy's exp as pyclarity computes it
    # (the filters' fourfold pole turns a last-bit difference into 1e-10 relative).
    erb = 24.7 + (center_freq / 9.26449)
    tpt = 2 * np.pi / SAMPLE_RATE
    return np.array([np.exp(-(bw * tpt * e * 1.019)) for bw, e in zip(bandwidth, erb)])


def _adjusted_bandwidth(control_rms: np.ndarray, bandwidth_min: np.ndarray,
                        bandwidth_max: np.ndarray, level1: float) -> np.ndarray:
    # pyclarity's bandwidth_adjust per band: from the minimum (below 50 dB SPL) to the
    # maximum (above 100 dB SPL), linear in dB between.
    out = np.empty(len(control_rms))
    for k, control in enumerate(control_rms):
        control_db = 20 * np.log10(control) + level1
        if control_db < 50:
            out[k] = bandwidth_min[k]
        elif control_db > 100:
            out[k] = bandwidth_max[k]
        else:
            out[k] = bandwidth_min[k] + ((control_db - 50) / 50) * (bandwidth_max[k] - bandwidth_min[k])
    return out


def alignment_fft_length(npts: int) -> int:
    """FFT length for ``alignment_delays`` of ``npts``-sample bands: no wrap-around in range."""
    lags = min(int(np.rint(0.001 * ALIGN_RANGE_MS * SAMPLE_RATE)), npts)
    return scipy.fft.next_fast_len(npts + lags, real=True)


def alignment_spectrum(bands: np.ndarray, nfft: int, workers: int = 1) -> np.ndarray:
    """Real FFT of every band, length ``nfft`` (no copy when the rows already have it)."""
    return scipy.fft.rfft(bands, nfft, axis=1, workers=workers)


def delays_from_spectra(reference: np.ndarray, output: np.ndarray, npts: int,
                        nfft: int) -> np.ndarray:
    """``alignment_delays`` from the bands' ``alignment_spectrum`` (``output``'s is overwritten)."""
    lags = min(int(np.rint(0.001 * ALIGN_RANGE_MS * SAMPLE_RATE)), npts)
    np.conjugate(output, out=output)
    output *= reference
    corr = scipy.fft.irfft(output, nfft, axis=1, overwrite_x=True)
    # pyclarity's window of the full correlation covers lags -lags+1 .. lags (lags-1 if
    # the signal is that short), first index = most negative lag.
    top = lags if lags < npts else npts - 1
    window = np.concatenate((corr[:, nfft - lags + 1:], corr[:, :top + 1]), axis=1)
    return (lags - np.argmax(window, axis=1) - 1).astype(np.int64)


def alignment_delays(reference: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Per band, the shift ``envelope_align`` applies to ``output`` (``[bands, samples]``).

    pyclarity takes the argmax of the full cross-correlation within +/-100 ms; here
    one batched real FFT per array gives the same lags (exact up to rounding: the
    FFT length leaves no wrap-around in the searched range).
    """
    npts = reference.shape[1]
    nfft = alignment_fft_length(npts)
    return delays_from_spectra(alignment_spectrum(reference, nfft),
                               alignment_spectrum(output, nfft), npts, nfft)


def _group_delay_correction(bandwidths: np.ndarray, center_freq: np.ndarray) -> np.ndarray:
    # Samples to delay each band by to line up the filterbank's group delays
    # (pyclarity's group_delay_compensate).
    erb = 24.7 + center_freq / 9.26449
    a = np.exp(-(2 * np.pi / SAMPLE_RATE) * 1.019 * bandwidths * erb)
    delays = np.zeros(len(bandwidths))
    for n in range(len(bandwidths)):
        b_coef = [1.0, 4.0 * a[n], 4.0 * a[n] ** 2]
        a_coef = [1.0, -4.0 * a[n], 6.0 * a[n] ** 2, -4.0 * a[n] ** 3, a[n] ** 4]
        delays[n] = group_delay((b_coef, a_coef), w=1)[1][0]
    delays = np.rint(delays).astype(int)
    delays -= delays.min()
    return delays.max() - delays


def _delay_rows(signal: np.ndarray, correct: np.ndarray) -> np.ndarray:
    # Delay band k by correct[k] samples in place, zeros in front.
    for k, c in enumerate(correct):
        if c > 0:
            signal[k, c:] = signal[k, :-c].copy()
            signal[k, :c] = 0.0
    return signal


def _cochlea(x: np.ndarray, p: dict, level1: float, want_bm: bool,
             lp: tuple[np.ndarray, np.ndarray], nfft: int) -> dict:
    """Filterbank and OHC compression of one signal (a thread's work).

    Per band: the control envelope (wide filter), the bandwidth for its level, the
    envelope and BM motion of the adjusted filter, both times the OHC gain. The
    recursions are compiled; the level-to-gain maps use numpy's own functions with
    pyclarity's expressions (``bandwidth_adjust``, ``env_compress_basilar_membrane``).
    """
    nchan, nsamp = len(p["center_freq"]), len(x)
    # Envelope and BM rows padded with zeros to the alignment's FFT length
    env_padded = np.zeros((nchan, nfft))
    bm_padded = np.zeros((nchan, nfft)) if want_bm else np.zeros((1, 1))
    out = {"env_padded": env_padded, "env": env_padded[:, :nsamp],
           "bm_padded": bm_padded, "bm": bm_padded[:, :nsamp] if want_bm else bm_padded,
           "bandwidth": np.empty(nchan), "average": np.empty(nchan),
           "control_average": np.empty(nchan)}
    control = np.empty(nsamp)
    level = np.empty(nsamp)
    scratch = np.empty(nsamp)
    dummy = np.empty(1)
    a_control = _pole(p["bandwidth_control"], p["center_freq_control"])
    for k in range(nchan):
        gammatone(x, p["center_freq_control"][k], a_control[k], _TPT, control, dummy, False)
        out["control_average"][k] = rms(control, scratch)
        bandwidth = _adjusted_bandwidth(out["control_average"][k:k + 1], p["bandwidth_min"][k:k + 1],
                                        p["bandwidth_control"][k:k + 1], level1)
        out["bandwidth"][k] = bandwidth[0]
        env = out["env"][k]
        bm = out["bm"][k] if want_bm else dummy
        gammatone(x, p["center_freq"][k], _pole(bandwidth, p["center_freq"][k:k + 1])[0], _TPT,
                  env, bm, want_bm)
        out["average"][k] = rms(env, scratch)
        # OHC gain from the control level: level1 + 20 log10(control), clipped to
        # [low knee, 100 dB], compressed above the knee, in dB -> linear, low-passed
        np.maximum(control, _SMALL, out=level)
        np.log10(level, out=level)
        ohc_exponent(level, float(level1), p["low_knee"][k],
                     1 - (1 / p["compression_ratio"][k]), p["attn_ohc"][k], UPPER_KNEE_DB)
        level *= _LN10  # 10 ** x as exp(x ln 10): numpy's SIMD exp (1e-16 relative)
        np.exp(level, out=level)
        apply_smoothed_gain(level, lp[0][0], lp[0][1], lp[1][1], env, bm, want_bm)
    return out


def _hair_cells(o: dict, env_delay: np.ndarray, bm_delay: np.ndarray, p: dict, level1: float,
                want_bm: bool) -> None:
    """Alignment shift, dB SL and IHC adaptation of one signal's bands, in place (a thread's work).

    Band k of the envelope (BM motion) is first advanced by ``env_delay[k]``
    (``bm_delay[k]``) samples, as pyclarity's ``envelope_align`` shifts it; then
    ``envelope_sl`` and ``inner_hair_cell_adaptation``, with the same gains on the BM.
    """
    nsamp = o["env"].shape[1]
    level = np.empty(nsamp)
    env = np.empty(nsamp)
    bm = np.empty(nsamp)
    for k in range(o["env"].shape[0]):
        shifted_plus_small(o["env"][k], int(env_delay[k]), _SMALL, level, env)
        np.log10(level, out=level)
        if want_bm:
            shifted_plus_small(o["bm"][k], int(bm_delay[k]), 0.0, bm, bm)
        sl_and_adaptation(level, env, bm, level1 - p["attn_ihc"][k], _SMALL, SAMPLE_RATE,
                          want_bm, o["env"][k], o["bm"][k] if want_bm else bm)


def _spectra(out: dict, want_bm: bool, nfft: int) -> tuple:
    # The alignment spectra of one signal's compressed envelope and BM rows (padded)
    env = alignment_spectrum(out.pop("env_padded"), nfft)
    bm = alignment_spectrum(out.pop("bm_padded"), nfft) if want_bm else None
    return env, bm


def _threshold_noise(shape: tuple[int, int], gain: float, want_bm: bool,
                     random_state: np.random.RandomState | None) -> tuple | None:
    # The BM threshold noise of the reference, then of the processed signal, as
    # pyclarity draws it (``gain * np.random.standard_normal(shape)`` twice); without
    # the BM only the generator is advanced.
    if not want_bm:
        skip_standard_normal(2 * shape[0] * shape[1], random_state)
        return None
    return (add_standard_normal(np.zeros(shape), gain, random_state),
            add_standard_normal(np.zeros(shape), gain, random_state))


def ear_model(reference: np.ndarray, reference_sr: float, processed: np.ndarray,
              processed_sr: float, hearing_loss: np.ndarray, itype: int, level1: float, *,
              nchan: int = 32, shift: float | None = None, want_bm: bool = True,
              random_state: np.random.RandomState | None = None) -> EarOutput:
    """Envelopes and BM motion of both signals after the impaired cochlea.

    Parameters:
        reference, processed: float 1-D signals (reference at its presentation level).
        reference_sr, processed_sr: their sampling rates in Hz.
        hearing_loss: dB HL at 250, 500, 1000, 2000, 4000 and 6000 Hz.
        itype: 0 intelligibility (reference through a normal ear), 1 quality with
            NAL-R added to the reference here, 2 quality, NAL-R already in the reference.
        level1: dB SPL of a signal of RMS 1.
        nchan: number of auditory bands.
        shift: basal shift of the control filters (pyclarity's ``shift``).
        want_bm: compute the BM motion (HAAQI needs it, HASPI does not).
        random_state: numpy legacy generator for the BM threshold noise; ``None`` is
            numpy's global one, as in pyclarity. Its noise is drawn (or, without
            ``want_bm``, skipped over) exactly as pyclarity draws it.

    Returns:
        EarOutput with the same values as pyclarity's ``ear_model`` (to rounding).
    """
    hearing_loss = np.asarray(hearing_loss, dtype=np.float64)
    params = _band_parameters(hearing_loss, nchan, shift)
    ref_params = _band_parameters(np.zeros(len(hearing_loss)), nchan, shift) if itype == 0 else params
    ref_mid, proc_mid = _prepare_inputs(reference, reference_sr, processed, processed_sr,
                                        hearing_loss, itype)
    nsamp = len(ref_mid)

    lp = butter(1, OHC_LOWPASS_HZ / (0.5 * SAMPLE_RATE))
    nfft = alignment_fft_length(nsamp)
    noise_gain = 10 ** ((IHC_THRESHOLD_DB - level1) / 20)
    zero = np.zeros(nchan, dtype=np.int64)
    ref_spectra: Future = Future()

    def reference_side() -> dict:
        # The reference's filterbank, its spectra for the alignment (handed over as
        # soon as they exist), then its hair cells: it needs no alignment itself.
        out = _cochlea(ref_mid, ref_params, level1, want_bm, lp, nfft)
        try:
            ref_spectra.set_result(_spectra(out, want_bm, nfft))
        except BaseException as e:
            ref_spectra.set_exception(e)
            raise
        _hair_cells(out, zero, zero, ref_params, level1, want_bm)
        return out

    with ThreadPoolExecutor(2) as pool:
        # The threshold noise does not depend on the signals: draw it meanwhile
        noise_job = pool.submit(_threshold_noise, (nchan, nsamp), noise_gain, want_bm,
                                random_state)
        ref_job = pool.submit(reference_side)
        proc = _cochlea(proc_mid, params, level1, want_bm, lp, nfft)
        proc_spectra = _spectra(proc, want_bm, nfft)
        ref_env_spectrum, ref_bm_spectrum = ref_spectra.result()
        env_delay = delays_from_spectra(ref_env_spectrum, proc_spectra[0], nsamp, nfft)
        bm_delay = (delays_from_spectra(ref_bm_spectrum, proc_spectra[1], nsamp, nfft)
                    if want_bm else env_delay)
        del ref_env_spectrum, ref_bm_spectrum, proc_spectra
        _hair_cells(proc, env_delay, bm_delay, params, level1, want_bm)
        ref = ref_job.result()
        noise = noise_job.result()
    if want_bm:
        ref["bm"] += noise[0]
        proc["bm"] += noise[1]

    correct = _group_delay_correction(ref["bandwidth"], params["center_freq"])
    for signal in ("env", "bm") if want_bm else ("env",):
        _delay_rows(ref[signal], correct)
        _delay_rows(proc[signal], correct)
    reference_sl = eb.convert_rms_to_sl(ref["average"], ref["control_average"],
                                        ref_params["attn_ohc"], ref_params["low_knee"],
                                        ref_params["compression_ratio"], ref_params["attn_ihc"],
                                        level1)
    processed_sl = eb.convert_rms_to_sl(proc["average"], proc["control_average"],
                                        params["attn_ohc"], params["low_knee"],
                                        params["compression_ratio"], params["attn_ihc"], level1)
    return EarOutput(ref["env"], ref["bm"] if want_bm else None, proc["env"],
                     proc["bm"] if want_bm else None, reference_sl, processed_sl, SAMPLE_RATE)
