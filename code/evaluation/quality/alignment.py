"""The lag of the cross-correlation peak, as pyclarity's ``envelope_align`` (band by band)
and ``input_align`` (the whole signal, the peak of the correlation's magnitude).

pyclarity takes ``argmax`` of the full float64 cross-correlation (scipy's
``correlate``) within a lag range. Here the correlation is first computed cheaply,
in float32 through batched real FFTs long enough that the searched lags do not
wrap around; every lag whose float32 value could be the true maximum (within an
error bound far above float32's rounding) is then recomputed exactly, as a float64
dot product, and the first of the largest wins, as ``argmax`` picks it. Rows with
too many such candidates (a flat correlation) fall back to float64 FFTs.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.fft

# A lag is a candidate when its float32 correlation is within this fraction of
# ||reference|| ||output|| below the float32 maximum: float32 FFT errors are about
# 1e-7 of that product, so the true maximum is always among the candidates.
CANDIDATE_TOLERANCE = 1e-4
MAX_CANDIDATES = 64  # more than this in a row: recompute the row with float64 FFTs


def fft_length(npts: int, max_lag: int) -> int:
    """Real FFT length for ``npts``-sample rows: no wrap-around within +/- ``max_lag``."""
    return scipy.fft.next_fast_len(npts + min(max_lag, npts), real=True)


@numba.njit(cache=True, nogil=True)
def dot_at(reference: np.ndarray, output: np.ndarray, m: int) -> float:
    """sum_i reference[i + m] * output[i] over the overlap, in eight running sums."""
    npts = reference.shape[0]
    lo = max(0, -m)
    hi = min(npts, npts - m)
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
    i = lo
    while i + 8 <= hi:
        j = i + m
        a0 += reference[j] * output[i]
        a1 += reference[j + 1] * output[i + 1]
        a2 += reference[j + 2] * output[i + 2]
        a3 += reference[j + 3] * output[i + 3]
        a4 += reference[j + 4] * output[i + 4]
        a5 += reference[j + 5] * output[i + 5]
        a6 += reference[j + 6] * output[i + 6]
        a7 += reference[j + 7] * output[i + 7]
        i += 8
    total = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
    while i < hi:
        total += reference[i + m] * output[i]
        i += 1
    return total


@numba.njit(cache=True, nogil=True, inline="always")
def _at(c: np.ndarray, m: int, nfft: int) -> float:
    # The circular correlation at lag m (|m| < nfft), without an integer modulo
    return c[m] if m >= 0 else c[nfft + m]


@numba.njit(cache=True, nogil=True, inline="always")
def _value(c: np.ndarray, m: int, nfft: int, absolute: bool) -> float:
    # The circular correlation at lag m, or its magnitude
    v = _at(c, m, nfft)
    return abs(v) if absolute else v


@numba.njit(cache=True, nogil=True)
def _refine(reference: np.ndarray, output: np.ndarray, corr: np.ndarray, lags: int, top: int,
            tolerance: float, max_candidates: int, absolute: bool, delays: np.ndarray,
            fallback: np.ndarray) -> None:
    # Per row: float32 maximum (of the magnitude, when absolute) over lags -lags+1 ..
    # top, candidates within the error bound, exact float64 values for them, first
    # largest (ascending lag = argmax order)
    rows, nfft = corr.shape
    for k in range(rows):
        c = corr[k]
        best32 = -np.inf
        for m in range(-lags + 1, top + 1):
            best32 = max(best32, _value(c, m, nfft, absolute))
        energy = dot_at(reference[k], reference[k], 0) * dot_at(output[k], output[k], 0)
        floor = best32 - tolerance * np.sqrt(energy)
        count = 0
        for m in range(-lags + 1, top + 1):
            count += _value(c, m, nfft, absolute) >= floor
        if count > max_candidates or not np.isfinite(best32):
            fallback[k] = True
            continue
        fallback[k] = False
        best = -np.inf
        best_m = 0
        for m in range(-lags + 1, top + 1):
            if _value(c, m, nfft, absolute) >= floor:
                v = dot_at(reference[k], output[k], m)
                v = abs(v) if absolute else v
                if v > best:
                    best = v
                    best_m = m
        delays[k] = -best_m


def _float64_delays(reference: np.ndarray, output: np.ndarray, lags: int, nfft: int,
                    workers: int, absolute: bool) -> np.ndarray:
    # The correlation in float64 FFTs, argmax (of the magnitude, when absolute) in
    # pyclarity's window order
    npts = reference.shape[1]
    spectrum = scipy.fft.rfft(reference, nfft, axis=1, workers=workers)
    out = scipy.fft.rfft(output, nfft, axis=1, workers=workers)
    np.conjugate(out, out=out)
    out *= spectrum
    corr = scipy.fft.irfft(out, nfft, axis=1, overwrite_x=True, workers=workers)
    top = lags if lags < npts else npts - 1
    window = np.concatenate((corr[:, nfft - lags + 1:], corr[:, :top + 1]), axis=1)
    if absolute:
        np.abs(window, out=window)
    return (lags - np.argmax(window, axis=1) - 1).astype(np.int64)


def peak_delays(reference: np.ndarray, output: np.ndarray, max_lag: int, *,
                reference32: np.ndarray | None = None, output32: np.ndarray | None = None,
                workers: int = 2, absolute: bool = False) -> np.ndarray:
    """Per row, the shift ``envelope_align`` applies to ``output`` to line it up with ``reference``.

    Parameters:
        reference, output: float64 ``[rows, samples]`` (row k of one against row k of the other).
        max_lag: the lag range in samples (pyclarity's ``lags``, before it is capped at
            the row length).
        reference32, output32: optional float32 copies, ``[rows, fft_length(samples,
            max_lag)]`` zero-padded, when the caller already has them.
        workers: FFT threads.
        absolute: the peak of the correlation's magnitude (``input_align``'s), not of
            the correlation (``envelope_align``'s).

    Returns:
        int64 ``[rows]``: ``delay`` as pyclarity computes it (``lags - argmax - 1``).
    """
    rows, npts = reference.shape
    lags = min(max_lag, npts)
    top = lags if lags < npts else npts - 1
    nfft = fft_length(npts, max_lag)
    if reference32 is None:
        reference32 = reference.astype(np.float32)
    if output32 is None:
        output32 = output.astype(np.float32)
    spectra = scipy.fft.rfft(reference32, nfft, axis=1, workers=workers)
    cross = scipy.fft.rfft(output32, nfft, axis=1, workers=workers)
    np.conjugate(cross, out=cross)
    cross *= spectra
    del spectra
    corr = scipy.fft.irfft(cross, nfft, axis=1, overwrite_x=True, workers=workers)
    delays = np.zeros(rows, dtype=np.int64)
    fallback = np.zeros(rows, dtype=np.bool_)
    _refine(np.ascontiguousarray(reference[:, :npts]), np.ascontiguousarray(output[:, :npts]),
            corr, lags, top, CANDIDATE_TOLERANCE, MAX_CANDIDATES, absolute, delays, fallback)
    if fallback.any():
        delays[fallback] = _float64_delays(reference[fallback], output[fallback], lags, nfft,
                                           workers, absolute)
    return delays


def input_align(reference: np.ndarray, processed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pyclarity's ``eb.input_align`` (24 kHz signals), its delay found by ``peak_delays``.

    The delay of ``processed`` is the peak of the magnitude of the full cross-covariance
    (over the shorter length), backed up by 2 ms; ``processed`` is shifted by it, and
    both are cut to where the reference exceeds 0.001 of its peak, as pyclarity does.
    """
    n = min(len(reference), len(processed))
    ref = reference[:n] - np.mean(reference[:n])
    proc = processed[:n] - np.mean(processed[:n])
    delay = int(peak_delays(ref[None, :], proc[None, :], n, workers=1, absolute=True)[0])
    delay = int(np.rint(delay - 2 * 24000.0 / 1000.0))  # back up 2 ms
    processed_n = len(processed)
    if delay > 0:
        processed = np.concatenate((processed[delay:processed_n], np.zeros(delay)))
    else:
        processed = np.concatenate((np.zeros(-delay), processed[:processed_n + delay]))
    reference_abs = np.abs(reference)
    above = np.where(reference_abs > 0.001 * np.max(reference_abs))[0]
    last = min(above[-1], processed_n)
    return reference[above[0]:last + 1], processed[above[0]:last + 1]
