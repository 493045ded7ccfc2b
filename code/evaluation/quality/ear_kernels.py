"""Compiled loops of the cochlear model (pyclarity's ``eb.ear_model`` stages).

The loops that numpy cannot vectorise: the gammatone filter, the OHC gain and the
IHC adaptation. They follow pyclarity's order of operations (scipy's transposed
direct-form II ``lfilter``, the recursive cosine/sine carrier) so that their
outputs agree with pyclarity's to the last bits. Each stage is one compiled loop
over the bands ``lo .. hi - 1`` of both signals that releases the GIL, so the
caller runs two halves of the bands in two threads.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from code.evaluation.quality.pairwise import pairwise_sum

_LN10 = math.log(10.0)


@numba.njit(cache=True, nogil=True, inline="always")
def _coefficients(a: float) -> tuple:
    # The gammatone's scipy lfilter coefficients, b = [1, b1, b2, 0, 0], a = [1, c1, .., c4],
    # and its gain, from the pole radius a, as pyclarity's gammatone_basilar_membrane
    a_1 = 4.0 * a
    a_2 = -6.0 * a * a
    a_3 = 4.0 * a * a * a
    a_4 = -a * a * a * a
    a_5 = 4.0 * a * a
    scale = 2.0 * (1 - a_1 - a_2 - a_3 - a_4) / (1 + a_1 + a_5)
    return a_1, a_5, -a_1, -a_2, -a_3, -a_4, scale


@numba.njit(cache=True, nogil=True, inline="always")
def _lfilter_step(x, z0, z1, z2, z3, b1, b2, c1, c2, c3, c4):
    # One sample of scipy's lfilter (transposed direct form II), same order of operations
    y = x + z0
    return y, z1 + x * b1 - y * c1, z2 + x * b2 - y * c2, z3 - y * c3, -y * c4


@numba.njit(cache=True, nogil=True)
def gammatone_pair(x0: np.ndarray, x1: np.ndarray, center_freq: np.ndarray, pole: np.ndarray,
                   tpt: float, env0: np.ndarray, env1: np.ndarray, bm0: np.ndarray,
                   bm1: np.ndarray, want_bm: bool, gain0: np.ndarray, gain1: np.ndarray,
                   lp: np.ndarray, squares0: np.ndarray, squares1: np.ndarray) -> None:
    """Envelopes (and BM motions) of one gammatone band of two signals, interleaved.

    Signal ``x<s>`` (s = 0, 1) goes through the band with centre ``center_freq[s]`` and
    pole radius ``pole[s]`` into ``env<s>`` (and ``bm<s>``).
    The 4th-order complex gammatone is one real IIR filter on the demodulated signal,
    as pyclarity's ``gammatone_basilar_membrane``; ``pole`` is ``exp(-tpt * 1.019 *
    bandwidth * erb)``, computed with numpy by the caller (the fourfold pole makes the
    output sensitive to its last bit); ``tpt`` = 2 pi / rate. The two signals' recursions
    are independent, so one loop runs both at once (each is latency-bound).
    ``squares<s>`` gets the squared envelope (for its RMS). With non-empty ``gain<s>``
    (the OHC gains), each gain is low-passed (scipy's
    ``lfilter`` with ``lp`` = (b0, b1, a1)) and multiplies the envelope and BM motion,
    as pyclarity applies it after the filter.
    """
    pb1, pb2, pc1, pc2, pc3, pc4, pscale = _coefficients(pole[0])
    qb1, qb2, qc1, qc2, qc3, qc4, qscale = _coefficients(pole[1])
    pcos, psin = math.cos(tpt * center_freq[0]), math.sin(tpt * center_freq[0])
    qcos, qsin = math.cos(tpt * center_freq[1]), math.sin(tpt * center_freq[1])
    with_gain = gain0.shape[0] > 0
    g0, g1, ga1 = (lp[0], lp[1], lp[2]) if with_gain else (0.0, 0.0, 0.0)
    pcold, psold, qcold, qsold = 1.0, 0.0, 1.0, 0.0
    pr0 = pr1 = pr2 = pr3 = pi0 = pi1 = pi2 = pi3 = 0.0
    qr0 = qr1 = qr2 = qr3 = qi0 = qi1 = qi2 = qi3 = 0.0
    pz = qz = 0.0
    for n in range(x0.shape[0]):
        if n > 0:
            # The carriers by rotation, as pyclarity's gammatone_bandwidth_demodulation
            arg = pcold * pcos + psold * psin
            psold = psold * pcos - pcold * psin
            pcold = arg
            arg = qcold * qcos + qsold * qsin
            qsold = qsold * qcos - qcold * qsin
            qcold = arg
        yr, pr0, pr1, pr2, pr3 = _lfilter_step(x0[n] * pcold, pr0, pr1, pr2, pr3,
                                               pb1, pb2, pc1, pc2, pc3, pc4)
        yi, pi0, pi1, pi2, pi3 = _lfilter_step(x0[n] * psold, pi0, pi1, pi2, pi3,
                                               pb1, pb2, pc1, pc2, pc3, pc4)
        wr, qr0, qr1, qr2, qr3 = _lfilter_step(x1[n] * qcold, qr0, qr1, qr2, qr3,
                                               qb1, qb2, qc1, qc2, qc3, qc4)
        wi, qi0, qi1, qi2, qi3 = _lfilter_step(x1[n] * qsold, qi0, qi1, qi2, qi3,
                                               qb1, qb2, qc1, qc2, qc3, qc4)
        pe = pscale * math.sqrt(yr * yr + yi * yi)
        qe = qscale * math.sqrt(wr * wr + wi * wi)
        squares0[n] = pe * pe
        squares1[n] = qe * qe
        pb = pscale * (yr * pcold + yi * psold)
        qb = qscale * (wr * qcold + wi * qsold)
        if with_gain:
            g = gain0[n]
            y = pz + g0 * g
            pz = g * g1 - y * ga1
            pe, pb = y * pe, y * pb
            g = gain1[n]
            y = qz + g0 * g
            qz = g * g1 - y * ga1
            qe, qb = y * qe, y * qb
        env0[n] = pe
        env1[n] = qe
        if want_bm:
            bm0[n] = pb
            bm1[n] = qb


@numba.njit(cache=True, nogil=True)
def ihc_adaptation_pair(level0: np.ndarray, out0: np.ndarray, level1: np.ndarray,
                        out1: np.ndarray, freq_sample: float) -> None:
    """Rapid (2 ms) and short-term (60 ms) IHC adaptation of two dB envelopes, overshoot 2.

    pyclarity's ``inner_hair_cell_adaptation`` without its BM gain (applied by the
    caller): ``out<s>`` = max(adapted ``level<s>``, 0). The two recursions are
    independent and latency-bound, so one loop runs both.
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
    p_1 = p_2 = q_1 = q_2 = 0.0
    for n in range(level0.shape[0]):
        v_0 = level0[n]
        b_1 = v_0 * r_2 + product_r1_r2_c1 * p_1
        b_2 = product_r2_r3_c2 * p_2
        p_1 = denom * (a22 * b_1 - a12 * b_2)
        p_2 = denom * (-a21 * b_1 + a11 * b_2)
        out0[n] = max((v_0 - p_1) * r_1_inv, 0.0)
        w_0 = level1[n]
        d_1 = w_0 * r_2 + product_r1_r2_c1 * q_1
        d_2 = product_r2_r3_c2 * q_2
        q_1 = denom * (a22 * d_1 - a12 * d_2)
        q_2 = denom * (-a21 * d_1 + a11 * d_2)
        out1[n] = max((w_0 - q_1) * r_1_inv, 0.0)


