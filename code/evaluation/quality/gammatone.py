"""The ear model's gammatone filterbank, all bands of one signal at once, compiled.

pyclarity's ``gammatone_basilar_membrane`` filters one band at a time: a 4th-order
complex gammatone as one real IIR filter (scipy's transposed direct-form II
``lfilter``) on the signal demodulated by a recursive cosine/sine carrier. Each
band's recursion is latency-bound, but the bands are independent and share their
input sample, so here the bands are the innermost loop: ``LANES`` bands advance
together, sample by sample, in SIMD registers. Every band sees the same floating-
point operations in the same order as pyclarity's (no fused multiply-adds, no
reassociation), so its outputs equal pyclarity's to the bit.

The lane loops index one state and one coefficient array at constant offsets (the
lane count is a compile-time constant), which is what lets the compiler prove the
lanes independent and vectorise them; results go through a small sample-major
buffer and are written out row by row.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from code.evaluation.quality.pairwise import pairwise_sum_columns

LANES = 16  # bands advanced together (a multiple of the SIMD width)
CHUNK = 64  # samples per buffer of outputs, transposed into the band rows

# Offsets (in units of LANES) of the per-band values in the state and coefficient arrays
_Z_REAL, _Z_IMAG, _COS, _SIN, _GAIN_Z, _STATE = 0, 4, 8, 9, 10, 11
_B1, _B2, _C1, _C2, _C3, _C4, _SCALE, _STEP_COS, _STEP_SIN, _COEFFICIENTS = range(10)


@numba.njit(cache=True, nogil=True, inline="always")
def _lane_step(xn: float, state: np.ndarray, co: np.ndarray, out: np.ndarray, t: int,
               with_gain: bool, lp0: float, lp1: float, lpa1: float, gain: np.ndarray) -> None:
    # One sample of LANES bands: the carrier, both lfilter recursions, envelope, BM motion
    # and (with_gain) the low-passed OHC gain times both; the next carrier by rotation.
    # out[t] holds [envelope, BM motion, squared envelope before the gain] per lane.
    L = LANES
    for j in range(L):
        c = state[_COS * L + j]
        s = state[_SIN * L + j]
        b1, b2 = co[_B1 * L + j], co[_B2 * L + j]
        c1, c2, c3, c4 = co[_C1 * L + j], co[_C2 * L + j], co[_C3 * L + j], co[_C4 * L + j]
        xr = xn * c
        yr = xr + state[_Z_REAL * L + j]
        state[_Z_REAL * L + j] = state[(_Z_REAL + 1) * L + j] + xr * b1 - yr * c1
        state[(_Z_REAL + 1) * L + j] = state[(_Z_REAL + 2) * L + j] + xr * b2 - yr * c2
        state[(_Z_REAL + 2) * L + j] = state[(_Z_REAL + 3) * L + j] - yr * c3
        state[(_Z_REAL + 3) * L + j] = -yr * c4
        xi = xn * s
        yi = xi + state[_Z_IMAG * L + j]
        state[_Z_IMAG * L + j] = state[(_Z_IMAG + 1) * L + j] + xi * b1 - yi * c1
        state[(_Z_IMAG + 1) * L + j] = state[(_Z_IMAG + 2) * L + j] + xi * b2 - yi * c2
        state[(_Z_IMAG + 2) * L + j] = state[(_Z_IMAG + 3) * L + j] - yi * c3
        state[(_Z_IMAG + 3) * L + j] = -yi * c4
        scale = co[_SCALE * L + j]
        envelope = scale * math.sqrt(yr * yr + yi * yi)
        out[t, 2 * L + j] = envelope * envelope
        motion = scale * (yr * c + yi * s)
        step_cos, step_sin = co[_STEP_COS * L + j], co[_STEP_SIN * L + j]
        state[_COS * L + j] = c * step_cos + s * step_sin
        state[_SIN * L + j] = s * step_cos - c * step_sin
        if with_gain:
            g = gain[t, j]
            y = state[_GAIN_Z * L + j] + lp0 * g
            state[_GAIN_Z * L + j] = g * lp1 - y * lpa1
            envelope = y * envelope
            motion = y * motion
        out[t, j] = envelope
        out[t, L + j] = motion


@numba.njit(cache=True, nogil=True)
def _group_coefficients(center_freq: np.ndarray, pole: np.ndarray, tpt: float, first: int,
                        state: np.ndarray, co: np.ndarray) -> None:
    # Initial state and coefficients of bands first .. first + LANES - 1 (lanes past the
    # last band are zeros and never written out). The lfilter coefficients, b = [1, b1,
    # b2, 0, 0] and a = [1, -c1, .., -c4], and the gain, as gammatone_basilar_membrane.
    L = LANES
    state[:] = 0.0
    co[:] = 0.0
    for j in range(min(L, center_freq.shape[0] - first)):
        a = pole[first + j]
        a_1 = 4.0 * a
        a_2 = -6.0 * a * a
        a_3 = 4.0 * a * a * a
        a_4 = -a * a * a * a
        a_5 = 4.0 * a * a
        co[_B1 * L + j], co[_B2 * L + j] = a_1, a_5
        co[_C1 * L + j], co[_C2 * L + j] = -a_1, -a_2
        co[_C3 * L + j], co[_C4 * L + j] = -a_3, -a_4
        co[_SCALE * L + j] = 2.0 * (1 - a_1 - a_2 - a_3 - a_4) / (1 + a_1 + a_5)
        co[_STEP_COS * L + j] = math.cos(tpt * center_freq[first + j])
        co[_STEP_SIN * L + j] = math.sin(tpt * center_freq[first + j])
        state[_COS * L + j] = 1.0


@numba.njit(cache=True, nogil=True)
def gammatone_bands(x: np.ndarray, center_freq: np.ndarray, pole: np.ndarray, tpt: float,
                    gains: np.ndarray, lp: np.ndarray, want_bm: bool, env: np.ndarray,
                    bm: np.ndarray, rms: np.ndarray, floor: float, scratch: np.ndarray) -> None:
    """Envelopes (and BM motions) of signal ``x`` in every band, as pyclarity's filters.

    Parameters:
        x: float64 ``[samples]``, the middle-ear output.
        center_freq, pole: ``[bands]`` centre frequencies (Hz) and pole radii,
            ``exp(-tpt * 1.019 * bandwidth * erb)`` computed by the caller with numpy
            (the fourfold pole makes the output sensitive to its last bit).
        tpt: 2 pi / sampling rate.
        gains: ``[bands, samples]`` OHC gains, low-passed here (``lfilter`` with ``lp`` =
            (b0, b1, a1)) and multiplied into the envelope and BM motion, as pyclarity
            applies them after the filter; ``[0, 0]`` for none.
        want_bm: write the BM motion into ``bm`` (``[bands, samples]``; unused otherwise).
        env: ``[bands, samples]`` output: the envelope (times the gain), floored at
            ``floor`` (when above 0).
        rms: ``[bands]`` output: the RMS of the envelope before the gain and the floor,
            as ``np.sqrt(np.mean(envelope ** 2))`` to the bit.
        scratch: ``[samples, LANES]`` float64 workspace (the squared envelopes of a
            group of bands, sample-major, summed in numpy's pairwise order).
    """
    L = LANES
    nchan, nsamp = center_freq.shape[0], x.shape[0]
    with_gain = gains.shape[0] > 0
    lp0, lp1, lpa1 = (lp[0], lp[1], lp[2]) if with_gain else (0.0, 0.0, 0.0)
    state = np.empty(_STATE * L)
    co = np.empty(_COEFFICIENTS * L)
    out = np.empty((CHUNK, 3 * L))
    gain = np.ones((CHUNK, L))
    sums = np.empty(L)
    for first in range(0, nchan, L):
        _group_coefficients(center_freq, pole, tpt, first, state, co)
        lanes = min(L, nchan - first)
        for n0 in range(0, nsamp, CHUNK):
            m = min(CHUNK, nsamp - n0)
            if with_gain:
                for j in range(lanes):
                    row = gains[first + j]
                    for t in range(m):
                        gain[t, j] = row[n0 + t]
                for t in range(m):
                    _lane_step(x[n0 + t], state, co, out, t, True, lp0, lp1, lpa1, gain)
            else:
                for t in range(m):
                    _lane_step(x[n0 + t], state, co, out, t, False, lp0, lp1, lpa1, gain)
            for t in range(m):
                for j in range(L):
                    scratch[n0 + t, j] = out[t, 2 * L + j]
            for j in range(lanes):
                k = first + j
                if floor > 0.0:
                    for t in range(m):
                        env[k, n0 + t] = max(out[t, j], floor)
                else:
                    for t in range(m):
                        env[k, n0 + t] = out[t, j]
                if want_bm:
                    for t in range(m):
                        bm[k, n0 + t] = out[t, L + j]
        pairwise_sum_columns(scratch[:nsamp], sums)
        for j in range(lanes):
            rms[first + j] = math.sqrt(sums[j] / nsamp)
