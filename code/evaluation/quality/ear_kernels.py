"""Compiled per-band loops of the cochlear model (pyclarity's ``eb.ear_model`` stages).

Each function works on one signal and all its bands and releases the GIL, so the
reference and the processed signal can run in two threads. The arithmetic follows
pyclarity's order of operations (scipy's transposed direct-form II ``lfilter``, the
recursive cosine/sine carrier) so that the outputs agree to rounding.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from code.evaluation.quality.pairwise import rms

_SMALL = 1e-30  # pyclarity's guard against log(0) and division by 0
_UPPER_KNEE_DB = 100.0  # OHC compression stops above this level (dB SPL)


@numba.njit(cache=True, nogil=True)
def _gammatone(x: np.ndarray, center_freq: float, a: float, tpt: float,
               env: np.ndarray, bm: np.ndarray, want_bm: bool) -> None:
    # Envelope (and BM motion) of one gammatone band: the 4th-order complex gammatone
    # as one real IIR filter on the demodulated signal. ``a`` = exp(-tpt * 1.019 * bw * erb)
    # comes from numpy: the fourfold pole makes the output sensitive to its last bit.
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
def control_bands(x: np.ndarray, center_freq_control: np.ndarray, a_control: np.ndarray,
                  attn_ohc: np.ndarray, low_knee: np.ndarray, compression_ratio: np.ndarray,
                  level1: float, freq_sample: float, lp_b: np.ndarray, lp_a: np.ndarray,
                  gain_out: np.ndarray, control_rms_out: np.ndarray) -> None:
    """Control filters of every band of ``x`` (middle-ear output, float64 ``[samples]``).

    Fills ``control_rms_out`` (``[bands]``, RMS of each control envelope, as
    ``np.sqrt(np.mean(c ** 2))`` to the bit) and ``gain_out`` (``[bands, samples]``: the
    OHC compression gain from the control level, low-passed at 800 Hz, as in
    pyclarity's ``env_compress_basilar_membrane``).
    """
    nsamp = x.shape[0]
    tpt = 2 * np.pi / freq_sample
    control = np.empty(nsamp)
    scratch = np.empty(nsamp)
    dummy = np.empty(1)
    for k in range(center_freq_control.shape[0]):
        _gammatone(x, center_freq_control[k], a_control[k], tpt, control, dummy, False)
        control_rms_out[k] = rms(control, scratch)
        slope = 1 - (1 / compression_ratio[k])
        gain = gain_out[k]
        z = 0.0
        for n in range(nsamp):
            level = level1 + 20 * math.log10(max(control[n], _SMALL))
            level = max(min(level, _UPPER_KNEE_DB), low_knee[k])
            g = 10 ** ((-attn_ohc[k] - (level - low_knee[k]) * slope) / 20)
            y = lp_b[0] * g + z
            z = g * lp_b[1] - y * lp_a[1]
            gain[n] = y


@numba.njit(cache=True, nogil=True)
def filter_bands(x: np.ndarray, center_freq: np.ndarray, a_filter: np.ndarray,
                 gain: np.ndarray, freq_sample: float, want_bm: bool, env_out: np.ndarray,
                 bm_out: np.ndarray, average_out: np.ndarray) -> None:
    """The level-adjusted gammatone bands of ``x``, times the OHC ``gain`` (``[bands, samples]``).

    Fills ``env_out`` and (with ``want_bm``) ``bm_out`` (``[bands, samples]``) and
    ``average_out`` (``[bands]``, RMS of the uncompressed envelope).
    """
    nsamp = x.shape[0]
    tpt = 2 * np.pi / freq_sample
    scratch = np.empty(nsamp)
    dummy = np.empty(1)
    for k in range(center_freq.shape[0]):
        env = env_out[k]
        bm = bm_out[k] if want_bm else dummy
        _gammatone(x, center_freq[k], a_filter[k], tpt, env, bm, want_bm)
        average_out[k] = rms(env, scratch)
        g = gain[k]
        for n in range(nsamp):
            env[n] *= g[n]
        if want_bm:
            for n in range(nsamp):
                bm[n] *= g[n]


@numba.njit(cache=True, nogil=True, inline="always")
def _shifted(signal: np.ndarray, delay: int, n: int) -> float:
    # signal advanced by ``delay`` samples (delayed when negative), zero outside.
    m = n + delay
    if 0 <= m < signal.shape[0]:
        return signal[m]
    return 0.0


@numba.njit(cache=True, nogil=True)
def hair_cell_bands(env: np.ndarray, bm: np.ndarray, env_delay: np.ndarray, bm_delay: np.ndarray,
                    attn_ihc: np.ndarray, level1: float, freq_sample: float, want_bm: bool,
                    db_out: np.ndarray, bm_out: np.ndarray) -> None:
    """Delay alignment, dB SL conversion and IHC adaptation of every band.

    ``env``/``bm`` (``[bands, samples]``) are the compressed envelope and BM motion;
    band ``k`` is first advanced by ``env_delay[k]``/``bm_delay[k]`` samples (pyclarity's
    ``envelope_align`` shift, 0 for the reference). Fills ``db_out`` (envelope in dB
    above the IHC threshold, after rapid and short-term adaptation) and ``bm_out``
    (the BM motion with the same gains). ``env`` and ``bm`` may be the output arrays.
    """
    nchan, nsamp = env.shape
    # IHC adaptation constants (pyclarity's inner_hair_cell_adaptation, delta = 2)
    delta = 2.0
    tau1 = 0.002
    tau2 = 0.060
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
    row_env = np.empty(nsamp)
    row_bm = np.empty(nsamp)
    for k in range(nchan):
        for n in range(nsamp):
            row_env[n] = _shifted(env[k], env_delay[k], n)
        if want_bm:
            for n in range(nsamp):
                row_bm[n] = _shifted(bm[k], bm_delay[k], n)
        v_1 = 0.0
        v_2 = 0.0
        for n in range(nsamp):
            e = row_env[n]
            # envelope_sl: dB above the IHC threshold, floored at 0
            e_db = max(level1 - attn_ihc[k] + 20 * math.log10(e + _SMALL), 0.0)
            # inner_hair_cell_adaptation on the dB envelope
            b_1 = e_db * r_2 + product_r1_r2_c1 * v_1
            b_2 = product_r2_r3_c2 * v_2
            v_1 = denom * (a22 * b_1 - a12 * b_2)
            v_2 = denom * (-a21 * b_1 + a11 * b_2)
            out = max((e_db - v_1) * r_1_inv, 0.0)
            db_out[k, n] = out
            if want_bm:
                sl_gain = (e_db + _SMALL) / (e + _SMALL)
                ihc_gain = (out + _SMALL) / (e_db + _SMALL)
                bm_out[k, n] = ihc_gain * (sl_gain * row_bm[n])