# The stage kernels below take the per-signal arrays as pairs (reference, processed) of
# ``[bands, samples]`` arrays: two arrays rather than one ``[2, bands, samples]``, each
# small enough for the allocator to reuse its memory from call to call (a fresh
# block above 32 MB is a fresh mapping, paid for in page faults).


@numba.njit(cache=True, nogil=True)
def control_filters(x, center_freq: np.ndarray, pole: np.ndarray, tpt: float, small: float,
                    control, control_rms: np.ndarray, lo: int, hi: int) -> None:
    """Control filters of both signals: per (signal, band), the envelope and its RMS.

    ``x`` is the pair of signals; the band arrays are ``[2, bands]``. ``control_rms[s, k]``
    equals ``np.sqrt(np.mean(envelope ** 2))`` to the bit (it sets the band's
    bandwidth); ``control[s][k]`` gets the envelope floored at ``small``, ready for its
    logarithm (the OHC gain). Band k of both signals runs in one interleaved loop.
    """
    nsamp = x[0].shape[0]
    empty = np.empty(0)
    for k in range(lo, hi):
        squares0, squares1 = np.empty(nsamp), np.empty(nsamp)
        row0, row1 = control[0][k], control[1][k]
        gammatone_pair(x[0], x[1], center_freq[:, k], pole[:, k], tpt, row0, row1, row0, row1,
                       False, empty, empty, empty, squares0, squares1)
        control_rms[0, k] = math.sqrt(pairwise_sum(squares0) / nsamp)
        control_rms[1, k] = math.sqrt(pairwise_sum(squares1) / nsamp)
        for i in range(nsamp):
            row0[i] = max(row0[i], small)
            row1[i] = max(row1[i], small)


