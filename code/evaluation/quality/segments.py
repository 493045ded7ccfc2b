"""Windowed-segment statistics of the ear model's outputs: ``env_smooth`` and ``bm_covary``.

Both split each band into half-overlapping von Hann segments (the first and last
ones half windows) exactly as pyclarity's ``eb.env_smooth`` and ``eb.bm_covary``
do, but in compiled loops instead of a Python loop per band and segment.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from code.evaluation.quality.alignment import dot_at

_SMALL = 1.0e-30


def _segment_count(npts: int, nwin: int) -> int:
    # pyclarity's segment count for a window of nwin samples and a hop of nwin / 2
    return int(1 + np.floor(npts / nwin) + np.floor((npts - nwin / 2) / nwin))


@numba.njit(cache=True, nogil=True)
def _smooth(envelopes, window, nhalf, nseg, wsum, halfsum, out):
    nchan = envelopes.shape[0]
    nwin = window.shape[0]
    for k in range(nchan):
        r = envelopes[k]
        # first segment: second half of the window on the first nhalf samples
        acc = 0.0
        for i in range(nhalf):
            acc += r[i] * window[nhalf + i]
        out[k, 0] = acc / halfsum
        nstart = 0
        for n in range(1, nseg - 1):
            nstart += nhalf
            # Python's sum() over the products, left to right, as pyclarity does
            acc = 0.0
            for i in range(nwin):
                acc += r[nstart + i] * window[i]
            out[k, n] = acc / wsum
        nstart += nhalf
        acc = 0.0
        for i in range(nhalf):
            acc += r[nstart + i] * window[i]
        out[k, nseg - 1] = acc / halfsum


def env_smooth(envelopes: np.ndarray, segment_size: int, sample_rate: float) -> np.ndarray:
    """Average each band's envelope over half-overlapping von Hann segments.

    Parameters:
        envelopes: float64 ``[bands, samples]`` (dB envelopes of the ear model).
        segment_size: segment length in ms.
        sample_rate: sampling rate of ``envelopes`` in Hz.

    Returns:
        float64 ``[bands, segments]``, equal to pyclarity's ``eb.env_smooth`` (to rounding).
    """
    n_samples = int(np.around(segment_size * (0.001 * sample_rate)))
    n_samples += n_samples % 2
    window = np.hanning(n_samples)
    nhalf = n_samples // 2
    nseg = _segment_count(envelopes.shape[1], n_samples)
    if (nseg - 1) * nhalf + nhalf > envelopes.shape[1] or nseg < 2:
        raise ValueError(f"expected at least {n_samples} samples per band, "
                         f"got {envelopes.shape[1]}")
    out = np.empty((envelopes.shape[0], nseg))
    _smooth(np.asarray(envelopes, dtype=np.float64), window, nhalf, nseg,
            float(np.sum(window)), float(np.sum(window[nhalf:])), out)
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _sum4(a: np.ndarray, n: int) -> float:
    # sum of a[:n] in four running sums (a latency chain a quarter as long)
    s0 = s1 = s2 = s3 = 0.0
    i = 0
    while i + 4 <= n:
        s0 += a[i]
        s1 += a[i + 1]
        s2 += a[i + 2]
        s3 += a[i + 3]
        i += 4
    while i < n:
        s0 += a[i]
        i += 1
    return (s0 + s1) + (s2 + s3)


@numba.njit(cache=True, nogil=True, inline="always")
def _segment_stats(x, y, start, win, maxlag, inv_corr, norm, seg_x, seg_y, pad_x, acc):
    # Zero-mean windowed segments of x and y from ``start``; their mean squares (times
    # ``norm``) and the peak of the unbiased cross-correlation within +/- maxlag.
    n = win.shape[0]
    for i in range(n):
        seg_x[i] = x[start + i] * win[i]
        seg_y[i] = y[start + i] * win[i]
    mx = _sum4(seg_x, n) / n
    my = _sum4(seg_y, n) / n
    for i in range(n):
        seg_x[i] -= mx
        seg_y[i] -= my
        pad_x[maxlag + i] = seg_x[i]
    sx = dot_at(seg_x[:n], seg_x[:n], 0)
    sy = dot_at(seg_y[:n], seg_y[:n], 0)
    for i in range(maxlag):
        pad_x[i] = 0.0
        pad_x[maxlag + n + i] = 0.0
    # correlate(seg_x, seg_y) at lag j - maxlag: sum_i seg_x[i + lag] * seg_y[i]. With
    # seg_x zero-padded by maxlag each side, every lag sums over all i; eight samples
    # at a time are added to all lags, the inner loop over lags in SIMD.
    nlag = 2 * maxlag + 1
    for j in range(nlag):
        acc[j] = 0.0
    i = 0
    while i + 8 <= n:
        y0, y1, y2, y3 = seg_y[i], seg_y[i + 1], seg_y[i + 2], seg_y[i + 3]
        y4, y5, y6, y7 = seg_y[i + 4], seg_y[i + 5], seg_y[i + 6], seg_y[i + 7]
        for j in range(nlag):
            p = i + j
            acc[j] += (((pad_x[p] * y0 + pad_x[p + 1] * y1) + (pad_x[p + 2] * y2 + pad_x[p + 3] * y3))
                       + ((pad_x[p + 4] * y4 + pad_x[p + 5] * y5)
                          + (pad_x[p + 6] * y6 + pad_x[p + 7] * y7)))
        i += 8
    while i < n:
        yi = seg_y[i]
        for j in range(nlag):
            acc[j] += pad_x[i + j] * yi
        i += 1
    peak = 0.0
    for j in range(nlag):
        value = abs(acc[j] * inv_corr[j])
        if value > peak:
            peak = value
    return sx * norm, sy * norm, peak


@numba.njit(cache=True, nogil=True)
def _covary(ref, proc, window, half_window, maxlag, win_corr, half_corr, win_sum2, halfsum2,
            nseg, cov, ref_ms, proc_ms):
    nchan = ref.shape[0]
    nwin = window.shape[0]
    nhalf = nwin // 2
    seg_x = np.empty(nwin)
    seg_y = np.empty(nwin)
    pad_x = np.empty(nwin + 2 * maxlag)
    acc = np.empty(2 * maxlag + 1)
    first_half = window[:nhalf].copy()
    for k in range(nchan):
        x = ref[k]
        y = proc[k]
        for n in range(nseg):
            if n == 0:
                msx, msy, peak = _segment_stats(x, y, 0, half_window, maxlag, half_corr,
                                                halfsum2, seg_x, seg_y, pad_x, acc)
            elif n == nseg - 1:
                msx, msy, peak = _segment_stats(x, y, n * nhalf, first_half, maxlag, half_corr,
                                                halfsum2, seg_x, seg_y, pad_x, acc)
            else:
                msx, msy, peak = _segment_stats(x, y, n * nhalf, window, maxlag,
                                                win_corr, win_sum2, seg_x, seg_y, pad_x, acc)
            if msx > _SMALL and msy > _SMALL:
                cov[k, n] = min(max(peak / np.sqrt(msx * msy), 0.0), 1.0)
            else:
                cov[k, n] = 0.0
            ref_ms[k, n] = 2.0 * msx
            proc_ms[k, n] = 2.0 * msy


def bm_covary(reference_bm: np.ndarray, processed_bm: np.ndarray, segment_size: int,
              sample_rate: float, *, workers: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per band and segment, the normalised cross-covariance of the BM motions.

    Parameters:
        reference_bm, processed_bm: float64 ``[bands, samples]`` BM motion.
        segment_size: segment length in ms.
        sample_rate: sampling rate in Hz.
        workers: threads, each taking a share of the bands.

    Returns:
        ``(cross_covariance, reference_mean_square, processed_mean_square)``, each
        ``[bands, segments]``, equal to pyclarity's ``eb.bm_covary`` (to rounding): the
        peak over +/-1 ms lags of the unbiased cross-correlation of the zero-mean
        windowed segments, over the geometric mean of their mean squares, in [0, 1].
    """
    maxlag = int(np.around(1.0 * (0.001 * sample_rate)))
    nwin = int(np.around(segment_size * (0.001 * sample_rate)))
    nwin += nwin % 2 == 1
    window = np.hanning(nwin)
    nhalf = nwin // 2
    half_window = window[nhalf:nwin].copy()
    if nhalf - 1 - maxlag < 0:
        raise ValueError(f"segment size too small: {segment_size} ms gives {nwin} samples, "
                         f"expected more than {2 * (maxlag + 1)}")
    win_corr = np.correlate(window, window, "full")
    win_corr = 1 / win_corr[nwin - 1 - maxlag:maxlag + nwin]
    half_corr = np.correlate(half_window, half_window, "full")
    half_corr = 1 / half_corr[nhalf - 1 - maxlag:maxlag + nhalf]
    nseg = _segment_count(reference_bm.shape[1], nwin)
    if (nseg - 1) * nhalf + nhalf > reference_bm.shape[1] or nseg < 2:
        raise ValueError(f"expected at least {nwin} samples per band, got {reference_bm.shape[1]}")
    shape = (reference_bm.shape[0], nseg)
    cov, ref_ms, proc_ms = np.empty(shape), np.empty(shape), np.empty(shape)
    ref = np.asarray(reference_bm, dtype=np.float64)
    proc = np.asarray(processed_bm, dtype=np.float64)
    win_sum2, halfsum2 = 1.0 / np.sum(window ** 2), 1.0 / np.sum(half_window ** 2)

    def run(rows: slice) -> None:
        _covary(ref[rows], proc[rows], window, half_window, maxlag, win_corr, half_corr,
                win_sum2, halfsum2, nseg, cov[rows], ref_ms[rows], proc_ms[rows])

    bounds = np.linspace(0, shape[0], max(1, workers) + 1).astype(int)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        list(pool.map(run, [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]))
    return cov, ref_ms, proc_ms
