"""Hearing-loss simulation speed: the project's fast MSBG against pyclarity's ``Ear``.

    python benchmarks/msbg_speed.py [--signals 20] [--seconds S]

Both simulators process the same real audio (demo excerpts scaled to a 0.9
peak, looped or cut to 3..6 s, 44.1 kHz stereo, the three hearing-loss
categories in turn) through ``code.hearing_loss.simulate_hearing_loss``, in one process, one after the
other: ``simulator="reference"`` is pyclarity's ``Ear`` as the recipes call
it, ``simulator="fast"`` the project's version (its filter designs are
cleared first, so designing them is timed too). Per-stage times come from
timing wrappers around pyclarity's stage functions during the reference run,
and from the fast simulator's own stage timer during its run (its two ears run
in parallel threads, so its stage times add up both threads).
BLAS runs one thread (unless OPENBLAS_NUM_THREADS is set): pyclarity's smearing
calls a 256x256 matrix-vector product per 1.5 ms frame, and threaded BLAS on a
busy machine makes that many times slower, which would flatter the ratio.
Last line: ``msbg_speedup=X max_abs_diff=Y``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import time
from pathlib import Path
from unittest import mock

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads; see the docstring

if __name__ == "__main__" and not __package__:
    # Run as a file: re-run as a module so that `code` is this project's package.
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.msbg_speed", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

import numpy as np
from clarity.evaluator.msbg import cochlea, msbg, smearing

from code.config import HEARING_LOSS_CATEGORIES
from code.data.audio import read_audio
from code.hearing_loss.design import _design
from code.hearing_loss.fast import STAGES, simulate_ear
from code.hearing_loss import simulator as simulator_module
from code.hearing_loss.simulator import simulate_hearing_loss
from code.models.audiograms import DEFAULT_AUDIOGRAMS

DEMO_ROOT = Path(__file__).resolve().parents[1] / "data" / "demo"


def demo_split_dir() -> Path:
    """The demo folder holding metadata/ and train/ (with or without a cadenza_data/ level)."""
    return min(DEMO_ROOT.rglob("train_metadata.json")).parent.parent


def signals(n: int, most_seconds: float | None = None) -> list[tuple[np.ndarray, str]]:
    """n real stereo excerpts at 44.1 kHz, peak 0.9, looped or cut to 3..6 s, categories in turn."""
    rng = np.random.default_rng(0)
    demo = demo_split_dir()
    records = json.loads((demo / "metadata" / "train_metadata.json").read_text())
    out = []
    for i in range(n):
        r = records[i % len(records)]
        audio = read_audio(demo / "train" / "unprocessed" / f"{r['signal']}_unproc.flac")
        audio = audio * (0.9 / np.max(np.abs(audio)))  # about full scale, as the bound assumes
        length = int(rng.uniform(3.0, 6.0) * 44100)
        if most_seconds is not None:
            length = min(length, int(most_seconds * 44100))
        category = HEARING_LOSS_CATEGORIES[i % len(HEARING_LOSS_CATEGORIES)]
        out.append((np.resize(audio, (2, length)).astype(np.float32), category))
    return out


def _timing(times: dict, stage, func):
    """``func`` that adds its run time to ``times[stage(args, kwargs)]``."""
    @functools.wraps(func)
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            key = stage(args, kwargs)
            times[key] = times.get(key, 0.0) + time.perf_counter() - start
    return timed


@contextlib.contextmanager
def pyclarity_stage_timers(times: dict):
    """Time pyclarity's MSBG stage functions (same calls, only timed) into ``times``."""
    def fixed(name: str):
        return lambda args, kwargs: name

    def direction(args, kwargs) -> str:
        return "back to free field" if kwargs.get("backward") else "outer/middle ear in"

    targets = [
        (msbg, "measure_rms", fixed("level")),
        (msbg, "lfilter", fixed("back to free field")),  # the final 18 kHz low-pass
        (cochlea, "gammatone_filterbank", fixed("gammatone filterbank")),
        (cochlea, "compute_envelope", fixed("envelopes")),
        (cochlea, "recruitment", fixed("recruitment")),
        (smearing.Smearer, "smear", fixed("smearing")),
    ]
    with contextlib.ExitStack() as stack:
        for owner, name, stage in targets:
            stack.enter_context(mock.patch.object(owner, name, _timing(times, stage, getattr(owner, name))))
        timed_filt = staticmethod(_timing(times, direction, msbg.Ear.src_to_cochlea_filt))
        stack.enter_context(mock.patch.object(msbg.Ear, "src_to_cochlea_filt", timed_filt))
        yield


def _print_stages(title: str, times: dict, total: float | None = None) -> None:
    print(f"{title} per stage (s):")
    for stage, seconds in times.items():
        print(f"  {stage:<28}{seconds:8.3f}")
    if total is not None:
        print(f"  {'other (design, glue)':<28}{total - sum(times.values()):8.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--signals", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=None,
                        help="cut each signal to at most this long (default: 3..6 s; the tests' smallest size)")
    args = parser.parse_args(argv)
    data = signals(args.signals, args.seconds)
    seconds = sum(a.shape[1] for a, _ in data) / 44100
    # Compile the fast simulator's loops once (cached on disk), then forget its designs.
    simulate_hearing_loss(data[0][0][:, :8820], DEFAULT_AUDIOGRAMS["Mild"], simulator="fast")
    _design.cache_clear()

    ref_stages: dict[str, float] = {}
    start = time.perf_counter()
    with pyclarity_stage_timers(ref_stages):
        theirs = [simulate_hearing_loss(a, DEFAULT_AUDIOGRAMS[c], simulator="reference") for a, c in data]
    t_theirs = time.perf_counter() - start
    fast_stages = {stage: 0.0 for stage in STAGES}
    timed_ear = functools.partial(simulate_ear, stage_times=fast_stages)
    start = time.perf_counter()
    with mock.patch.object(simulator_module, "simulate_ear", timed_ear):
        mine = [simulate_hearing_loss(a, DEFAULT_AUDIOGRAMS[c], simulator="fast") for a, c in data]
    t_mine = time.perf_counter() - start

    diff = max(float(np.max(np.abs(m - t))) for m, t in zip(mine, theirs))
    peak = max(float(np.max(np.abs(t))) for t in theirs)
    print(f"{len(data)} signals, {seconds:.1f} s of 44.1 kHz stereo audio "
          f"(categories: {', '.join(HEARING_LOSS_CATEGORIES)} in turn; 'No Loss' is passed through)")
    _print_stages("pyclarity Ear (before)", ref_stages, t_theirs)
    _print_stages("fast MSBG (after; both ears' threads added)", fast_stages)
    print(f"pyclarity Ear: {t_theirs:.2f} s ({t_theirs / len(data) * 1000:.0f} ms/signal)")
    print(f"fast MSBG:     {t_mine:.2f} s ({t_mine / len(data) * 1000:.0f} ms/signal)")
    print(f"output peak {peak:.3f}")
    print(f"msbg_speedup={t_theirs / t_mine:.1f} max_abs_diff={diff:.2e}")


if __name__ == "__main__":
    main()
