"""The cochlear model shared by HAAQI and HASPI: pyclarity's ``eb.ear_model``, fast.

Same stages and numbers as ``clarity.evaluator.haspi.eb.ear_model``: resampling to
24 kHz, bulk alignment, optional NAL-R, middle ear, a 32-band gammatone filterbank
with level-dependent bandwidths, OHC compression, envelope alignment, dB SL
conversion, IHC adaptation, threshold noise on the BM motion and group-delay
compensation. The per-band loops are compiled: the gammatone filterbank and the IHC
adaptation advance all bands of a signal together in SIMD lanes (``gammatone``,
``ear_kernels``), and the reference and the processed signal run in two threads. The
bulk alignment and the envelope alignment find their lags with float32 FFTs checked
exactly in float64 (``alignment``). The threshold noise is drawn in a third thread,
as soon as the aligned length is known, from numpy's legacy generator in compiled
code (``legacy_rng``), the same numbers pyclarity draws with
``np.random.standard_normal``. The arrays can live in a ``Workspace`` kept between
calls. Cheap stages (resampling, NAL-R, middle ear, loss parameters) call
pyclarity's own functions.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from clarity.enhancer.nalr import NALR
from clarity.evaluator.haspi import eb
from clarity.utils.audiogram import Audiogram
from scipy.signal import butter, group_delay

from code.evaluation.quality.alignment import fft_length, input_align, peak_delays
from code.evaluation.quality.ear_kernels import (aligned_levels, float32_padded, hair_cells,
                                                 ohc_exponents)
from code.evaluation.quality.gammatone import LANES, gammatone_bands
from code.evaluation.quality.legacy_rng import add_standard_normal, skip_standard_normal
from code.evaluation.quality.workspace import Workspace

SAMPLE_RATE = 24000.0  # the cochlear model's sampling rate (Hz)
AUDIOGRAM_FREQUENCIES = np.array([250, 500, 1000, 2000, 4000, 6000])  # of ``hearing_loss``
ALIGN_RANGE_MS = 100  # envelope alignment searches +/- this lag
IHC_THRESHOLD_DB = -10  # BM threshold noise, dB re auditory threshold
NALR_TAPS = 140  # FIR NAL-R length at 24 kHz (itype 1)
UPPER_KNEE_DB = 100  # OHC compression stops above this level (dB SPL)
OHC_LOWPASS_HZ = 800  # the OHC gain is smoothed by a 1st-order Butterworth at this cutoff
_SMALL = 1e-30  # pyclarity's guard against log(0) and division by 0
_TPT = 2 * np.pi / SAMPLE_RATE
_NONE = np.empty((0, 0))  # gammatone_bands without OHC gains


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


def _aligned_inputs(reference: np.ndarray, reference_sr: float, processed: np.ndarray,
                    processed_sr: float, pool: ThreadPoolExecutor) -> tuple[np.ndarray, np.ndarray]:
    # Resample to 24 kHz (the two signals at once), cut to the shorter, align.
    job = pool.submit(eb.resample_24khz, reference, reference_sr)
    processed_24, _ = eb.resample_24khz(processed, processed_sr)
    reference_24, _ = job.result()
    n = min(len(reference_24), len(processed_24))
    return input_align(reference_24[:n], processed_24[:n])


def _middle_ear_inputs(reference_24: np.ndarray, processed_24: np.ndarray,
                       hearing_loss: np.ndarray, itype: int) -> tuple[np.ndarray, np.ndarray]:
    # NAL-R on the reference (itype 1), then both through the middle ear.
    nsamp = len(reference_24)
    if itype == 1:
        enhancer = NALR(NALR_TAPS, SAMPLE_RATE)
        nalr_fir, _ = enhancer.build(Audiogram(levels=hearing_loss,
                                               frequencies=AUDIOGRAM_FREQUENCIES))
        reference_24 = enhancer.apply(nalr_fir, reference_24)[NALR_TAPS:NALR_TAPS + nsamp]
    return (np.ascontiguousarray(eb.middle_ear(reference_24, SAMPLE_RATE), dtype=np.float64),
            np.ascontiguousarray(eb.middle_ear(processed_24, SAMPLE_RATE), dtype=np.float64))


def _pole(bandwidth: np.ndarray, center_freq: np.ndarray) -> np.ndarray:
    # The gammatone's pole radius per band (any shape), with numpy's exp of each scalar
    # as pyclarity computes it (the filters' fourfold pole turns a last-bit difference
    # into 1e-10 relative).
    erb = 24.7 + (center_freq / 9.26449)
    tpt = 2 * np.pi / SAMPLE_RATE
    return np.array([np.exp(-(bw * tpt * e * 1.019))
                     for bw, e in zip(bandwidth.ravel(), erb.ravel())]).reshape(bandwidth.shape)


def _adjusted_bandwidth(control_rms: np.ndarray, bandwidth_min: np.ndarray,
                        bandwidth_max: np.ndarray, level1: float) -> np.ndarray:
    # pyclarity's bandwidth_adjust per band: from the minimum (below 50 dB SPL) to the
    # maximum (above 100 dB SPL), linear in dB between. Any shape, band by band.
    out = np.empty(control_rms.shape)
    for k in np.ndindex(control_rms.shape):
        control = control_rms[k]
        control_db = 20 * np.log10(control) + level1
        if control_db < 50:
            out[k] = bandwidth_min[k]
        elif control_db > 100:
            out[k] = bandwidth_max[k]
        else:
            out[k] = bandwidth_min[k] + ((control_db - 50) / 50) * (bandwidth_max[k] - bandwidth_min[k])
    return out


def _max_lag() -> int:
    # envelope_align's lag range in samples at the model's rate
    return int(np.rint(0.001 * ALIGN_RANGE_MS * SAMPLE_RATE))


def alignment_delays(reference: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Per band, the shift ``envelope_align`` applies to ``output`` (``[bands, samples]``).

    pyclarity takes the argmax of the full cross-correlation within +/-100 ms; here
    float32 FFTs find the candidate lags and float64 dot products decide among them
    (``alignment.peak_delays``): the same lags, up to float64 rounding.
    """
    return peak_delays(reference, output, _max_lag())


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


