"""HAAQI speed: the project's fast HAAQI against pyclarity's ``compute_haaqi``, same inputs.

    python benchmarks/haaqi_speed.py [--signals 5] [--seconds S]

Signals, in turn: demo pairs (the left channel of a processed signal from
data/demo/**/signals/ against its unprocessed reference, 16 kHz, about 2.4 s) and
synthetic full-band pairs at 44.1 kHz (3 s: pink-ish noise, and a harmonic tone
with vibrato; the processed side is delayed, filtered, compressed and noisier).
Each signal is scored for the three hearing-loss categories (pyclarity's
AUDIOGRAM_REF, AUDIOGRAM_MILD, AUDIOGRAM_MODERATE), equalisation 1, with
``level1 = 65 - 20 log10(rms(reference))`` (the reference's RMS at 65 dB SPL).
numpy's global generator is seeded the same before each pair of calls (the ear
model draws its threshold noise from it).

Both run once on the longest signal first, so that neither total includes numba
compilation (pyclarity's jitted helpers, and loading this project's cached
kernels) or the fast side's first mapping of its workspace (memory that its later
calls reuse, as the calls of a report do); the first calls' times are printed.
Then the two take turns, case by case, so that a drift in the machine's speed
during the run touches both totals alike. Per-stage times come from timing
wrappers around each side's stage functions, active during that side's calls (the
fast side's stages run two threads each, so wall time is shown).
Last line: ``haaqi_speedup=X max_abs_diff=Y``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import threading
import time
from pathlib import Path
from unittest import mock

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrix products; no BLAS threads

if __name__ == "__main__" and not __package__:
    # Run as a file: re-run as a module so that `code` is this project's package.
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.haaqi_speed", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

import numpy as np
import soundfile
from clarity.evaluator.haaqi import compute_haaqi
from clarity.evaluator.haaqi import haaqi as pyclarity_haaqi
from clarity.utils.audiogram import AUDIOGRAM_MILD, AUDIOGRAM_MODERATE, AUDIOGRAM_REF
from scipy.signal import butter, lfilter

from code.evaluation.quality import ear as fast_ear
from code.evaluation.quality import haaqi as fast_haaqi
from code.evaluation.quality.haaqi import haaqi

DEMO_ROOT = Path(__file__).resolve().parents[1] / "data" / "demo"
AUDIOGRAMS = {"No Loss": AUDIOGRAM_REF, "Mild": AUDIOGRAM_MILD, "Moderate": AUDIOGRAM_MODERATE}
SYNTH_RATE = 44100
SYNTH_SECONDS = 3.0


def demo_pairs() -> list[Path]:
    """Processed demo signals that have an unprocessed reference beside them, sorted."""
    out = []
    for path in sorted(DEMO_ROOT.rglob("signals/*.flac")):
        ref = path.parent.parent / "unprocessed" / f"{path.stem}_unproc.flac"
        if ref.exists():
            out.append(path)
    return out


def synthetic_pair(kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(processed, reference) at 44.1 kHz: full-band noise or a harmonic tone, and a
    delayed, low-passed, compressed, noisier version of it."""
    rng = np.random.default_rng(seed)
    n = int(SYNTH_SECONDS * SYNTH_RATE)
    t = np.arange(n) / SYNTH_RATE
    if kind == "noise":
        white = rng.standard_normal(n)
        b, a = butter(1, 0.02)  # tilt towards low frequencies, keep the top
        reference = 0.7 * lfilter(b, a, white) + 0.05 * white
    else:
        f0 = 220 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
        phase = 2 * np.pi * np.cumsum(f0) / SYNTH_RATE
        reference = sum(np.sin(k * phase) / k for k in range(1, 40) if k * 220 < 20000)
        reference *= 0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t) ** 2  # slow level changes
    reference = 0.1 * reference / np.sqrt(np.mean(reference ** 2))
    b, a = butter(4, 6000 / (SYNTH_RATE / 2))
    processed = np.tanh(3 * lfilter(b, a, np.roll(reference, 120))) / 3
    processed += 0.003 * rng.standard_normal(n)
    return processed, reference