@numba.njit(cache=True, nogil=True)
def ohc_exponents(log_control, level1: float, low_knee: np.ndarray, slope: np.ndarray,
                  attn_ohc: np.ndarray, upper_knee: float, lo: int, hi: int) -> None:
    """In place: log10(control) -> OHC gain as ``x`` of ``exp(x)``, per (signal, band).

    As ``env_compress_basilar_membrane``: the level ``level1 + 20 log10(control)`` is
    clipped to [low knee, upper knee], the gain in dB is ``-attn_ohc - (level -
    low_knee) * slope``; ``10 ** (dB / 20)`` is left to numpy's ``exp`` of ``dB / 20 ln 10``.
    """
    for k in range(lo, hi):
        for s in range(2):
            row = log_control[s][k]
            lk, sl, attn = low_knee[s, k], slope[s, k], attn_ohc[s, k]
            for n in range(row.shape[0]):
                level = row[n] * 20 + level1
                level = max(min(level, upper_knee), lk)
                row[n] = ((-attn - (level - lk) * sl) / 20) * _LN10


@numba.njit(cache=True, nogil=True)
def _to_float32(row: np.ndarray, out: np.ndarray) -> None:
    # out = float32(row), then zeros to the end of out
    n = row.shape[0]
    for i in range(n):
        out[i] = np.float32(row[i])
    for i in range(n, out.shape[0]):
        out[i] = 0.0


@numba.njit(cache=True, nogil=True)
def compressed_bands(x, center_freq: np.ndarray, pole: np.ndarray, tpt: float, gains,
                     lp: np.ndarray, want_bm: bool, env, bm, env32, bm32,
                     average: np.ndarray, lo: int, hi: int) -> None:
    """Adjusted filters of both signals, times their OHC gains, and float32 padded copies.

    ``gains[s]`` is the OHC gain before its low-pass, which is applied here: scipy's
    ``lfilter(b, a)`` with ``lp`` = (b0, b1, a1) (transposed direct form II, ``a[0] = 1``).
    ``env[s]`` and ``bm[s]`` (``[bands, samples]``, ``bm`` unused without ``want_bm``) get
    the compressed envelope (BM motion); ``env32[s]`` and ``bm32[s]`` (``[bands, nfft]``)
    the same in float32, then zeros (for the alignment's FFTs). ``average[s, k]`` is the
    RMS of the envelope before compression, to the bit. Band k of both signals runs in
    one interleaved loop.
    """
    nsamp = x[0].shape[0]
    for k in range(lo, hi):
        squares0, squares1 = np.empty(nsamp), np.empty(nsamp)
        env0, env1 = env[0][k], env[1][k]
        bm0, bm1 = (bm[0][k], bm[1][k]) if want_bm else (env0, env1)
        gammatone_pair(x[0], x[1], center_freq[:, k], pole[:, k], tpt, env0, env1, bm0, bm1,
                       want_bm, gains[0][k], gains[1][k], lp, squares0, squares1)
        average[0, k] = math.sqrt(pairwise_sum(squares0) / nsamp)
        average[1, k] = math.sqrt(pairwise_sum(squares1) / nsamp)
        _to_float32(env0, env32[0][k])
        _to_float32(env1, env32[1][k])
        if want_bm:
            _to_float32(bm0, bm32[0][k])
            _to_float32(bm1, bm32[1][k])