def _cochlea(s: int, signals: tuple, stacked: dict, level1: float, want_bm: bool,
             lp: np.ndarray, a_control: np.ndarray, out: dict) -> None:
    """Signal ``s`` through the cochlea, all bands at once (a thread's work).

    The control filters (their envelopes floored at ``_SMALL``), their OHC gains
    (numpy's log10 and exp between the compiled steps: their SIMD loops, as pyclarity
    calls them), the bandwidth for the control level, then the adjusted filters times
    the gains, with float32 copies padded for the alignment's FFTs.
    Writes row ``s`` of ``out``'s band arrays and ``out``'s arrays of signal ``s``.
    """
    x = signals[s]
    gains, scratch = out["gains"][s], out["lanes"][s]
    gammatone_bands(x, stacked["center_freq_control"][s], a_control[s], _TPT, _NONE, lp,
                    False, gains, gains, out["control_average"][s], _SMALL, scratch)
    np.log10(gains, out=gains)
    ohc_exponents(gains, float(level1), stacked["low_knee"][s],
                  1 - (1 / stacked["compression_ratio"][s]), stacked["attn_ohc"][s],
                  float(UPPER_KNEE_DB))
    np.exp(gains, out=gains)  # 10 ** x as exp(x ln 10): numpy's SIMD exp (1e-16 relative)
    out["bandwidth"][s] = _adjusted_bandwidth(out["control_average"][s],
                                              stacked["bandwidth_min"][s],
                                              stacked["bandwidth_control"][s], level1)
    out["pole"][s] = _pole(out["bandwidth"][s], stacked["center_freq"][s])
    env = out["env"][s]
    bm = out["bm"][s] if want_bm else env
    gammatone_bands(x, stacked["center_freq"][s], out["pole"][s], _TPT, gains, lp, want_bm,
                    env, bm, out["average"][s], 0.0, scratch)
    float32_padded(env, out["env32"][s])
    if want_bm:
        float32_padded(bm, out["bm32"][s])


def _hair_cells(s: int, out: dict, env_delay: np.ndarray, bm_delay: np.ndarray,
                offset_db: np.ndarray, want_bm: bool, noise: tuple, correct: np.ndarray) -> None:
    # Signal s's hair cells (a thread's work): alignment shift, numpy's log10 of the
    # level, dB SL, IHC adaptation, noise and group delay, in place
    level = out["gains"][s]  # reused
    env = out["env"][s]
    bm = out["bm"][s] if want_bm else env
    aligned_levels(env, bm, env_delay[s], bm_delay[s], want_bm, _SMALL, level)
    np.log10(level, out=level)
    hair_cells(env, bm, level, offset_db[s], _SMALL, SAMPLE_RATE, want_bm,
               noise[s] if want_bm else env, correct, out["adapted"][s])


def _per_signal(pool: ThreadPoolExecutor, func, *args) -> None:
    # func(0, *args) (the reference) in the pool and func(1, *args) here, at once; waits
    # for both
    job = pool.submit(func, 0, *args)
    try:
        func(1, *args)
    finally:
        job.result()