def signals(n: int) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    """n (name, processed, reference, sample rate), demo pairs and synthetic ones in turn."""
    demo = demo_pairs()
    out = []
    for i in range(n):
        if i % 2 == 0 and demo:
            path = demo[(i // 2) % len(demo)]
            processed, rate = soundfile.read(path, dtype="float64", always_2d=True)
            reference, ref_rate = soundfile.read(
                path.parent.parent / "unprocessed" / f"{path.stem}_unproc.flac",
                dtype="float64", always_2d=True)
            assert rate == ref_rate, path
            out.append((f"demo {path.stem[:8]}", processed[:, 0], reference[:, 0], rate))
        else:
            kind = "noise" if (i // 2) % 2 == 0 else "tone"
            processed, reference = synthetic_pair(kind, i)
            out.append((f"synthetic {kind}", processed, reference, SYNTH_RATE))
    return out


def level1_of(reference: np.ndarray) -> float:
    """dB SPL of RMS 1 that puts the reference's RMS at 65 dB SPL."""
    return 65.0 - 20 * np.log10(np.sqrt(np.mean(reference ** 2)))


_TIMES_LOCK = threading.Lock()  # the fast side's stages also run in worker threads


def timing(times: dict, name: str, func):
    """``func`` adding its wall time to ``times[name]`` (from any thread)."""
    @functools.wraps(func)
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            seconds = time.perf_counter() - start
            with _TIMES_LOCK:
                times[name] = times.get(name, 0.0) + seconds
    return timed


@contextlib.contextmanager
def stage_timers(times: dict, owner, names: list[str]):
    """Wrap ``owner.<name>`` for each name with a timer (same calls, only timed)."""
    with contextlib.ExitStack() as stack:
        for name in names:
            stack.enter_context(mock.patch.object(owner, name,
                                                  timing(times, name, getattr(owner, name))))
        yield


def print_stages(title: str, times: dict, total: float) -> None:
    parts = times.pop("parts", None)
    print(f"{title} per stage (s):")
    for stage, seconds in times.items():
        print(f"  {stage:<30}{seconds:8.3f}")
    print(f"  {'other':<30}{total - sum(times.values()):8.3f}")
    if parts:
        print(f"{title} ear_model parts (s; threads overlap, see EAR_PARTS):")
        for stage, seconds in parts.items():
            print(f"  {stage:<30}{seconds:8.3f}")


def report(metric: str, label: str, ref_title: str, fast_title: str, data, seconds: float, cases,
           theirs: list[float], mine: list[float], ref: tuple, fast: tuple, load_before: float) -> None:
    """Print both sides' scores, stage times and totals, then ``<metric>_speedup=X max_abs_diff=Y``.
    ``ref`` and ``fast``: (stage times, wall seconds, CPU seconds)."""
    (ref_stages, t_theirs, c_theirs), (fast_stages, t_mine, c_mine) = ref, fast
    diffs = np.abs(np.array(mine) - np.array(theirs))
    print(f"{len(data)} signals ({seconds:.1f} s of audio) x {len(AUDIOGRAMS)} audiograms "
          f"= {len(cases)} {label} calls each side")
    for (name, _, r, rate, category), a, b, d in zip(cases, theirs, mine, diffs):
        print(f"  {name:<18}{len(r) / rate:5.2f} s {rate:6d} Hz {category:<9}"
              f"pyclarity {a:.6f} fast {b:.6f} |diff| {d:.1e}")
    print_stages(ref_title, ref_stages, t_theirs)
    print_stages(fast_title, fast_stages, t_mine)
    print(f"pyclarity: {t_theirs:.2f} s ({t_theirs / len(cases) * 1000:.0f} ms/call), "
          f"CPU {c_theirs:.2f} s")
    print(f"fast:      {t_mine:.2f} s ({t_mine / len(cases) * 1000:.0f} ms/call), "
          f"CPU {c_mine:.2f} s (all threads)")
    print(f"CPU-time ratio {c_theirs / c_mine:.1f}; load average before the run "
          f"{load_before:.2f}, after {os.getloadavg()[0]:.2f} (other processes share the cores)")
    print(f"{metric}_speedup={t_theirs / t_mine:.1f} max_abs_diff={float(np.max(diffs)):.2e}")


def benchmark_cases(description: str, argv: list[str] | None = None) -> tuple[list, float, list, float]:
    """Parse ``--signals``; return the signals, their seconds of audio, the (signal x audiogram)
    cases and the load average before any work."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--signals", type=int, default=5, help="signals (each x 3 audiograms)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="cut each signal to at most this long (default: whole; the tests' smallest size)")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    data = signals(args.signals)
    if args.seconds is not None:
        data = [(name, p[:int(args.seconds * rate)], r[:int(args.seconds * rate)], rate)
                for name, p, r, rate in data]
    seconds = sum(len(r) / rate for _, _, r, rate in data)
    cases = [(name, p, r, rate, category) for name, p, r, rate in data for category in AUDIOGRAMS]
    return data, seconds, cases, load_before


# The fast ear model's parts, timed inside its ``ear_model``: the cochlea, the alignments
# and the hair cells run one signal per thread (each thread's time is added, so they count
# about twice their wall time), and the threshold noise is drawn in a third thread meanwhile
EAR_PARTS = ["_aligned_inputs", "_middle_ear_inputs", "_cochlea", "peak_delays", "_hair_cells",
             "_threshold_noise"]


def warm_up(data: list, theirs, mine) -> None:
    """Score the longest signal once with each side, untimed in the totals, and print how long
    the first calls took: pyclarity's numba helpers compile, the fast side loads its cached
    kernels and maps its workspace (the memory its later calls reuse, as a report's calls do)."""
    _, p, r, rate = max(data, key=lambda item: len(item[2]) / item[3])
    seconds = []
    for score in (theirs, mine):
        start = time.perf_counter()
        score(p, r, rate)
        seconds.append(time.perf_counter() - start)
    print(f"first calls (longest signal, not in the totals): pyclarity {seconds[0]:.2f} s, "
          f"fast {seconds[1]:.2f} s")


def timed_sides(cases: list, sides: list[tuple]) -> list[tuple[list[float], tuple]]:
    """Score every case with each side, the sides taking turns case by case (a drift in the
    machine's speed then touches both alike), numpy's global generator seeded with the
    case's index before each call (both sides draw from it).

    ``sides``: ``(score, owner, stages, parts)`` each, ``score(processed, reference, rate,
    audiogram)``; ``owner.<stage>`` is timed during that side's calls only (the fast side
    calls some of pyclarity's functions too); ``parts``: optional (module, names) timed as
    well, into ``times["parts"]`` (sub-stages, not added to the stages' total).
    Returns per side: (scores, (per-stage times, wall seconds, CPU seconds)).
    """
    state = [([], {}, {}, [0.0, 0.0]) for _ in sides]
    for i, (_, p, r, rate, category) in enumerate(cases):
        for (score, owner, stages, parts), (out, times, part_times, totals) in zip(sides, state):
            with stage_timers(times, owner, stages), \
                    stage_timers(part_times, *(parts if parts else (owner, []))):
                np.random.seed(i)
                start, cpu = time.perf_counter(), time.process_time()
                out.append(score(p, r, rate, AUDIOGRAMS[category]))
                totals[0] += time.perf_counter() - start
                totals[1] += time.process_time() - cpu
    results = []
    for (_, _, _, parts), (out, times, part_times, (wall, cpu)) in zip(sides, state):
        if parts:
            times["parts"] = part_times
        results.append((out, (times, wall, cpu)))
    return results


def main(argv: list[str] | None = None) -> None:
    data, seconds, cases, load_before = benchmark_cases(__doc__.split("\n")[0], argv)

    warm_up(data, lambda p, r, rate: compute_haaqi(p, r, rate, rate, AUDIOGRAM_MILD),
            lambda p, r, rate: haaqi(p, r, rate, rate, AUDIOGRAM_MILD))

    (theirs, ref), (mine, fast) = timed_sides(cases, [
        (lambda p, r, rate, a: compute_haaqi(p, r, rate, rate, a, level1=level1_of(r)),
         pyclarity_haaqi.eb, ["ear_model", "env_smooth", "melcor9", "bm_covary", "ave_covary2"], None),
        (lambda p, r, rate, a: haaqi(p, r, rate, rate, a, level1=level1_of(r)),
         fast_haaqi, ["ear_model", "env_smooth", "melcor9", "bm_covary"], (fast_ear, EAR_PARTS))])
    report("haaqi", "HAAQI", "pyclarity compute_haaqi", "fast haaqi", data, seconds, cases, theirs, mine,
           ref, fast, load_before)


if __name__ == "__main__":
    main()
