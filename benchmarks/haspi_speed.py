"""HASPI v2 speed: the project's fast HASPI v2 against pyclarity's ``haspi_v2``, same inputs.

    python benchmarks/haspi_speed.py [--signals 5]

The signals of ``benchmarks/haaqi_speed.py`` (demo pairs at 16 kHz and synthetic
full-band pairs at 44.1 kHz, in turn), each for the three hearing-loss categories
(AUDIOGRAM_REF, AUDIOGRAM_MILD, AUDIOGRAM_MODERATE), ``level1`` putting the
reference's RMS at 65 dB SPL, f_lp 320 Hz, itype 0. HASPI draws noise from numpy's
global generator (the ear model's BM threshold noise, then a 0.1 dB envelope
dither): the generator is seeded the same before each pair of calls, so both
sides see the same draws and the scores agree to rounding (across seeds they
would differ by about 1e-3).

Both run once on a short signal first, so that neither total includes numba
compilation. Per-stage times come from timing wrappers around each side's stage
functions. Last line: ``haspi_speedup=X max_abs_diff=Y``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrix products; no BLAS threads

if __name__ == "__main__" and not __package__:
    # Run as a file: re-run as a module so that `code` is this project's package.
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.haspi_speed", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

import numpy as np
from clarity.evaluator.haspi import haspi as pyclarity_haspi
from clarity.evaluator.haspi import haspi_v2 as pyclarity_haspi_v2
from clarity.utils.audiogram import AUDIOGRAM_MILD

from benchmarks.haaqi_speed import AUDIOGRAMS, level1_of, print_stages, signals, stage_timers
from code.evaluation.quality import haspi as fast_haspi
from code.evaluation.quality.haspi import haspi_v2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--signals", type=int, default=5, help="signals (each x 3 audiograms)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    data = signals(args.signals)
    seconds = sum(len(r) / rate for _, _, r, rate in data)
    cases = [(name, p, r, rate, category) for name, p, r, rate in data for category in AUDIOGRAMS]

    # Warm both once: pyclarity's numba helpers compile, the fast kernels load from cache.
    _, p, r, rate = data[0]
    pyclarity_haspi_v2(r[:rate // 2], rate, p[:rate // 2], rate, AUDIOGRAM_MILD)
    haspi_v2(r[:rate // 2], rate, p[:rate // 2], rate, AUDIOGRAM_MILD)

    stages = ["ear_model", "env_filter", "cepstral_correlation_coef", "fir_modulation_filter",
              "modulation_cross_correlation"]
    ref_stages: dict[str, float] = {}
    theirs, start, cpu = [], time.perf_counter(), time.process_time()
    with stage_timers(ref_stages, pyclarity_haspi, stages):
        for i, (_, p, r, rate, category) in enumerate(cases):
            np.random.seed(i)
            theirs.append(pyclarity_haspi_v2(r, rate, p, rate, AUDIOGRAMS[category],
                                             level1=level1_of(r))[0])
    t_theirs, c_theirs = time.perf_counter() - start, time.process_time() - cpu

    fast_stages: dict[str, float] = {}
    mine, start, cpu = [], time.perf_counter(), time.process_time()
    with stage_timers(fast_stages, fast_haspi, stages):
        for i, (_, p, r, rate, category) in enumerate(cases):
            np.random.seed(i)
            mine.append(haspi_v2(r, rate, p, rate, AUDIOGRAMS[category], level1=level1_of(r))[0])
    t_mine, c_mine = time.perf_counter() - start, time.process_time() - cpu

    diffs = np.abs(np.array(mine) - np.array(theirs))
    print(f"{len(data)} signals ({seconds:.1f} s of audio) x {len(AUDIOGRAMS)} audiograms "
          f"= {len(cases)} HASPI v2 calls each side")
    for (name, _, r, rate, category), a, b, d in zip(cases, theirs, mine, diffs):
        print(f"  {name:<18}{len(r) / rate:5.2f} s {rate:6d} Hz {category:<9}"
              f"pyclarity {a:.6f} fast {b:.6f} |diff| {d:.1e}")
    print_stages("pyclarity haspi_v2", ref_stages, t_theirs)
    print_stages("fast haspi_v2", fast_stages, t_mine)
    print(f"pyclarity: {t_theirs:.2f} s ({t_theirs / len(cases) * 1000:.0f} ms/call), "
          f"CPU {c_theirs:.2f} s")
    print(f"fast:      {t_mine:.2f} s ({t_mine / len(cases) * 1000:.0f} ms/call), "
          f"CPU {c_mine:.2f} s (all threads)")
    print(f"CPU-time ratio {c_theirs / c_mine:.1f}; load average before the run "
          f"{load_before:.2f}, after {os.getloadavg()[0]:.2f} (other processes share the cores)")
    print(f"haspi_speedup={t_theirs / t_mine:.1f} max_abs_diff={float(np.max(diffs)):.2e}")


if __name__ == "__main__":
    main()
