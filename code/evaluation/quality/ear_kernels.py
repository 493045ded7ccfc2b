"""Compiled loops of the cochlear model (pyclarity's ``eb.ear_model`` stages), but the filterbank.

The loops that numpy cannot vectorise: the OHC gain, the alignment shifts and the
IHC adaptation (the gammatone filterbank is in ``gammatone``). They follow
pyclarity's order of operations so that their outputs agree with pyclarity's to
the last bits. Each releases the GIL; the hair-cell stages loop over the bands
``lo .. hi - 1`` of both signals, so the caller runs two halves of the bands in
two threads.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from code.evaluation.quality.pairwise import pairwise_sum

_LN10 = math.log(10.0)


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


# The hair-cell kernels below take the per-signal arrays as pairs (reference, processed)
# of ``[bands, samples]`` arrays: two arrays rather than one ``[2, bands, samples]``, each
# small enough for the allocator to reuse its memory from call to call (a fresh
# block above 32 MB is a fresh mapping, paid for in page faults).


@numba.njit(cache=True, nogil=True)
def row_rms(rows: np.ndarray, out: np.ndarray) -> None:
    """``out[k] = np.sqrt(np.mean(rows[k] ** 2))`` from the squares ``rows``, to the bit."""
    nsamp = rows.shape[1]
    for k in range(rows.shape[0]):
        out[k] = math.sqrt(pairwise_sum(rows[k]) / nsamp)


@numba.njit(cache=True, nogil=True)
def ohc_exponents(log_control: np.ndarray, level1: float, low_knee: np.ndarray,
                  slope: np.ndarray, attn_ohc: np.ndarray, upper_knee: float) -> None:
    """In place: log10(control) -> OHC gain as ``x`` of ``exp(x)``, per band (row).

    As ``env_compress_basilar_membrane``: the level ``level1 + 20 log10(control)`` is
    clipped to [low knee, upper knee], the gain in dB is ``-attn_ohc - (level -
    low_knee) * slope``; ``10 ** (dB / 20)`` is left to numpy's ``exp`` of ``dB / 20 ln 10``.
    """
    for k in range(log_control.shape[0]):
        row = log_control[k]
        lk, sl, attn = low_knee[k], slope[k], attn_ohc[k]
        for n in range(row.shape[0]):
            level = row[n] * 20 + level1
            level = max(min(level, upper_knee), lk)
            row[n] = ((-attn - (level - lk) * sl) / 20) * _LN10


@numba.njit(cache=True, nogil=True)
def float32_padded(rows: np.ndarray, out: np.ndarray) -> None:
    """``out[k]`` = float32(``rows[k]``), then zeros to the end of the row (for FFTs)."""
    n = rows.shape[1]
    for k in range(rows.shape[0]):
        row, dst = rows[k], out[k]
        for i in range(n):
            dst[i] = np.float32(row[i])
        for i in range(n, dst.shape[0]):
            dst[i] = 0.0


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
