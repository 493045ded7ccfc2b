"""Compiled loops of the cochlear model (pyclarity's ``eb.ear_model`` stages), but the filterbank.

The loops that numpy cannot vectorise: the OHC gain, the alignment shifts and the
IHC adaptation (the gammatone filterbank is in ``gammatone``). They follow
pyclarity's order of operations so that their outputs agree with pyclarity's to
the last bits. Each works on one signal's ``[bands, samples]`` arrays and releases
the GIL, so the caller runs the reference and the processed signal in two threads.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from code.evaluation.quality.gammatone import CHUNK, LANES

_LN10 = math.log(10.0)


@numba.njit(cache=True, nogil=True, inline="always")
def _ihc_step(block: np.ndarray, result: np.ndarray, state: np.ndarray, t: int, r_2: float,
              r_1_inv: float, c_1: float, c_2: float, a11: float, a12: float, a21: float,
              a22: float, denom: float) -> None:
    # One sample of LANES bands of the adaptation recursion (state: p_1, then p_2)
    L = LANES
    for j in range(L):
        v_0 = block[t, j]
        b_1 = v_0 * r_2 + c_1 * state[j]
        b_2 = c_2 * state[L + j]
        p_1 = denom * (a22 * b_1 - a12 * b_2)
        state[L + j] = denom * (-a21 * b_1 + a11 * b_2)
        state[j] = p_1
        result[t, j] = max((v_0 - p_1) * r_1_inv, 0.0)


@numba.njit(cache=True, nogil=True)
def ihc_adaptation_bands(levels: np.ndarray, out: np.ndarray, freq_sample: float) -> None:
    """Rapid (2 ms) and short-term (60 ms) IHC adaptation of dB envelopes, overshoot 2.

    pyclarity's ``inner_hair_cell_adaptation`` without its BM gain (applied by the
    caller), for every row (band) of ``levels``: ``out[k]`` = max(adapted
    ``levels[k]``, 0). The recursion is latency-bound and the bands independent, so
    ``LANES`` bands advance together in SIMD lanes (the same operations per band as
    pyclarity's, in the same order), through small sample-major buffers.
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
    L = LANES
    nchan, nsamp = levels.shape
    state = np.empty(2 * L)
    block = np.zeros((CHUNK, L))  # lanes past the last band stay zeros
    result = np.empty((CHUNK, L))
    for first in range(0, nchan, L):
        lanes = min(L, nchan - first)
        state[:] = 0.0
        block[:] = 0.0
        for n0 in range(0, nsamp, CHUNK):
            m = min(CHUNK, nsamp - n0)
            for j in range(lanes):
                row = levels[first + j]
                for t in range(m):
                    block[t, j] = row[n0 + t]
            for t in range(m):
                _ihc_step(block, result, state, t, r_2, r_1_inv, product_r1_r2_c1,
                          product_r2_r3_c2, a11, a12, a21, a22, denom)
            for j in range(lanes):
                row = out[first + j]
                for t in range(m):
                    row[n0 + t] = result[t, j]


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
def aligned_levels(env: np.ndarray, bm: np.ndarray, env_delay: np.ndarray,
                   bm_delay: np.ndarray, want_bm: bool, small: float, level: np.ndarray) -> None:
    """Shift each band row of one signal by its alignment delay, in place; ``level`` = env + small.

    ``env``, ``bm`` and ``level`` are ``[bands, samples]``; the delays ``[bands]`` (the
    logarithm of ``level``, numpy's, is the next step).
    """
    for k in range(env.shape[0]):
        row, out = env[k], level[k]
        _advance(row, env_delay[k])
        if want_bm:
            _advance(bm[k], bm_delay[k])
        for i in range(row.shape[0]):
            out[i] = row[i] + small


@numba.njit(cache=True, nogil=True)
def _hair_cell_outputs(env: np.ndarray, bm: np.ndarray, level: np.ndarray,
                       adapted: np.ndarray, noise: np.ndarray, small: float, c: int,
                       want_bm: bool) -> None:
    # One row's BM gains, noise and group delay of c samples, in place (see hair_cells);
    # the noise row is overwritten
    nsamp = env.shape[0]
    if want_bm:
        # Into the noise row first (a forward loop, vectorised), then shifted into place
        for i in range(nsamp - c):
            sl_gain = (level[i] + small) / (env[i] + small)
            noise[i] = ((adapted[i] + small) / (level[i] + small)) * (sl_gain * bm[i]) + noise[i]
        bm[c:] = noise[:nsamp - c]
        for i in range(c):
            bm[i] = 0.0
    for i in range(c):
        env[i] = 0.0
    env[c:] = adapted


@numba.njit(cache=True, nogil=True)
def hair_cells(env: np.ndarray, bm: np.ndarray, log_level: np.ndarray, offset_db: np.ndarray,
               small: float, freq_sample: float, want_bm: bool, noise: np.ndarray,
               correct: np.ndarray, adapted: np.ndarray) -> None:
    """dB SL, IHC adaptation, threshold noise and group-delay correction of one signal, in place.

    Per band row of the aligned ``env``/``bm`` (``[bands, samples]``), with ``log_level``
    = log10(env + small): the level ``offset_db[k] + 20 log_level`` floored at 0
    (``envelope_sl``) is adapted (``inner_hair_cell_adaptation``, into the scratch
    ``adapted``) and the BM gets the same gains, then ``noise[k]`` (overwritten: a
    scratch row). Finally band k is delayed by ``correct[k]`` samples (zeros in front:
    ``group_delay_compensate``). ``env``/``bm`` hold the results.
    """
    nchan, nsamp = log_level.shape
    for k in range(nchan):
        level = log_level[k]
        offset = offset_db[k]
        for i in range(nsamp):
            level[i] = max(offset + level[i] * 20, 0.0)
    # A band's adaptation is causal: its first nsamp - c outputs, all that are kept, are
    # the same whether or not the recursion runs on to the end
    ihc_adaptation_bands(log_level, adapted, freq_sample)
    for k in range(nchan):
        c = correct[k]
        _hair_cell_outputs(env[k], bm[k] if want_bm else env[k], log_level[k],
                           adapted[k][:nsamp - c], noise[k] if want_bm else env[k], small, c,
                           want_bm)
