"""Intrusive intelligibility measures: STOI and eSTOI of each ear against a reference.

The processed signal (what a hearing-aid model wrote) is compared with the
unprocessed excerpt of the same signal. The two may be slightly misaligned and
differ in length (the CLIP data notes both), so they are first aligned: the lag
with the highest cross-correlation within ``MAX_LAG_S`` is removed and both are
cropped to their common length. STOI and eSTOI come from ``pystoi``, which works
at 10 kHz; both signals are resampled there once (with pystoi's own resampler)
and shared by the two measures.
"""

from __future__ import annotations

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft

STOI_RATE = 10000  # pystoi's internal sample rate
MAX_LAG_S = 0.05   # largest misalignment searched for, in seconds


def estimate_lag(reference: np.ndarray, processed: np.ndarray, max_lag: int) -> int:
    """The lag (samples) by which ``processed`` (1-D) trails ``reference`` (1-D):
    ``processed[n + lag] ~ reference[n]``, searched within ``+-max_lag``; 0 when
    either signal is silent."""
    reference = np.asarray(reference, dtype=np.float64)
    processed = np.asarray(processed, dtype=np.float64)
    if not (np.any(reference) and np.any(processed)):
        return 0
    n = next_fast_len(len(reference) + len(processed) - 1, real=True)
    corr = irfft(rfft(processed, n) * np.conj(rfft(reference, n)), n)
    max_lag = int(min(max_lag, len(processed) - 1, len(reference) - 1))
    lags = np.arange(-max_lag, max_lag + 1)
    return int(lags[np.argmax(corr[lags % n])])


def align(reference: np.ndarray, processed: np.ndarray, sample_rate: int, *,
          max_lag_s: float = MAX_LAG_S) -> tuple[np.ndarray, np.ndarray]:
    """Remove the lag between two signals and crop them to their common length.

    Arrays are ``[T]`` or ``[channels, T]`` (time last); one lag, found on the
    channel mean, is applied to all channels.

    Raises:
        ValueError: when the channel counts differ or nothing is left after cropping.
    """
    reference = np.asarray(reference)
    processed = np.asarray(processed)
    if reference.shape[:-1] != processed.shape[:-1]:
        raise ValueError(f"reference {reference.shape} and processed {processed.shape} "
                         "have different channels")
    mono = (lambda a: a.reshape(-1, a.shape[-1]).mean(axis=0))
    lag = estimate_lag(mono(reference), mono(processed), int(round(max_lag_s * sample_rate)))
    if lag > 0:
        processed = processed[..., lag:]
    elif lag < 0:
        reference = reference[..., -lag:]
    length = min(reference.shape[-1], processed.shape[-1])
    if length == 0:
        raise ValueError("nothing left to compare after aligning (a signal is empty or shorter than the lag)")
    return reference[..., :length], processed[..., :length]


def intrusive_features(processed: np.ndarray, reference: np.ndarray, sample_rate: int, *,
                       max_lag_s: float = MAX_LAG_S) -> dict[str, float]:
    """STOI and eSTOI of each ear of ``processed`` (``[2, T]``) against ``reference``
    (``[2, T']``), both at ``sample_rate``, after ``align`` (lags up to ``max_lag_s``,
    the run's ``--stoi-max-lag-s``).

    Returns:
        ``{"stoi.left", "stoi.right", "estoi.left", "estoi.right"}``; pystoi gives
        1e-5 (with a RuntimeWarning) when too little non-silent audio remains.

    Raises:
        ValueError: for arrays that are not ``[2, T]``, or a non-finite measure.
    """
    from pystoi import stoi
    from pystoi.utils import resample_oct

    processed = np.asarray(processed, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    for label, array in (("processed", processed), ("reference", reference)):
        if array.ndim != 2 or array.shape[0] != 2:
            raise ValueError(f"{label} audio must be [2, samples], got shape {array.shape}")
    if sample_rate != STOI_RATE:
        processed = np.stack([resample_oct(ear, STOI_RATE, sample_rate) for ear in processed])
        reference = np.stack([resample_oct(ear, STOI_RATE, sample_rate) for ear in reference])
    reference, processed = align(reference, processed, STOI_RATE, max_lag_s=max_lag_s)
    out: dict[str, float] = {}
    for measure, extended in (("stoi", False), ("estoi", True)):
        for ear, index in (("left", 0), ("right", 1)):
            value = float(stoi(reference[index], processed[index], STOI_RATE, extended=extended))
            if not np.isfinite(value):
                raise ValueError(f"{measure} of the {ear} ear is {value}")
            out[f"{measure}.{ear}"] = value
    return out
