"""Compiled recursive loops of the cochlear model (pyclarity's ``eb.ear_model`` stages).

The loops that numpy cannot vectorise: the gammatone filter and the IHC
adaptation. They release the GIL, so the reference and the processed signal can
run in two threads, and follow pyclarity's order of operations (scipy's transposed
direct-form II ``lfilter``, the recursive cosine/sine carrier) so that their
outputs agree with pyclarity's to the last bits.
"""

from __future__ import annotations

import math

import numba
import numpy as np



@numba.njit(cache=True, nogil=True)
def gammatone(x: np.ndarray, center_freq: float, a: float, tpt: float,
               env: np.ndarray, bm: np.ndarray, want_bm: bool) -> None:
    """Envelope (and BM motion) of one gammatone band of ``x`` into ``env`` (and ``bm``).

    The 4th-order complex gammatone as one real IIR filter on the demodulated
    signal, as pyclarity's ``gammatone_basilar_membrane``. ``a`` is the pole radius
    ``exp(-tpt * 1.019 * bandwidth * erb)``, computed with numpy by the caller: the
    fourfold pole makes the output sensitive to its last bit. ``tpt`` = 2 pi / rate.
    """
    a_1 = 4.0 * a
    a_2 = -6.0 * a * a
    a_3 = 4.0 * a * a * a
    a_4 = -a * a * a * a
    a_5 = 4.0 * a * a
    gain = 2.0 * (1 - a_1 - a_2 - a_3 - a_4) / (1 + a_1 + a_5)
    # lfilter's coefficients: b = [1, a_1, a_5, 0, 0], a = [1, -a_1, ..., -a_4]
    b1, b2 = a_1, a_5
    c1, c2, c3, c4 = -a_1, -a_2, -a_3, -a_4
    cos_n = math.cos(tpt * center_freq)
    sin_n = math.sin(tpt * center_freq)
    cold = 1.0
    sold = 0.0
    zr0 = zr1 = zr2 = zr3 = 0.0
    zi0 = zi1 = zi2 = zi3 = 0.0
    for n in range(x.shape[0]):
        if n > 0:
            # The carrier by rotation, as pyclarity's gammatone_bandwidth_demodulation
            arg = cold * cos_n + sold * sin_n
            sold = sold * cos_n - cold * sin_n
            cold = arg
        # scipy's lfilter (transposed direct form II), same order of operations
        xr = x[n] * cold
        xi = x[n] * sold
        yr = xr + zr0
        zr0 = zr1 + xr * b1 - yr * c1
        zr1 = zr2 + xr * b2 - yr * c2
        zr2 = zr3 - yr * c3
        zr3 = -yr * c4
        yi = xi + zi0
        zi0 = zi1 + xi * b1 - yi * c1
        zi1 = zi2 + xi * b2 - yi * c2
        zi2 = zi3 - yi * c3
        zi3 = -yi * c4
        env[n] = gain * math.sqrt(yr * yr + yi * yi)
        if want_bm:
            bm[n] = gain * (yr * cold + yi * sold)


@numba.njit(cache=True, nogil=True)
def ihc_adaptation(level_db: np.ndarray, out: np.ndarray, freq_sample: float) -> None:
    """Rapid (2 ms) and short-term (60 ms) IHC adaptation of a dB envelope, overshoot 2.

    pyclarity's ``inner_hair_cell_adaptation`` without its BM gain (applied by the
    caller): ``out`` = max(adapted level, 0).
    """
    delta = 2.0
    tau1 = 0.001 * 2
    tau2 = 0.001 * 60
    freq_sample_inverse = 1 / freq_sample
    r_1 = 1 / delta
    r_2 = 0.5 * (1 - r_1)
    r_3 = r_2
    c_1 = tau1 * (r_1 + r_2) / (r_1 * r_2)
    c_2 = tau2 / ((r_1 + r_2) * r_3)
    a11 = r_1 + r_2 + r_1 * r_2 * (c_1 / freq_sample_inverse)
    a12 = -r_1
    a21 = -r_3
    a22 = r_2 + r_3 + r_2 * r_3 * (c_2 / freq_sample_inverse)
    denom = 1 / ((a11 * a22) - (a21 * a12))
    r_1_inv = 1 / r_1
    product_r1_r2_c1 = r_1 * r_2 * (c_1 / freq_sample_inverse)
    product_r2_r3_c2 = r_2 * r_3 * (c_2 / freq_sample_inverse)
    v_1 = 0.0
    v_2 = 0.0
    for n in range(level_db.shape[0]):
        v_0 = level_db[n]
        b_1 = v_0 * r_2 + product_r1_r2_c1 * v_1
        b_2 = product_r2_r3_c2 * v_2
        v_1 = denom * (a22 * b_1 - a12 * b_2)
        v_2 = denom * (-a21 * b_1 + a11 * b_2)
        out[n] = max((v_0 - v_1) * r_1_inv, 0.0)


