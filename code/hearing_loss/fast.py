"""pyclarity's MSBG ``Ear.process`` for one ear, computed faster.

Same stages and arithmetic as ``Ear.process`` (one channel, no calibration
signal): level calibration, outer/middle-ear FIR, temporal smearing, the
gammatone cochlea with recruitment, and the way back to free field with the
18 kHz low-pass. What changes is how they are computed: filters are designed
once per audiogram (``msbg_design``), smearing works on all frames at once,
FIR filters are applied by FFT convolution, and the bands of the cochlea run
as one compiled pass each, one band at a time (``msbg_kernels``). Outputs agree with ``Ear`` to
float64 rounding (FFTs instead of direct sums).
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager

import numpy as np
import scipy.signal
from clarity.evaluator.msbg.msbg_utils import WIN_SECS
from clarity.evaluator.msbg.smearing import FFT_SIZE, FRAME_SIZE, SHIFT

from code.hearing_loss.design import ENVELOPE_PADLEN, MSBG_SAMPLE_RATE, EarDesign
from code.hearing_loss.kernels import cochlea_bands, smear_apply, smear_power

RMS_REL_DB = -12.0  # Ear.process measures the active level 12 dB below the overall RMS
FRAME_CHUNK = 2048  # smearing frames transformed at once
MIN_SAMPLES = 512  # shorter signals break pyclarity's MSBG (smearing frame, band delays)

STAGES = ("level", "outer/middle ear in", "smearing", "cochlea bands", "back to free field")


def simulate_ear(x: np.ndarray, design: EarDesign, stage_times: dict | None = None) -> np.ndarray:
    """``Ear.process(x)[0]`` for a mono float signal, cut to ``len(x)`` samples.

    ``stage_times``, when given, accumulates seconds per entry of ``STAGES``.

    Raises:
        ValueError: when ``x`` is not 1-D, is shorter than ``MIN_SAMPLES``, or is silent.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.shape[0] < MIN_SAMPLES:
        raise ValueError(f"MSBG needs a 1-D signal of at least {MIN_SAMPLES} samples, got shape {x.shape}")
    n = x.shape[0]
    with _timed(stage_times, "level"):
        x = x * _level_gain(x)
    with _timed(stage_times, "outer/middle ear in"):
        x = _fir(design.fir_in, x, n)
    with _timed(stage_times, "smearing"):
        if design.f_smear is not None:
            x = smear(x, design.f_smear)
    with _timed(stage_times, "cochlea bands"):
        x = cochlea_bands(x, design.gt_b, design.gt_a, design.delays, design.use_hp,
                          design.hp_b, design.hp_a, design.env_b, design.env_a, design.env_zi,
                          design.env_max, design.exponent, ENVELOPE_PADLEN)
        x = x * design.recombination_gain
    with _timed(stage_times, "back to free field"):
        return _fir(design.fir_out, x, n)


def _level_gain(x: np.ndarray) -> float:
    """Ear.process's rescaling: the active-speech RMS (frames above overall RMS - 12 dB)
    is set to the overall RMS (as pyclarity's measure_rms, vectorised).

    Raises:
        ValueError: when the signal is silent (MSBG's level is undefined).
    """
    signal_rms_level_db = 10 * np.log10(np.mean(x**2))
    if not np.isfinite(signal_rms_level_db):
        raise ValueError("MSBG cannot calibrate the level of a silent signal")
    win = round(WIN_SECS * MSBG_SAMPLE_RATE)
    first_stage_rms = np.sqrt(np.sum(np.power(x, 2) / len(x)))
    threshold_db = max(20 * np.log10(first_stage_rms) + RMS_REL_DB, -80)
    non_zero = np.power(10, (threshold_db - 30) / 10)
    frames = x[: (len(x) // win) * win].reshape(-1, win)
    frame_db = 10 * np.log10(non_zero + np.sum(np.power(frames, 2), axis=1) / win)
    active = frames[frame_db >= threshold_db].reshape(-1)
    rms = np.sqrt(np.sum(np.power(active, 2)) / len(active))
    change_db = signal_rms_level_db - 20 * np.log10(rms)
    return np.power(10, 0.05 * change_db)


def _fir(b: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    """First ``n`` samples of ``lfilter(b, 1, x)``, by FFT convolution."""
    return scipy.signal.oaconvolve(x[:n], b)[:n]


def smear(x: np.ndarray, f_smear: np.ndarray) -> np.ndarray:
    """pyclarity's ``smear3`` over all frames at once.

    Reproduces its framing exactly, including its quirks: after the first frame,
    input is taken from sample 64 again (so the frame stream is
    ``x[:256] ++ x[64:]``), and the last three output blocks mix in the frame
    four hops before the end. Output length is ``64 * (ceil(len(x) / 64) + 3)``.
    """
    n_frames = math.ceil(len(x) / SHIFT)
    overlaps = FRAME_SIZE // SHIFT
    stream = np.zeros(SHIFT * (n_frames - 1) + FRAME_SIZE)
    head = x[:FRAME_SIZE]
    stream[: len(head)] = head
    rest = x[SHIFT:]
    stream[FRAME_SIZE: FRAME_SIZE + len(rest)] = rest[: len(stream) - FRAME_SIZE]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(1, FRAME_SIZE + 1) - 0.5) / FRAME_SIZE)
    window = window / math.sqrt(1.5)
    frames = np.lib.stride_tricks.sliding_window_view(stream, FRAME_SIZE)[::SHIFT]

    out = np.zeros(SHIFT * (n_frames + overlaps - 1))
    last = np.zeros((overlaps, FRAME_SIZE))  # the final `overlaps` smeared frames, oldest first
    for start in range(0, n_frames, FRAME_CHUNK):
        stop = min(start + FRAME_CHUNK, n_frames)
        smeared = _smear_frames(frames[start:stop], f_smear, window)
        # Overlap-add: frame k adds its i-th hop to output block k + i (blocks < n_frames).
        for i in range(overlaps):
            end = min(stop + i, n_frames)
            if end > start + i:
                hop = smeared[: end - start - i, i * SHIFT:(i + 1) * SHIFT]
                out[SHIFT * (start + i): SHIFT * end] += hop.reshape(-1)
        last = np.concatenate([last, smeared[-overlaps:]])[-overlaps:]
    # smear3's tail: block n_frames + (overlaps-1-k) sums, for i < k, column buffer[i],
    # which holds frame n_frames - overlaps (i = 0) or n_frames - i (i >= 1).
    for k in range(overlaps - 1, 0, -1):
        block = np.zeros(SHIFT)
        j = (overlaps - 1 - k) * SHIFT
        for i in range(k):
            frame = last[0] if i == 0 else last[overlaps - i]
            block += frame[j: j + SHIFT]
            j += SHIFT
        pos = SHIFT * (n_frames + overlaps - 1 - k)
        out[pos: pos + SHIFT] = block
    return out


def _smear_frames(frames: np.ndarray, f_smear: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Smear a stack of input frames; returns the windowed output frames."""
    spectrum = np.fft.rfft(frames * window, FFT_SIZE, axis=1)
    smeared = smear_power(spectrum) @ f_smear.T
    smear_apply(spectrum, smeared)
    return np.fft.irfft(spectrum, FFT_SIZE, axis=1)[:, :FRAME_SIZE] * window


@contextmanager
def _timed(stage_times: dict | None, stage: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        if stage_times is not None:
            stage_times[stage] = stage_times.get(stage, 0.0) + time.perf_counter() - start
