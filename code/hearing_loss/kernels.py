"""Compiled band processing of pyclarity's MSBG cochlea, one fused pass per band.

For each gammatone band, pyclarity's ``Cochlea.simulate`` runs four
``lfilter`` passes of the gammatone stage, a time advance, an optional
high-pass ``lfilter``, a ``filtfilt`` envelope of the rectified band and the
recruitment gain, then sums the bands. Here each band is one compiled pass
with the same recursions as scipy's ``lfilter`` (direct form II transposed,
same operation order), so the filtered bands agree to float64 rounding.
Bands are filtered one at a time into one reused buffer, so memory stays a
few times the signal length; the sum is taken in band order. The loops
release the GIL, so callers can run ears in parallel threads.
"""

from __future__ import annotations

import math

import numba
import numpy as np

ENV_FLOOR = 1e-9  # pyclarity's recruitment floor on the envelope

# Bit-level constants of _power (IEEE 754 doubles).
_MANTISSA = (1 << 52) - 1
_ONE_BITS = 0x3FF0000000000000  # 1.0
_TWO52_BITS = 0x4330000000000000  # 2.0**52
_TWO52 = 4503599627370496.0
_ROUND_MAGIC = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to an integer
_ROUND_MAGIC_BITS = 0x4338000000000000
_SQRT2 = math.sqrt(2.0)
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so that q * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.0 / math.log(2.0)
_INV_FACTORIAL = np.array([1.0 / math.factorial(i) for i in range(14)])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def cochlea_bands(x: np.ndarray, gt_b: np.ndarray, gt_a: np.ndarray, delays: np.ndarray,
                  use_hp: np.ndarray, hp_b: np.ndarray, hp_a: np.ndarray,
                  env_b: np.ndarray, env_a: np.ndarray, env_zi: np.ndarray,
                  env_max: np.ndarray, exponent: np.ndarray, padlen: int) -> np.ndarray:
    """Sum over bands of the recruited gammatone outputs of ``x`` (float64 ``[L]``)."""
    n = x.shape[0]
    total = np.zeros(n)
    band = np.empty(n)
    for k in range(gt_b.shape[0]):
        _band(x, gt_b[k], gt_a[k], delays[k], use_hp[k], hp_b[k], hp_a[k],
              env_b[k], env_a[k], env_zi[k], env_max[k], exponent[k], padlen, band)
        for t in range(n):
            total[t] += band[t]
    return total


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _band(x, b, a, delay, use_hp, hb, ha, eb, ea, ezi, env_max, exponent, padlen, out):
    n = x.shape[0]
    b0, b1, b2, a1, a2 = b[0], b[1], b[2], a[1], a[2]
    hb0, hb1, hb2, ha1, ha2 = hb[0], hb[1], hb[2], ha[1], ha[2]
    eb0, eb1, eb2, ea1, ea2 = eb[0], eb[1], eb[2], ea[1], ea[2]
    env = np.empty(n + 2 * padlen)  # filtfilt's odd-extended envelope, filtered in place
    p0 = p1 = q0 = q1 = r0 = r1 = s0 = s1 = h0 = h1 = z0 = z1 = 0.0
    # One pass: gammatone sample m (four cascaded lfilter stages, DF-II transposed,
    # same operation order), advanced by `delay` to band sample t = m - delay (zeros
    # after the end) through the optional high-pass, and the forward envelope
    # filter on extended sample j = t - padlen (it needs band samples up to padlen).
    for m in range(n + delay):
        y = 0.0
        if m < n:
            v = x[m]
            y = p0 + b0 * v
            p0 = p1 + v * b1 - y * a1
            p1 = v * b2 - y * a2
            v = y
            y = q0 + b0 * v
            q0 = q1 + v * b1 - y * a1
            q1 = v * b2 - y * a2
            v = y
            y = r0 + b0 * v
            r0 = r1 + v * b1 - y * a1
            r1 = v * b2 - y * a2
            v = y
            y = s0 + b0 * v
            s0 = s1 + v * b1 - y * a1
            s1 = v * b2 - y * a2
        if m < delay:
            continue
        t = m - delay
        v = y
        if use_hp:
            y = h0 + hb0 * v
            h0 = h1 + v * hb1 - y * ha1
            h1 = v * hb2 - y * ha2
            v = y
        out[t] = v
        if t < padlen:
            continue
        j = t - padlen
        if j < padlen:
            v = 2 * abs(out[0]) - abs(out[padlen - j])
            if j == 0:
                z0 = ezi[0] * v
                z1 = ezi[1] * v
        else:
            v = abs(out[j - padlen])
        y = z0 + eb0 * v
        z0 = z1 + v * eb1 - y * ea1
        z1 = v * eb2 - y * ea2
        env[j] = y
    # The rest of the forward envelope filter, then the backward one.
    last = abs(out[n - 1])
    for j in range(n - padlen, n + 2 * padlen):
        if j < n + padlen:
            v = abs(out[j - padlen])
        else:
            v = 2 * last - abs(out[n - 2 - (j - n - padlen)])
        y = z0 + eb0 * v
        z0 = z1 + v * eb1 - y * ea1
        z1 = v * eb2 - y * ea2
        env[j] = y
    m = n + 2 * padlen
    v = env[m - 1]
    z0 = ezi[0] * v
    z1 = ezi[1] * v
    for j in range(m - 1, -1, -1):
        v = env[j]
        y = z0 + eb0 * v
        z0 = z1 + v * eb1 - y * ea1
        z1 = v * eb2 - y * ea2
        env[j] = y
    # Recruitment: expand the band by its clipped envelope.
    if exponent == 0.0:
        return
    ratio = env[:n]  # reuses the envelope's storage (read ahead, written behind)
    for t in range(n):
        e = env[padlen + t]
        if e > env_max:
            e = env_max
        if e < ENV_FLOOR:
            e = ENV_FLOOR
        ratio[t] = e / env_max
    _power(ratio, exponent, np.empty(n, np.int64), np.empty(n, np.int64))
    for t in range(n):
        out[t] = out[t] * ratio[t]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _power(ratio, exponent, a, b):
    """``ratio ** exponent`` in place, for ``ratio`` in [1e-12, 1]; ``a``, ``b`` int64 scratch.

    exp(exponent * log(ratio)) from exponent/mantissa bits and polynomials, in loops
    the compiler vectorises (libm's pow is a call per sample). Within 4e-15
    relative of ``**`` (tests/test_hearing_loss.py checks it).
    """
    n = ratio.shape[0]
    rb = ratio.view(np.int64)
    for t in range(n):
        a[t] = (rb[t] & _MANTISSA) | _ONE_BITS  # mantissa, as a double in [1, 2)
        b[t] = _TWO52_BITS | (rb[t] >> 52)  # 2**52 + biased exponent, as a double
    mant = a.view(np.float64)
    expo = b.view(np.float64)
    for t in range(n):
        m = mant[t]
        k = expo[t] - (_TWO52 + 1023.0)
        if m > _SQRT2:
            m = 0.5 * m
            k = k + 1.0
        # log(m) = 2 atanh(s), |s| <= 0.172: series to s**21.
        s = (m - 1.0) / (m + 1.0)
        s2 = s * s
        w = 1.0 / 21.0
        for i in range(19, 0, -2):
            w = w * s2 + 1.0 / i
        log_ratio = k * _LN2_HI + (k * _LN2_LO + 2.0 * s * w)
        y = exponent * log_ratio
        # exp(y) = 2**q * exp(f), q = round(y / ln 2), |f| <= 0.35: Taylor to f**13.
        rounded = y * _INV_LN2 + _ROUND_MAGIC
        q = rounded - _ROUND_MAGIC
        f = (y - q * _LN2_HI) - q * _LN2_LO
        p = _INV_FACTORIAL[13]
        for i in range(12, -1, -1):
            p = p * f + _INV_FACTORIAL[i]
        ratio[t] = p
        expo[t] = rounded
    for t in range(n):
        a[t] = ((b[t] - _ROUND_MAGIC_BITS) + 1023) << 52  # 2**q
    for t in range(n):
        ratio[t] = ratio[t] * mant[t]


