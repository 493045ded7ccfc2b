"""How much of the machine this process may use: CPU cores and free memory.

``os.cpu_count()`` counts every core of the machine, even when the process is
pinned to a few (``taskset``, cgroups, a SLURM allocation); these helpers ask
what this process is actually allowed to use.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

MEMINFO = Path("/proc/meminfo")


def available_cpus() -> int:
    """CPU cores this process may run on (at least 1).

    The process's CPU affinity (``os.sched_getaffinity``), further limited by
    ``SLURM_CPUS_PER_TASK`` when that is set to a positive integer.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "").strip()
    if slurm.isdigit() and int(slurm) > 0:
        cpus = min(cpus, int(slurm))
    return max(1, cpus)


def available_memory_bytes() -> int | None:
    """``MemAvailable`` from ``/proc/meminfo`` in bytes, or None where it cannot be read."""
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # the file gives kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def cap_workers_by_memory(workers: int, bytes_per_worker: float, *, what: str) -> int:
    """``workers``, lowered (and logged) so that each gets ``bytes_per_worker`` of free memory."""
    free = available_memory_bytes()
    if free is None:
        return workers
    fits = max(1, int(free // bytes_per_worker))
    if fits < workers:
        logger.info("%s: %d worker(s) instead of %d: %.1f GB of memory available, "
                    "about %.2f GB needed per worker", what, fits, workers, free / 1e9,
                    bytes_per_worker / 1e9)
        return fits
    return workers


def torch_device(device: str | None = None, *, option: str = "--device") -> str:
    """The torch device to run on: ``device``, or for None, ``""`` and ``"auto"``, ``cuda``
    when torch sees a GPU, else ``cpu`` (torch is imported on first use).

    Raises:
        ValueError: naming ``option``, for a CUDA device when torch sees none.
    """
    import torch

    if not device or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"{option} {device!r}, but torch sees no CUDA device (torch {torch.__version__}); "
                         f"use {option} cpu")
    return device