@numba.njit(cache=True, nogil=True)
def _advance(row: np.ndarray, delay: int) -> None:
    # In place: row advanced by ``delay`` samples (delayed when negative), zero-filled,
    # as pyclarity's ``envelope_align`` shifts the processed signal.
    nsamp = row.shape[0]
    if delay > 0:
        for i in range(nsamp):
            row[i] = row[i + delay] if i + delay < nsamp else 0.0
    elif delay < 0:
        for i in range(nsamp - 1, -1, -1):
            row[i] = row[i + delay] if i + delay >= 0 else 0.0


@numba.njit(cache=True, nogil=True)
def aligned_levels(env, bm, env_delay: np.ndarray, bm_delay: np.ndarray, want_bm: bool,
                   small: float, level, lo: int, hi: int) -> None:
    """Shift each (signal, band) row by its alignment delay, in place; ``level`` = env + small.

    ``env``, ``bm`` and ``level`` are pairs of ``[bands, samples]`` arrays (the logarithm of
    ``level``, numpy's, is the next step).
    """
    for k in range(lo, hi):
        for s in range(2):
            row, out = env[s][k], level[s][k]
            _advance(row, env_delay[s, k])
            if want_bm:
                _advance(bm[s][k], bm_delay[s, k])
            for i in range(row.shape[0]):
                out[i] = row[i] + small


@numba.njit(cache=True, nogil=True)
def _hair_cell_outputs(env: np.ndarray, bm: np.ndarray, level: np.ndarray,
                       adapted: np.ndarray, noise: np.ndarray, small: float, c: int,
                       want_bm: bool) -> None:
    # One row's BM gains, noise and group delay of c samples, in place (see hair_cells)
    nsamp = env.shape[0]
    if want_bm:
        # Into a scratch row first (a forward loop, vectorised), then shifted into place
        out = np.empty(nsamp - c)
        for i in range(nsamp - c):
            sl_gain = (level[i] + small) / (env[i] + small)
            out[i] = ((adapted[i] + small) / (level[i] + small)) * (sl_gain * bm[i]) + noise[i]
        bm[c:] = out
        for i in range(c):
            bm[i] = 0.0
    for i in range(c):
        env[i] = 0.0
    env[c:] = adapted


@numba.njit(cache=True, nogil=True)
def hair_cells(env, bm, log_level, offset_db: np.ndarray, small: float, freq_sample: float,
               want_bm: bool, noise, correct: np.ndarray, lo: int, hi: int) -> None:
    """dB SL, IHC adaptation, threshold noise and group-delay correction, in place.

    Per (signal, band) row of the aligned ``env``/``bm`` (pairs of ``[bands, samples]``),
    with ``log_level`` = log10(env + small): the level ``offset_db[s, k] + 20
    log_level`` floored at 0 (``envelope_sl``) is adapted
    (``inner_hair_cell_adaptation``) and the BM gets the same gains, then
    ``noise[s][k]``. Finally band k is delayed by ``correct[k]`` samples (zeros in
    front: ``group_delay_compensate``). ``env``/``bm`` hold the results. Band k of both
    signals adapts in one interleaved loop.
    """
    for k in range(lo, hi):
        nsamp = log_level[0][k].shape[0]
        for s in range(2):
            level = log_level[s][k]
            offset = offset_db[s, k]
            for i in range(nsamp):
                level[i] = max(offset + level[i] * 20, 0.0)
        c = correct[k]
        adapted0, adapted1 = np.empty(nsamp - c), np.empty(nsamp - c)
        ihc_adaptation_pair(log_level[0][k][:nsamp - c], adapted0, log_level[1][k][:nsamp - c],
                            adapted1, freq_sample)
        for s in range(2):
            _hair_cell_outputs(env[s][k], bm[s][k] if want_bm else env[s][k], log_level[s][k],
                               adapted0 if s == 0 else adapted1,
                               noise[s][k] if want_bm else env[s][k], small, c, want_bm)