@numba.njit(cache=True, nogil=True)
def ohc_exponent(log_control: np.ndarray, level1: float, low_knee: float, slope: float,
                 attn_ohc: float, upper_knee: float) -> None:
    """In place: log10(control) -> OHC gain in dB / 20, as ``env_compress_basilar_membrane``.

    The level ``level1 + 20 log10(control)`` is clipped to [low_knee, upper_knee]; the
    gain is ``-attn_ohc - (level - low_knee) * slope``; the caller takes 10 ** it.
    """
    for n in range(log_control.shape[0]):
        level = log_control[n] * 20 + level1
        level = max(min(level, upper_knee), low_knee)
        log_control[n] = (-attn_ohc - (level - low_knee) * slope) / 20


@numba.njit(cache=True, nogil=True)
def apply_smoothed_gain(gain: np.ndarray, b0: float, b1: float, a1: float, env: np.ndarray,
                        bm: np.ndarray, want_bm: bool) -> None:
    """Multiply ``env`` (and ``bm``) by ``gain`` low-passed with a 1st-order IIR, in place.

    The filter is scipy's ``lfilter(b, a, gain)`` (transposed direct form II, ``a[0] = 1``).
    """
    z = 0.0
    for n in range(gain.shape[0]):
        g = gain[n]
        y = z + b0 * g
        z = g * b1 - y * a1
        env[n] = y * env[n]
        if want_bm:
            bm[n] = y * bm[n]


@numba.njit(cache=True, nogil=True)
def shifted_plus_small(row: np.ndarray, delay: int, small: float, out: np.ndarray,
                       shifted: np.ndarray) -> None:
    """``shifted`` = row advanced by ``delay`` samples (zero-filled), ``out`` = shifted + small."""
    n = row.shape[0]
    for i in range(n):
        m = i + delay
        v = row[m] if 0 <= m < n else 0.0
        shifted[i] = v
        out[i] = v + small


@numba.njit(cache=True, nogil=True)
def sl_and_adaptation(log_env: np.ndarray, env: np.ndarray, bm: np.ndarray, offset_db: float,
                      small: float, freq_sample: float, want_bm: bool, env_out: np.ndarray,
                      bm_out: np.ndarray) -> None:
    """dB SL conversion and IHC adaptation of one band, with the same gains on the BM.

    ``log_env`` = log10(env + small). The level ``offset_db + 20 log10(env + small)``,
    floored at 0 (``envelope_sl``), is adapted (``ihc_adaptation``) into ``env_out``;
    ``bm_out`` = bm times the SL gain, then times the adaptation gain.
    ``log_env`` is overwritten with the SL level.
    """
    for n in range(log_env.shape[0]):
        log_env[n] = max(offset_db + log_env[n] * 20, 0.0)
    ihc_adaptation(log_env, env_out, freq_sample)
    if want_bm:
        for n in range(log_env.shape[0]):
            level = log_env[n]
            sl_gain = (level + small) / (env[n] + small)
            bm_out[n] = ((env_out[n] + small) / (level + small)) * (sl_gain * bm[n])

