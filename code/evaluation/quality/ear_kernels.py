"""Compiled loops of the cochlear model (pyclarity's ``eb.ear_model`` stages).

The loops that numpy cannot vectorise: the gammatone filter, the OHC gain and the
IHC adaptation. They follow pyclarity's order of operations (scipy's transposed
direct-form II ``lfilter``, the recursive cosine/sine carrier) so that their
outputs agree with pyclarity's to the last bits. Each stage runs as one parallel
loop over every (signal, band) pair, ``prange`` over ``2 * nchan`` rows: the
reference's bands and the processed signal's share the cores.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from code.evaluation.quality.pairwise import pairwise_sum

_LN10 = math.log(10.0)


@numba.njit(cache=True, nogil=True)
def gammatone(x: np.ndarray, center_freq: float, a: float, tpt: float, env: np.ndarray,
              bm: np.ndarray, want_bm: bool, gain: np.ndarray, squares: np.ndarray) -> None:
    """Envelope (and BM motion) of one gammatone band of ``x`` into ``env`` (and ``bm``).

    The 4th-order complex gammatone as one real IIR filter on the demodulated
    signal, as pyclarity's ``gammatone_basilar_membrane``. ``a`` is the pole radius
    ``exp(-tpt * 1.019 * bandwidth * erb)``, computed with numpy by the caller: the
    fourfold pole makes the output sensitive to its last bit. ``tpt`` = 2 pi / rate.
    ``squares`` gets the squared envelope (for its RMS); with a non-empty ``gain``
    the envelope and BM motion are then multiplied by it sample by sample (the OHC
    compression, as pyclarity applies it after the filter).
    """
    a_1 = 4.0 * a
    a_2 = -6.0 * a * a
    a_3 = 4.0 * a * a * a
    a_4 = -a * a * a * a
    a_5 = 4.0 * a * a
    scale = 2.0 * (1 - a_1 - a_2 - a_3 - a_4) / (1 + a_1 + a_5)
    # lfilter's coefficients: b = [1, a_1, a_5, 0, 0], a = [1, -a_1, ..., -a_4]
    b1, b2 = a_1, a_5
    c1, c2, c3, c4 = -a_1, -a_2, -a_3, -a_4
    cos_n = math.cos(tpt * center_freq)
    sin_n = math.sin(tpt * center_freq)
    with_gain = gain.shape[0] > 0
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
        e = scale * math.sqrt(yr * yr + yi * yi)
        squares[n] = e * e
        b = scale * (yr * cold + yi * sold)
        if with_gain:
            e = gain[n] * e
            b = gain[n] * b
        env[n] = e
        if want_bm:
            bm[n] = b


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


@numba.njit(cache=True, parallel=True)
def control_filters(x: np.ndarray, center_freq: np.ndarray, pole: np.ndarray, tpt: float,
                    small: float, control: np.ndarray, control_rms: np.ndarray) -> None:
    """Control filters of both signals: per (signal, band), the envelope and its RMS.

    ``x`` is ``[2, samples]`` (reference, processed); the band arrays are ``[2, bands]``.
    ``control_rms[s, k]`` equals ``np.sqrt(np.mean(envelope ** 2))`` to the bit (it sets
    the band's bandwidth); ``control[s, k]`` (``[2, bands, samples]``) gets the
    envelope floored at ``small``, ready for its logarithm (the OHC gain).
    """
    nchan = center_freq.shape[1]
    nsamp = x.shape[1]
    empty = np.empty(0)
    for j in numba.prange(2 * nchan):
        s, k = j // nchan, j % nchan
        squares = np.empty(nsamp)
        row = control[s, k]
        gammatone(x[s], center_freq[s, k], pole[s, k], tpt, row, empty, False, empty,
                  squares)
        control_rms[s, k] = math.sqrt(pairwise_sum(squares) / nsamp)
        for i in range(nsamp):
            row[i] = max(row[i], small)


@numba.njit(cache=True, parallel=True)
def ohc_exponents(log_control: np.ndarray, level1: float, low_knee: np.ndarray,
                  slope: np.ndarray, attn_ohc: np.ndarray, upper_knee: float) -> None:
    """In place: log10(control) -> OHC gain as ``x`` of ``exp(x)``, per (signal, band).

    As ``env_compress_basilar_membrane``: the level ``level1 + 20 log10(control)`` is
    clipped to [low knee, upper knee], the gain in dB is ``-attn_ohc - (level -
    low_knee) * slope``; ``10 ** (dB / 20)`` is left to numpy's ``exp`` of ``dB / 20 ln 10``.
    """
    nchan = log_control.shape[1]
    for j in numba.prange(2 * nchan):
        s, k = j // nchan, j % nchan
        row = log_control[s, k]
        lk, sl, attn = low_knee[s, k], slope[s, k], attn_ohc[s, k]
        for n in range(row.shape[0]):
            level = row[n] * 20 + level1
            level = max(min(level, upper_knee), lk)
            row[n] = ((-attn - (level - lk) * sl) / 20) * _LN10


@numba.njit(cache=True, parallel=True)
def compressed_bands(x: np.ndarray, center_freq: np.ndarray, pole: np.ndarray, tpt: float,
                     gains: np.ndarray, lp: np.ndarray, want_bm: bool, env: np.ndarray,
                     bm: np.ndarray, average: np.ndarray) -> None:
    """Adjusted filters of both signals, times their OHC gains, into zero-padded rows.

    ``gains`` (``[2, bands, samples]``) is the OHC gain before its low-pass, which is
    applied here: scipy's ``lfilter(b, a)`` with ``lp`` = (b0, b1, a1) (transposed
    direct form II, ``a[0] = 1``); ``gains`` is overwritten with the smoothed gain.
    ``env`` and ``bm`` are ``[2, bands, nfft]`` (``bm`` unused without ``want_bm``): the
    first ``samples`` values of each row get the compressed envelope (BM motion), the
    rest zeros (for the alignment's FFT). ``average[s, k]`` is the RMS of the envelope
    before compression, to the bit.
    """
    nchan = center_freq.shape[1]
    nsamp = x.shape[1]
    nfft = env.shape[2]
    b0, b1, a1 = lp[0], lp[1], lp[2]
    for j in numba.prange(2 * nchan):
        s, k = j // nchan, j % nchan
        squares = np.empty(nsamp)
        gain = gains[s, k]
        z = 0.0
        for n in range(nsamp):
            g = gain[n]
            y = z + b0 * g
            z = g * b1 - y * a1
            gain[n] = y
        env_row = env[s, k]
        bm_row = bm[s, k] if want_bm else env_row
        gammatone(x[s], center_freq[s, k], pole[s, k], tpt, env_row, bm_row, want_bm, gain,
                  squares)
        average[s, k] = math.sqrt(pairwise_sum(squares) / nsamp)
        for i in range(nsamp, nfft):
            env_row[i] = 0.0
            if want_bm:
                bm_row[i] = 0.0


@numba.njit(cache=True, nogil=True)
def _advance(row: np.ndarray, delay: int, nsamp: int) -> None:
    # In place: row[:nsamp] advanced by ``delay`` samples (delayed when negative), zero-filled,
    # as pyclarity's ``envelope_align`` shifts the processed signal.
    if delay > 0:
        for i in range(nsamp):
            row[i] = row[i + delay] if i + delay < nsamp else 0.0
    elif delay < 0:
        for i in range(nsamp - 1, -1, -1):
            row[i] = row[i + delay] if i + delay >= 0 else 0.0


@numba.njit(cache=True, parallel=True)
def aligned_levels(env: np.ndarray, bm: np.ndarray, env_delay: np.ndarray,
                   bm_delay: np.ndarray, want_bm: bool, small: float,
                   level: np.ndarray) -> None:
    """Shift each (signal, band) row by its alignment delay, in place; ``level`` = env + small.

    ``env``/``bm`` are ``[2, bands, >= samples]``, ``level`` ``[2, bands, samples]`` (its
    logarithm, numpy's, is the next step).
    """
    nchan = env.shape[1]
    nsamp = level.shape[2]
    for j in numba.prange(2 * nchan):
        s, k = j // nchan, j % nchan
        _advance(env[s, k], env_delay[s, k], nsamp)
        if want_bm:
            _advance(bm[s, k], bm_delay[s, k], nsamp)
        row, out = env[s, k], level[s, k]
        for i in range(nsamp):
            out[i] = row[i] + small


@numba.njit(cache=True, parallel=True)
def hair_cells(env: np.ndarray, bm: np.ndarray, log_level: np.ndarray, offset_db: np.ndarray,
               small: float, freq_sample: float, want_bm: bool, noise: np.ndarray,
               correct: np.ndarray, env_out: np.ndarray, bm_out: np.ndarray) -> None:
    """dB SL, IHC adaptation, threshold noise and group-delay correction of aligned bands.

    Per (signal, band) row of ``env``/``bm`` (``[2, bands, >= samples]``, already
    aligned), with ``log_level`` = log10(env + small): the level ``offset_db[s, k] + 20
    log_level`` floored at 0 (``envelope_sl``) is adapted
    (``inner_hair_cell_adaptation``), with the same gains on the BM, to which
    ``noise[s, k]`` is added. Finally band k is delayed by ``correct[k]`` samples
    (zeros in front: ``group_delay_compensate``) into ``env_out``/``bm_out``
    (``[2, bands, samples]``).
    """
    nchan = env.shape[1]
    nsamp = env_out.shape[2]
    for j in numba.prange(2 * nchan):
        s, k = j // nchan, j % nchan
        level = log_level[s, k]
        offset = offset_db[s, k]
        for i in range(nsamp):
            level[i] = max(offset + level[i] * 20, 0.0)
        c = correct[k]
        out = env_out[s, k]
        for i in range(c):
            out[i] = 0.0
        adapted = out[c:]
        ihc_adaptation(level[:nsamp - c], adapted, freq_sample)
        if want_bm:
            row = env[s, k]
            bm_row = bm[s, k]
            noise_row = noise[s, k]
            out = bm_out[s, k]
            for i in range(c):
                out[i] = 0.0
            for i in range(nsamp - c):
                sl_gain = (level[i] + small) / (row[i] + small)
                out[i + c] = ((adapted[i] + small) / (level[i] + small)) * (sl_gain * bm_row[i]) \
                    + noise_row[i]
