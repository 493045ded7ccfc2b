"""Gaussian draws identical to numpy's legacy ``RandomState.standard_normal``, compiled.

pyclarity's ear model adds threshold noise to the basilar-membrane motion with
``np.random.standard_normal`` (numpy's global legacy generator), two arrays of
``32 x samples`` per call: drawing them through numpy costs more than the rest of
the fast ear model. The functions here run the same generator (MT19937 words,
53-bit doubles, the polar Box-Muller method with its cached second value) in a
compiled loop on a copy of a ``RandomState``'s state, and write the advanced state
back, so the numbers and the generator's state afterwards are exactly those numpy
would have produced.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_N = 624
_M = 397
_MATRIX_A = np.uint32(0x9908B0DF)
_UPPER = np.uint32(0x80000000)
_LOWER = np.uint32(0x7FFFFFFF)
_TWO_M53 = 1.0 / 9007199254740992.0  # a power of two: the product equals numpy's quotient


@numba.njit(cache=True, nogil=True)
def _twist(key: np.ndarray) -> None:
    # Regenerate the 624 state words (mt19937_gen), in its three index ranges.
    for i in range(_N - _M):
        y = (key[i] & _UPPER) | (key[i + 1] & _LOWER)
        key[i] = key[i + _M] ^ (y >> np.uint32(1)) ^ (_MATRIX_A * (y & np.uint32(1)))
    for i in range(_N - _M, _N - 1):
        y = (key[i] & _UPPER) | (key[i + 1] & _LOWER)
        key[i] = key[i + _M - _N] ^ (y >> np.uint32(1)) ^ (_MATRIX_A * (y & np.uint32(1)))
    y = (key[_N - 1] & _UPPER) | (key[0] & _LOWER)
    key[_N - 1] = key[_M - 1] ^ (y >> np.uint32(1)) ^ (_MATRIX_A * (y & np.uint32(1)))


@numba.njit(cache=True, nogil=True)
def _temper_all(key: np.ndarray, words: np.ndarray) -> None:
    # The tempered output of all 624 state words (one loop, vectorised)
    for i in range(_N):
        y = key[i]
        y ^= y >> np.uint32(11)
        y ^= (y << np.uint32(7)) & np.uint32(0x9D2C5680)
        y ^= (y << np.uint32(15)) & np.uint32(0xEFC60000)
        y ^= y >> np.uint32(18)
        words[i] = y


@numba.njit(cache=True, nogil=True, inline="always")
def _uniform(w0: np.uint32, w1: np.uint32) -> float:
    # numpy's 53-bit double from two words, mapped to (-1, 1) as legacy_gauss does
    return 2.0 * (((w0 >> np.uint32(5)) * 67108864.0 + (w1 >> np.uint32(6))) * _TWO_M53) - 1.0


@numba.njit(cache=True, nogil=True)
def _gaussians(out: np.ndarray, count: int, write: bool, scale: float, key: np.ndarray,
               pos: int, has_gauss: bool, gauss: float) -> tuple[int, bool, float]:
    """The next ``count`` legacy normals, times ``scale``, added to ``out`` (when ``write``).

    numpy's ``legacy_gauss``: the cached value first, if any; then per pair, four
    MT19937 words make two uniforms in (-1, 1), retried until they fall inside the unit
    circle (r2 < 1, r2 != 0); the pair is ``f * x2`` then ``f * x1`` (cached when it is
    not used), ``f = sqrt(-2 log(r2) / r2)``. Every attempt uses exactly four words, so
    the attempts of a whole block of 624 tempered words are evaluated in one vectorised
    loop and the accepted ones turned into normals in a second. Without ``write`` only
    the generator advances (the logarithm is taken only for a value left cached).
    Returns the new ``(pos, has_gauss, gauss)``; ``key`` is updated in place.
    """
    words = np.empty(_N, dtype=np.uint32)
    _temper_all(key, words)  # words[pos:] are the next outputs of the current state
    x1s = np.empty(_N // 4)
    x2s = np.empty(_N // 4)
    r2s = np.empty(_N // 4)
    fs = np.empty(_N // 4)
    index = np.empty(_N // 4, dtype=np.int64)
    w = np.empty(4, dtype=np.uint32)
    i = 0
    if has_gauss and count > 0:
        if write:
            out[0] += scale * gauss
        has_gauss = False
        gauss = 0.0
        i = 1
    while i < count:
        if pos + 4 > _N:
            # An attempt straddling the end of the state (or none left): word by word
            for m in range(4):
                if pos >= _N:
                    _twist(key)
                    _temper_all(key, words)
                    pos = 0
                w[m] = words[pos]
                pos += 1
            x1 = _uniform(w[0], w[1])
            x2 = _uniform(w[2], w[3])
            r2 = x1 * x1 + x2 * x2
            if r2 < 1.0 and r2 != 0.0:
                x1s[0], x2s[0], r2s[0] = x1, x2, r2
                accepted = 1
            else:
                accepted = 0
        else:
            # All whole attempts left in this block, then keep the accepted ones, up to
            # as many pairs as are still needed; pos moves past the last one used
            attempts = (_N - pos) // 4
            needed = (count - i + 1) // 2
            for t in range(attempts):
                b = pos + 4 * t
                x1 = _uniform(words[b], words[b + 1])
                x2 = _uniform(words[b + 2], words[b + 3])
                x1s[t] = x1
                x2s[t] = x2
                r2s[t] = x1 * x1 + x2 * x2
            if not write:
                # Skipping: a block that does not finish the draws only needs its count
                # of accepted attempts (each gives two normals, none left cached)
                block = 0
                for t in range(attempts):
                    block += (r2s[t] < 1.0) & (r2s[t] != 0.0)
                if block < needed:
                    i += 2 * block
                    pos += 4 * attempts
                    continue
            # Keep the accepted attempts, in order, without branches (with the index of
            # each); if more were accepted than needed, the block is used up to the
            # needed-th one
            accepted = 0
            for t in range(attempts):
                r2 = r2s[t]
                x1s[accepted], x2s[accepted], r2s[accepted] = x1s[t], x2s[t], r2
                index[accepted] = t
                accepted += (r2 < 1.0) & (r2 != 0.0)
            used = attempts
            if accepted > needed:
                used = index[needed - 1] + 1
                accepted = needed
            pos += 4 * used
        # Whole pairs: the logarithms (libm's, as numpy's), then the rest in SIMD loops
        pairs = min(accepted, (count - i) // 2)
        if write and pairs > 0:
            for t in range(pairs):
                fs[t] = math.log(r2s[t])
            for t in range(pairs):
                fs[t] = math.sqrt(-2.0 * fs[t] / r2s[t])
            for t in range(pairs):
                out[i + 2 * t] += scale * (fs[t] * x2s[t])
                out[i + 2 * t + 1] += scale * (fs[t] * x1s[t])
        i += 2 * pairs
        if accepted > pairs:
            # The last normal of the draws (accepted never exceeds the pairs needed); the
            # other value of its pair is cached
            r2 = r2s[pairs]
            f = math.sqrt(-2.0 * math.log(r2) / r2)
            if write:
                out[i] += scale * (f * x2s[pairs])
            has_gauss = True
            gauss = f * x1s[pairs]
            i += 1
    return pos, has_gauss, gauss


def add_standard_normal(out: np.ndarray, scale: float,
                        random_state: np.random.RandomState | None = None) -> np.ndarray:
    """Add ``scale * random_state.standard_normal(out.shape)`` to ``out`` in place, compiled.

    Parameters:
        out: float64 C-contiguous array; the noise is added in C order, as numpy fills it.
        scale: multiplier of the unit-variance noise.
        random_state: numpy legacy generator to draw from and advance; ``None`` for
            numpy's global one (``np.random.seed`` sets it), which pyclarity uses.

    Returns:
        ``out``, holding the same values ``out + scale * standard_normal(out.shape)``
        would, with the generator advanced exactly as numpy would have advanced it.
    """
    if out.dtype != np.float64 or not out.flags.c_contiguous:
        raise ValueError(f"expected a C-contiguous float64 array, got {out.dtype} "
                         f"(C-contiguous: {out.flags.c_contiguous})")
    rs = np.random.mtrand._rand if random_state is None else random_state
    name, key, pos, has_gauss, gauss = rs.get_state(legacy=True)
    if name != "MT19937":
        raise ValueError(f"expected an MT19937 RandomState, got {name}")
    key = np.array(key, dtype=np.uint32)
    pos, has_gauss, gauss = _gaussians(out.reshape(-1), out.size, True, float(scale), key,
                                       int(pos), bool(has_gauss), float(gauss))
    rs.set_state((name, key, pos, int(has_gauss), gauss))
    return out


def skip_standard_normal(count: int, random_state: np.random.RandomState | None = None) -> None:
    """Advance ``random_state`` (``None``: numpy's global one) as ``standard_normal(count)`` would.

    For noise that pyclarity draws and the caller does not need (HASPI never reads the
    noisy basilar-membrane motion), so later draws match pyclarity's.
    """
    rs = np.random.mtrand._rand if random_state is None else random_state
    name, key, pos, has_gauss, gauss = rs.get_state(legacy=True)
    key = np.array(key, dtype=np.uint32)
    pos, has_gauss, gauss = _gaussians(np.empty(0), int(count), False, 1.0, key, int(pos),
                                       bool(has_gauss), float(gauss))
    rs.set_state((name, key, pos, int(has_gauss), gauss))
