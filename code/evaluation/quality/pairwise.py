"""numpy's pairwise summation, compiled, for sums that must match pyclarity's to the bit."""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, inline="always")
def _block_sum(a: np.ndarray, lo: int, n: int) -> float:
    # numpy's pairwise-sum leaf (n <= 128): eight running sums, then the rest in order.
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        j = lo + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@numba.njit(cache=True, nogil=True)
def pairwise_sum(a: np.ndarray) -> float:
    """``np.sum(a)`` of a 1-D contiguous float64 array in numpy's own order: bit-identical.

    numpy splits ``n > 128`` elements into halves (the first rounded down to a
    multiple of 8), recursively; this walks the same tree with an explicit stack
    (numba's cache mishandles recursive functions).
    """
    stack_lo = np.empty(64, dtype=np.int64)
    stack_n = np.empty(64, dtype=np.int64)
    partial = np.empty(64)  # a node's left-half sum, waiting for its right half
    state = np.zeros(64, dtype=np.int64)  # 0: left half pending, 1: right half pending, 2: done
    depth = 0
    stack_lo[0] = 0
    stack_n[0] = a.shape[0]
    result = 0.0
    while depth >= 0:
        lo, n = stack_lo[depth], stack_n[depth]
        if n <= 128 or state[depth] == 2:
            value = _block_sum(a, lo, n) if n <= 128 else partial[depth]
            state[depth] = 0
            depth -= 1
            if depth < 0:
                result = value
            elif state[depth] == 0:
                # the parent's left half is done: keep it and descend into its right half
                partial[depth] = value
                state[depth] = 1
                n2 = stack_n[depth] // 2
                n2 -= n2 % 8
                depth += 1
                stack_lo[depth] = stack_lo[depth - 1] + n2
                stack_n[depth] = stack_n[depth - 1] - n2
                state[depth] = 0
            else:
                partial[depth] = partial[depth] + value
                state[depth] = 2
            continue
        n2 = n // 2
        n2 -= n2 % 8
        depth += 1
        stack_lo[depth] = lo
        stack_n[depth] = n2
        state[depth] = 0
    return result


@numba.njit(cache=True, nogil=True)
def rms(x: np.ndarray, scratch: np.ndarray) -> float:
    """``np.sqrt(np.mean(x ** 2))`` to the bit; ``scratch`` holds at least ``len(x)`` values."""
    n = x.shape[0]
    for i in range(n):
        scratch[i] = x[i] * x[i]
    return math.sqrt(pairwise_sum(scratch[:n]) / n)


@numba.njit(cache=True, nogil=True)
def _block_sum_lanes(a: np.ndarray, lo: int, n: int, acc: np.ndarray, res: np.ndarray) -> None:
    # _block_sum of rows lo .. lo + n - 1 of every column of a at once (acc: [8, columns])
    lanes = a.shape[1]
    if n < 8:
        for j in range(lanes):
            res[j] = 0.0
        for i in range(lo, lo + n):
            for j in range(lanes):
                res[j] += a[i, j]
        return
    for m in range(8):
        for j in range(lanes):
            acc[m, j] = a[lo + m, j]
    i = 8
    while i < n - (n % 8):
        for m in range(8):
            for j in range(lanes):
                acc[m, j] += a[lo + i + m, j]
        i += 8
    for j in range(lanes):
        res[j] = ((acc[0, j] + acc[1, j]) + (acc[2, j] + acc[3, j])) + (
            (acc[4, j] + acc[5, j]) + (acc[6, j] + acc[7, j]))
    while i < n:
        for j in range(lanes):
            res[j] += a[lo + i, j]
        i += 1


@numba.njit(cache=True, nogil=True)
def pairwise_sum_columns(a: np.ndarray, out: np.ndarray) -> None:
    """``out[j] = np.sum(a[:, j])`` for a C-contiguous ``[n, columns]`` array, to the bit.

    Each column is summed in numpy's order for a contiguous 1-D array (the tree of
    ``pairwise_sum``), all columns at once: the rows are read in order, so a
    sample-major array is summed without transposing it.
    """
    lanes = a.shape[1]
    stack_lo = np.empty(64, dtype=np.int64)
    stack_n = np.empty(64, dtype=np.int64)
    partial = np.empty((64, lanes))  # a node's left-half sums, waiting for its right half
    state = np.zeros(64, dtype=np.int64)  # 0: left half pending, 1: right half pending, 2: done
    acc = np.empty((8, lanes))
    value = np.empty(lanes)
    depth = 0
    stack_lo[0] = 0
    stack_n[0] = a.shape[0]
    while depth >= 0:
        lo, n = stack_lo[depth], stack_n[depth]
        if n <= 128 or state[depth] == 2:
            if n <= 128:
                _block_sum_lanes(a, lo, n, acc, value)
            else:
                value[:] = partial[depth]
            state[depth] = 0
            depth -= 1
            if depth < 0:
                out[:] = value
            elif state[depth] == 0:
                partial[depth] = value
                state[depth] = 1
                n2 = stack_n[depth] // 2
                n2 -= n2 % 8
                depth += 1
                stack_lo[depth] = stack_lo[depth - 1] + n2
                stack_n[depth] = stack_n[depth - 1] - n2
                state[depth] = 0
            else:
                for j in range(lanes):
                    partial[depth, j] = partial[depth, j] + value[j]
                state[depth] = 2
            continue
        n2 = n // 2
        n2 -= n2 % 8
        depth += 1
        stack_lo[depth] = lo
        stack_n[depth] = n2
        state[depth] = 0