@numba.njit(cache=True, nogil=True)
def smear_power(spectrum: np.ndarray) -> np.ndarray:
    """``abs(spectrum) ** 2`` over the first ``spectrum.shape[1] - 1`` bins (smear3's ``mag**2``)."""
    frames, bins = spectrum.shape[0], spectrum.shape[1] - 1
    power = np.empty((frames, bins))
    for i in range(frames):
        for k in range(bins):
            mag = math.hypot(spectrum[i, k].real, spectrum[i, k].imag)
            power[i, k] = mag * mag
    return power


@numba.njit(cache=True, nogil=True)
def smear_apply(spectrum: np.ndarray, smeared: np.ndarray) -> None:
    """smear3's new spectrum, in place: ``sqrt(smeared + 0j)`` with the old phase; Nyquist bin 0."""
    frames, bins = smeared.shape
    for i in range(frames):
        for k in range(bins):
            re, im = spectrum[i, k].real, spectrum[i, k].imag
            mag = math.hypot(re, im)
            if mag == 0.0:
                mag = 1.0
            re, im = re / mag, im / mag
            v = smeared[i, k]
            if v >= 0.0:
                root = math.sqrt(v)
                spectrum[i, k] = complex(root * re, root * im)
            else:
                root = math.sqrt(-v)
                spectrum[i, k] = complex(-(root * im), root * re)
        spectrum[i, bins] = 0.0