def _pair(workspace: Workspace, name: str, shape: tuple,
          dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    # One uninitialised array per signal (reference, processed)
    return (workspace.array(f"{name}0", shape, dtype),
            workspace.array(f"{name}1", shape, dtype))


def _threshold_noise(shape: tuple[int, int], gain: float, want_bm: bool,
                     random_state: np.random.RandomState | None, workspace: Workspace) -> tuple:
    # The BM threshold noise of the reference, then of the processed signal, as
    # pyclarity draws it (``gain * np.random.standard_normal((bands, samples))`` twice);
    # without the BM only the generator is advanced.
    if not want_bm:
        skip_standard_normal(2 * shape[0] * shape[1], random_state)
        return np.zeros((1, 1)), np.zeros((1, 1))
    return (add_standard_normal(workspace.zeros("noise0", shape), gain, random_state),
            add_standard_normal(workspace.zeros("noise1", shape), gain, random_state))


def _stacked(ref_params: dict, params: dict, name: str) -> np.ndarray:
    # A band parameter of the reference's ear and the processed signal's, [2, bands]
    return np.ascontiguousarray(np.stack((ref_params[name], params[name])))


def ear_model(reference: np.ndarray, reference_sr: float, processed: np.ndarray,
              processed_sr: float, hearing_loss: np.ndarray, itype: int, level1: float, *,
              nchan: int = 32, shift: float | None = None, want_bm: bool = True,
              random_state: np.random.RandomState | None = None,
              workspace: Workspace | None = None) -> EarOutput:
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
        workspace: where the arrays live; the returned ones are views of it, valid
            until its next use. ``None``: fresh arrays, the caller's to keep.

    Returns:
        EarOutput with the same values as pyclarity's ``ear_model`` (to rounding).
    """
    hearing_loss = np.asarray(hearing_loss, dtype=np.float64)
    workspace = Workspace(keep=False) if workspace is None else workspace
    params = _band_parameters(hearing_loss, nchan, shift)
    ref_params = _band_parameters(np.zeros(len(hearing_loss)), nchan, shift) if itype == 0 else params
    stacked = {name: _stacked(ref_params, params, name) for name in params}
    b, a = butter(1, OHC_LOWPASS_HZ / (0.5 * SAMPLE_RATE))
    noise_gain = 10 ** ((IHC_THRESHOLD_DB - level1) / 20)
    with ThreadPoolExecutor(2) as pool:
        reference_24, processed_24 = _aligned_inputs(reference, reference_sr, processed,
                                                     processed_sr, pool)
        nsamp = len(reference_24)
        # The threshold noise depends only on the length: draw it meanwhile (one
        # thread), while the rest runs here and, in two halves, in the other thread
        noise_job = pool.submit(_threshold_noise, (nchan, nsamp), noise_gain, want_bm,
                                random_state, workspace)
        signals = _middle_ear_inputs(reference_24, processed_24, hearing_loss, itype)
        nfft = fft_length(nsamp, _max_lag())

        # The cochlea, one signal per thread: control filters, OHC gains, bandwidths,
        # adjusted filters times the gains, and float32 copies padded for the
        # alignment's FFTs
        bands, padded = (nchan, nsamp), (nchan, nfft)
        out = {"gains": _pair(workspace, "gains", bands),
               "lanes": _pair(workspace, "lanes", (nsamp, LANES)),
               "adapted": _pair(workspace, "adapted", bands),
               "control_average": np.empty((2, nchan)),
               "bandwidth": np.empty((2, nchan)), "pole": np.empty((2, nchan)),
               "env": _pair(workspace, "env", bands),
               "bm": _pair(workspace, "bm", bands if want_bm else (1, 1)),
               "env32": _pair(workspace, "env32", padded, np.float32),
               "bm32": _pair(workspace, "bm32", padded if want_bm else (1, 1), np.float32),
               "average": np.empty((2, nchan))}
        _per_signal(pool, _cochlea, signals, stacked, level1, want_bm,
                    np.array([b[0], b[1], a[1]]),
                    _pole(stacked["bandwidth_control"], stacked["center_freq_control"]), out)
        env, bm = out["env"], out["bm"]
        env_delay = np.zeros((2, nchan), dtype=np.int64)
        bm_delay = np.zeros((2, nchan), dtype=np.int64)
        # The envelopes' and the BM motions' alignments at once (one thread each)
        env_job = pool.submit(peak_delays, env[0], env[1], _max_lag(),
                              reference32=out["env32"][0], output32=out["env32"][1],
                              workers=1 if want_bm else 2)
        if want_bm:
            bm_delay[1] = peak_delays(bm[0], bm[1], _max_lag(), reference32=out["bm32"][0],
                                      output32=out["bm32"][1], workers=1)
        env_delay[1] = env_job.result()
        if not want_bm:
            bm_delay[1] = env_delay[1]
        del out["env32"], out["bm32"]
        noise = noise_job.result()

        # The hair cells, one signal per thread
        correct = _group_delay_correction(out["bandwidth"][0],
                                          params["center_freq"]).astype(np.int64)
        _per_signal(pool, _hair_cells, out, env_delay, bm_delay, level1 - stacked["attn_ihc"],
                    want_bm, noise, correct)
    average, control_average = out["average"], out["control_average"]
    sl = [eb.convert_rms_to_sl(average[s], control_average[s], p["attn_ohc"], p["low_knee"],
                               p["compression_ratio"], p["attn_ihc"], level1)
          for s, p in enumerate((ref_params, params))]
    return EarOutput(env[0], bm[0] if want_bm else None, env[1], bm[1] if want_bm else None,
                     sl[0], sl[1], SAMPLE_RATE)
