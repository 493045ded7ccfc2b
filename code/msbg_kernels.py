"""Compiled band processing of pyclarity's MSBG cochlea, one fused pass per band.

For each gammatone band, pyclarity's ``Cochlea.simulate`` runs four
``lfilter`` passes of the gammatone stage, a time advance, an optional
high-pass ``lfilter``, a ``filtfilt`` envelope of the rectified band and the
recruitment gain, then sums the bands. Here each band is one compiled pass
with the same recursions as scipy's ``lfilter`` (direct form II transposed,
same operation order), so the filtered bands agree to float64 rounding.
Bands run in parallel, a fixed number at a time, so memory stays
``chunk * samples`` whatever the signal length; the sum is taken in band order.
"""

from __future__ import annotations

import numba
import numpy as np

ENV_FLOOR = 1e-9  # pyclarity's recruitment floor on the envelope


@numba.njit(cache=True, parallel=True)
def cochlea_bands(x: np.ndarray, gt_b: np.ndarray, gt_a: np.ndarray, delays: np.ndarray,
                  use_hp: np.ndarray, hp_b: np.ndarray, hp_a: np.ndarray,
                  env_b: np.ndarray, env_a: np.ndarray, env_zi: np.ndarray,
                  env_max: np.ndarray, exponent: np.ndarray, padlen: int,
                  chunk: int) -> np.ndarray:
    """Sum over bands of the recruited gammatone outputs of ``x`` (float64 ``[L]``)."""
    n_bands = gt_b.shape[0]
    n = x.shape[0]
    total = np.zeros(n)
    block = np.empty((chunk, n))
    for start in range(0, n_bands, chunk):
        count = min(chunk, n_bands - start)
        for j in numba.prange(count):
            k = start + j
            _band(x, gt_b[k], gt_a[k], delays[k], use_hp[k], hp_b[k], hp_a[k],
                  env_b[k], env_a[k], env_zi[k], env_max[k], exponent[k], padlen, block[j])
        for j in range(count):
            for t in range(n):
                total[t] += block[j, t]
    return total


@numba.njit(cache=True)
def _band(x, b, a, delay, use_hp, hb, ha, eb, ea, ezi, env_max, exponent, padlen, out):
    n = x.shape[0]
    # Four cascaded gammatone stages (lfilter's DF-II transposed, same order).
    b0, b1, b2, a1, a2 = b[0], b[1], b[2], a[1], a[2]
    p0 = p1 = q0 = q1 = r0 = r1 = s0 = s1 = 0.0
    for t in range(n):
        v = x[t]
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
        out[t] = y
    # Time advance by `delay` (zeros shifted in), then the optional high-pass.
    hb0, hb1, hb2, ha1, ha2 = hb[0], hb[1], hb[2], ha[1], ha[2]
    h0 = h1 = 0.0
    for t in range(n):
        v = out[t + delay] if t + delay < n else 0.0
        if use_hp:
            y = h0 + hb0 * v
            h0 = h1 + v * hb1 - y * ha1
            h1 = v * hb2 - y * ha2
            v = y
        out[t] = v
    # Envelope: filtfilt of |band| with odd extension of `padlen` samples.
    m = n + 2 * padlen
    ext = np.empty(m)
    first = abs(out[0])
    last = abs(out[n - 1])
    for i in range(padlen):
        ext[i] = 2 * first - abs(out[padlen - i])
        ext[n + padlen + i] = 2 * last - abs(out[n - 2 - i])
    for t in range(n):
        ext[padlen + t] = abs(out[t])
    eb0, eb1, eb2, ea1, ea2 = eb[0], eb[1], eb[2], ea[1], ea[2]
    x0 = ext[0]
    z0 = ezi[0] * x0
    z1 = ezi[1] * x0
    for t in range(m):
        v = ext[t]
        y = z0 + eb0 * v
        z0 = z1 + v * eb1 - y * ea1
        z1 = v * eb2 - y * ea2
        ext[t] = y
    y0 = ext[m - 1]
    z0 = ezi[0] * y0
    z1 = ezi[1] * y0
    for t in range(m - 1, -1, -1):
        v = ext[t]
        y = z0 + eb0 * v
        z0 = z1 + v * eb1 - y * ea1
        z1 = v * eb2 - y * ea2
        ext[t] = y
    # Recruitment: expand the band by its clipped envelope.
    if exponent == 0.0:
        return
    for t in range(n):
        e = ext[padlen + t]
        if e > env_max:
            e = env_max
        if e < ENV_FLOOR:
            e = ENV_FLOOR
        out[t] = out[t] * (e / env_max) ** exponent
