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


@numba.njit(cache=True, nogil=True, inline="always")
def _next32(key: np.ndarray, pos: int) -> tuple[int, np.uint32]:
    # One tempered MT19937 word; regenerates the state when it is used up.
    if pos >= _N:
        _twist(key)
        pos = 0
    y = key[pos]
    y ^= y >> np.uint32(11)
    y ^= (y << np.uint32(7)) & np.uint32(0x9D2C5680)
    y ^= (y << np.uint32(15)) & np.uint32(0xEFC60000)
    y ^= y >> np.uint32(18)
    return pos + 1, y


@numba.njit(cache=True, nogil=True)
def _polar_point(key: np.ndarray, pos: int) -> tuple[int, float, float, float]:
    # The polar method: two uniforms in (-1, 1) until they fall inside the unit circle;
    # returns the new position, the point and its squared radius.
    while True:
        pos, w0 = _next32(key, pos)
        pos, w1 = _next32(key, pos)
        pos, w2 = _next32(key, pos)
        pos, w3 = _next32(key, pos)
        u1 = ((w0 >> np.uint32(5)) * 67108864.0 + (w1 >> np.uint32(6))) * _TWO_M53
        u2 = ((w2 >> np.uint32(5)) * 67108864.0 + (w3 >> np.uint32(6))) * _TWO_M53
        x1 = 2.0 * u1 - 1.0
        x2 = 2.0 * u2 - 1.0
        r2 = x1 * x1 + x2 * x2
        if r2 < 1.0 and r2 != 0.0:
            return pos, x1, x2, r2


@numba.njit(cache=True, nogil=True)
def _add_gaussian(out: np.ndarray, scale: float, key: np.ndarray, pos: int,
                  has_gauss: bool, gauss: float) -> tuple[int, bool, float]:
    """Add ``scale`` times the next ``out.size`` legacy normals to ``out`` (C order, in place).

    Returns the generator's new ``(pos, has_gauss, gauss)``; ``key`` is updated in place.
    """
    flat = out.reshape(-1)
    n = flat.shape[0]
    i = 0
    if has_gauss and n > 0:
        flat[0] += scale * gauss
        has_gauss = False
        gauss = 0.0
        i = 1
    while i < n:
        pos, x1, x2, r2 = _polar_point(key, pos)
        f = np.sqrt(-2.0 * np.log(r2) / r2)
        flat[i] += scale * (f * x2)
        i += 1
        if i < n:
            flat[i] += scale * (f * x1)
            i += 1
        else:
            has_gauss = True
            gauss = f * x1
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
    pos, has_gauss, gauss = _add_gaussian(out, float(scale), key, int(pos), bool(has_gauss),
                                          float(gauss))
    rs.set_state((name, key, pos, int(has_gauss), gauss))
    return out


@numba.njit(cache=True, nogil=True)
def _skip_gaussian(count: int, key: np.ndarray, pos: int, has_gauss: bool,
                   gauss: float) -> tuple[int, bool, float]:
    # Advance the generator past ``count`` normals: the same words, but the logarithm is
    # only taken for a pair whose second value stays cached.
    i = 0
    if has_gauss and count > 0:
        has_gauss = False
        gauss = 0.0
        i = 1
    while i < count:
        pos, x1, x2, r2 = _polar_point(key, pos)
        i += 2
        if i > count:
            has_gauss = True
            gauss = np.sqrt(-2.0 * np.log(r2) / r2) * x1
    return pos, has_gauss, gauss


def skip_standard_normal(count: int, random_state: np.random.RandomState | None = None) -> None:
    """Advance ``random_state`` (``None``: numpy's global one) as ``standard_normal(count)`` would.

    For noise that pyclarity draws and the caller does not need (HASPI never reads the
    noisy basilar-membrane motion), so later draws match pyclarity's.
    """
    rs = np.random.mtrand._rand if random_state is None else random_state
    name, key, pos, has_gauss, gauss = rs.get_state(legacy=True)
    key = np.array(key, dtype=np.uint32)
    pos, has_gauss, gauss = _skip_gaussian(int(count), key, int(pos), bool(has_gauss),
                                           float(gauss))
    rs.set_state((name, key, pos, int(has_gauss), gauss))
