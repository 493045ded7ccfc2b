"""Stage 2's pair values on every core: signals per second of HAAQI, HASPI and STOI/eSTOI at
1, 2, ... worker processes, the parallel efficiency, and today's way beside them.

    python benchmarks/stage2_scaling.py [--signals 12] [--seconds 4] [--max-jobs N]

Signals: demo pairs (a processed signal from data/demo/cadenza_data/valid/signals/ and its
unprocessed reference), read at 44.1 kHz and repeated or cut to ``--seconds`` (CLIP1's are
about 4 s), written as float WAV files; HAAQI with the Mild audiogram, as the report runs
it (``aid_quality``), HASPI and STOI as Stage 2's features do. A "signal" is both ears.

Ways, per measure (each through ``code.evaluation.pair_workers``, as ``pair_values`` calls
it, reading the audio files in the workers):

- ``today``: one process, the ear model's own threads (HAAQI and HASPI run the reference
  and the processed signal in two threads): ``--jobs 1``;
- ``k core``: k worker processes, each pinned to one core (its threads take turns there):
  single-threaded workers; ``1 core`` is the unit of the efficiency
  (``efficiency = rate(k) / (k * rate(1 core))``);
- ``2 free``: two workers not pinned, their threads competing for every core (the choice
  ``pair_workers`` makes against).

Each pool is started and warmed first (one pair per worker, not timed), so the rates are of
the steady state; the pools' start-up is printed apart. Every value is compared with
today's: HAAQI and HASPI must be equal, STOI/eSTOI within 1e-12 (pystoi's eSTOI differs in
its last bits between runs of one process).

On a shared machine the figures move with the other work on it; the ratios come from one
run. Last line: ``haaqi_jobs2_speedup=X identical=True`` (two single-core workers against
one, in signals per second).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a file: re-run as a module so that `code` is this project's package.
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.stage2_scaling", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

import numpy as np
import soundfile
from clarity.utils.audiogram import AUDIOGRAM_MILD

from code.data.audio import read_audio
from code.evaluation.features.intrusive import intrusive_features
from code.evaluation.pair_workers import pair_results, run_chunks, worker_pool
from code.evaluation.quality.aid_quality import _audiogram_parts, _ear_haaqi_of_parts
from code.evaluation.quality.haspi_features import haspi_features
from code.resources import available_cpus

DEMO_VALID = Path(__file__).resolve().parents[1] / "data" / "demo" / "cadenza_data" / "valid"
RATE = 44100
CLIP1_VALID_SIGNALS = 1175  # CLIP1 valid: signals (two ears each, about 4 s)
REPORT_MODELS = 2  # --models identity,NLR1: HAAQI of each model's outputs
MEASURES = {
    "haaqi": (_ear_haaqi_of_parts, _audiogram_parts(AUDIOGRAM_MILD), 0.0),
    "haspi": (haspi_features, {}, 0.0),
    "stoi": (functools.partial(intrusive_features, max_lag_s=0.05), {}, 1e-12),
}


def make_pairs(folder: Path, count: int, seconds: float) -> list[tuple[Path, Path, dict]]:
    """``count`` (processed, reference) WAV files of ``seconds`` each, from the demo pairs."""
    heard = sorted((DEMO_VALID / "signals").glob("*.flac"))
    length = int(seconds * RATE)
    out = []
    for index in range(count):
        source = heard[index % len(heard)]
        paths = []
        for name, path in (("p", source), ("r", DEMO_VALID / "unprocessed" / f"{source.stem}_unproc.flac")):
            audio = read_audio(path, RATE)
            audio = np.tile(audio, (1, math.ceil(length / audio.shape[1])))[:, :length]
            paths.append(folder / f"{name}{index}.wav")
            soundfile.write(paths[-1], audio.T, RATE, subtype="FLOAT")
        out.append((paths[0], paths[1], {}))
    return out


def _timed_today(pairs, compute) -> tuple[float, dict]:
    list(pair_results(pairs[:1], compute, RATE, jobs=1))  # warm: compiled kernels, workspace
    start = time.perf_counter()
    values = dict(pair_results(pairs, compute, RATE, jobs=1))
    return len(pairs) / (time.perf_counter() - start), values


def _timed_pool(pairs, compute, workers: int, *, cores: list[int] | None) -> tuple[float, dict, float]:
    start = time.perf_counter()
    pool = worker_pool(workers, pin=cores is not None, cores=cores)
    try:
        # One pair per worker: starts each process and warms its kernels and workspace
        list(run_chunks(pool, (pairs * workers)[:workers], compute, RATE, workers))
        started = time.perf_counter() - start
        start = time.perf_counter()
        values = dict(run_chunks(pool, pairs, compute, RATE, workers))
        return len(pairs) / (time.perf_counter() - start), values, started
    finally:
        pool.shutdown()


def _equal(a: dict, b: dict, tolerance: float) -> bool:
    return a.keys() == b.keys() and all(
        a[i].keys() == b[i].keys() and all(abs(a[i][k] - b[i][k]) <= tolerance
                                           or (math.isnan(a[i][k]) and math.isnan(b[i][k])) for k in a[i])
        for i in a)


def measure(name: str, pairs, max_jobs: int, cores: list[int]) -> dict:
    """Rates (signals/s) of ``name`` by each way, and whether every way gave today's values."""
    function, parts, tolerance = MEASURES[name]
    compute = functools.partial(function, **parts) if parts else function
    rates, identical = {}, True
    rates["today"], reference = _timed_today(pairs, compute)
    print(f"{name}: today (one process, its own threads): {rates['today']:.2f} signals/s", flush=True)
    ways = [(f"{k} core", k, cores[:k]) for k in range(1, max_jobs + 1)]
    if max_jobs >= 2:
        ways.append(("2 free", 2, None))
    for label, workers, pinned in ways:
        rate, values, started = _timed_pool(pairs, compute, workers, cores=pinned)
        same = _equal(values, reference, tolerance)
        identical &= same
        rates[label] = rate
        extra = ""
        if label.endswith(" core"):
            efficiency = rate / (workers * rates["1 core"])
            extra = f", efficiency {efficiency:.2f}"
        print(f"{name}: {label:>7}: {rate:.2f} signals/s ({rate / rates['today']:.2f}x today{extra}); "
              f"pool start and warm-up {started:.1f} s; same values: {same}", flush=True)
    return {"rates": rates, "identical": identical}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signals", type=int, default=12, help="signals per measure and way")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each signal (s)")
    parser.add_argument("--max-jobs", type=int, default=0, help="the most workers (0: every core)")
    parser.add_argument("--measures", default="haaqi,haspi,stoi", help="comma-separated: haaqi, haspi, stoi")
    args = parser.parse_args(argv)
    names = [m for m in args.measures.split(",") if m]
    unknown = [m for m in names if m not in MEASURES]
    if unknown or "haaqi" not in names:
        parser.error(f"--measures: expected haaqi and any of {', '.join(MEASURES)}, got {args.measures!r}")
    if args.signals < 1 or args.seconds <= 0:
        parser.error("--signals and --seconds must be positive")
    cores = sorted(os.sched_getaffinity(0))
    max_jobs = min(args.max_jobs or len(cores), len(cores))
    print(f"{len(cores)} core(s) ({available_cpus()} available), load average "
          f"{os.getloadavg()[0]:.2f}; {args.signals} signals of {args.seconds:g} s at {RATE} Hz", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        pairs = make_pairs(Path(folder), args.signals, args.seconds)
        results = {name: measure(name, pairs, max_jobs, cores) for name in names}
    haaqi = results["haaqi"]["rates"]
    if max_jobs >= 2:
        # Signals of 4 s (CLIP1's) take 4 / --seconds times as long as these
        signals, scale = REPORT_MODELS * CLIP1_VALID_SIGNALS, 4.0 / args.seconds
        minutes = signals * scale / (16 * haaqi["2 core"] / 2) / 60  # 16 cores at the 2-core efficiency
        print(f"CLIP1 valid --models identity,NLR1 HAAQI ({signals} signals of 4 s): about {minutes:.1f} min "
              f"on 16 cores at this 2-core efficiency; today's way "
              f"{signals * scale / haaqi['today'] / 60:.0f} min on any machine")
        speedup = haaqi["2 core"] / haaqi["1 core"]
    else:
        speedup = float("nan")
    print(f"haaqi_today={haaqi['today']:.2f}/s haaqi_jobs2={haaqi.get('2 core', math.nan):.2f}/s "
          f"haaqi_jobs2_vs_today={haaqi.get('2 core', math.nan) / haaqi['today']:.2f}")
    print(f"haaqi_jobs2_speedup={speedup:.2f} identical={all(r['identical'] for r in results.values())}")


if __name__ == "__main__":
    main()
