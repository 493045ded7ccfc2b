"""Pair values (HAAQI, HASPI, STOI/eSTOI) computed by worker processes, each on its own cores.

``pair_results`` runs ``compute(audio, reference, sample_rate, **parts)`` for each pair and
yields ``(index, values)`` as each is done, so the caller can store every value at once (an
interrupted run keeps all it yielded). With one job everything runs in this process, the
scores' own threads as they are; with more, ``jobs`` spawned processes take chunks of
pairs, each pinned to its own share of the cores this process may use (one core each when
there are as many workers as cores). Pinning keeps a worker's inner threads (the ear model
runs the reference and the processed signal in two) from competing with the other
workers' threads: on two cores, two unpinned workers score fewer signals per second than
one process alone (``benchmarks/stage2_scaling.py``).

Values do not depend on the number of jobs: each pair is computed by the same function on
the same input, whatever the process, and the scores seed their own noise per ear.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from code.data.audio import read_audio
from code.resources import available_cpus

logger = logging.getLogger(__name__)

Pair = tuple[Path, Path, dict]  # (audio, reference, the item's own arguments of compute)
MAX_CHUNK = 8  # pairs per task at most: a stopped run loses at most this many per worker
CHUNKS_PER_WORKER = 4  # at least this many tasks per worker (while pairs last), to balance the load
MIN_PAIRS_PER_WORKER = 16  # with --jobs 0, fewer pairs per worker than this: fewer workers


def worker_count(jobs: int, pairs: int) -> int:
    """How many processes compute ``pairs`` pairs for ``--jobs jobs``; 1 means this process
    alone. ``jobs`` 0 is every core this process may use, as long as each worker gets
    ``MIN_PAIRS_PER_WORKER`` pairs (starting a worker costs seconds: a small split is
    computed here); a number is that many workers (no more than the pairs)."""
    if jobs < 0:
        raise ValueError(f"expected jobs >= 0 (0: every available core), got {jobs}")
    if jobs == 0:
        return max(1, min(available_cpus(), pairs // MIN_PAIRS_PER_WORKER))
    return max(1, min(jobs, pairs))


def core_shares(cores: list[int], workers: int) -> list[set[int]]:
    """The cores of each of ``workers`` workers: disjoint shares of ``cores`` as equal as can
    be, or, with more workers than cores, one core each in turn."""
    if workers <= len(cores):
        bounds = [round(i * len(cores) / workers) for i in range(workers + 1)]
        return [set(cores[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    return [{cores[i % len(cores)]} for i in range(workers)]


def pair_results(pairs: list[Pair], compute: Callable[..., dict[str, float]], sample_rate: int, *,
                 jobs: int = 1, pin: bool = True) -> Iterator[tuple[int, dict[str, float]]]:
    """``(index, compute(audio, reference, sample_rate, **parts))`` for each of ``pairs``, in the
    order they finish, both files read at ``sample_rate``.

    ``jobs``: processes (0: every available core; 1: this process, as before). With more than
    one, ``compute`` must be picklable (a module-level function or a ``functools.partial`` of
    one) and each worker is pinned to its share of the cores unless ``pin`` is False (for
    the benchmark's comparison). An error in a worker is raised here once the pairs already
    being computed have finished and been yielded (pairs not started are dropped).
    """
    workers = worker_count(jobs, len(pairs))
    if workers == 1:
        for index, pair in enumerate(pairs):
            yield index, _compute_pair(compute, sample_rate, pair)
        return
    yield from _pooled(pairs, compute, sample_rate, workers, pin)


def worker_pool(workers: int, *, pin: bool = True, cores: list[int] | None = None) -> ProcessPoolExecutor:
    """``workers`` spawned processes, each pinned to its share of ``cores`` (default: the
    cores this process may use) unless ``pin`` is False. Spawned, not forked: a child forked
    from a process whose OpenMP threads (torch, numba) have run can hang."""
    context = multiprocessing.get_context("spawn")
    shares = context.SimpleQueue()
    if cores is None:
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    for share in (core_shares(cores, workers) if pin and cores else [set()] * workers):
        shares.put(share)
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_pin_worker,
                               initargs=(shares,))


def run_chunks(pool: ProcessPoolExecutor, pairs: list[Pair], compute: Callable[..., dict[str, float]],
               sample_rate: int, workers: int) -> Iterator[tuple[int, dict[str, float]]]:
    """``pair_results`` on a pool already started (``worker_pool``)."""
    size = max(1, min(MAX_CHUNK, math.ceil(len(pairs) / (workers * CHUNKS_PER_WORKER))))
    pending = {pool.submit(_compute_chunk, compute, sample_rate,
                           [(i, pairs[i]) for i in range(start, min(start + size, len(pairs)))])
               for start in range(0, len(pairs), size)}
    error = None
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                if future.cancelled():
                    continue
                if future.exception() is not None:
                    error = error or future.exception()
                    continue
                yield from future.result()
            if error is not None:  # stop: drop what has not started, keep what is running
                for future in pending:
                    future.cancel()
    finally:
        for future in pending:
            future.cancel()
    if error is not None:
        raise error


def _pooled(pairs: list[Pair], compute, sample_rate: int, workers: int,
            pin: bool) -> Iterator[tuple[int, dict[str, float]]]:
    logger.info("%d pair(s) in %d worker processes%s", len(pairs), workers,
                ", each on its own share of the cores" if pin else "")
    pool = worker_pool(workers, pin=pin)
    try:
        yield from run_chunks(pool, pairs, compute, sample_rate, workers)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _pin_worker(shares) -> None:
    """A worker's start: take its share of the cores (an empty share: leave it unpinned)."""
    share = shares.get()
    if share:
        try:
            os.sched_setaffinity(0, share)
        except OSError as e:  # a core taken away meanwhile: run where the system allows
            logger.warning("pair worker %d: could not pin to cores %s (%s)", os.getpid(), sorted(share), e)


def _compute_pair(compute, sample_rate: int, pair: Pair) -> dict[str, float]:
    path, reference, parts = pair
    return compute(read_audio(path, sample_rate), read_audio(reference, sample_rate), sample_rate, **parts)


def _compute_chunk(compute, sample_rate: int, chunk: list[tuple[int, Pair]]) -> list[tuple[int, dict]]:
    return [(index, _compute_pair(compute, sample_rate, pair)) for index, pair in chunk]
