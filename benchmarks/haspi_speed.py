"""HASPI v2 speed: the project's fast HASPI v2 against pyclarity's ``haspi_v2``, same inputs.

    python benchmarks/haspi_speed.py [--signals 5] [--seconds S]

The signals of ``benchmarks/haaqi_speed.py`` (demo pairs at 16 kHz and synthetic
full-band pairs at 44.1 kHz, in turn), each for the three hearing-loss categories
(AUDIOGRAM_REF, AUDIOGRAM_MILD, AUDIOGRAM_MODERATE), ``level1`` putting the
reference's RMS at 65 dB SPL, f_lp 320 Hz, itype 0. HASPI draws noise from numpy's
global generator (the ear model's BM threshold noise, then a 0.1 dB envelope
dither): the generator is seeded the same before each pair of calls, so both
sides see the same draws and the scores agree to rounding (across seeds they
would differ by about 1e-3).

Both run once on the longest signal first (``haaqi_speed.warm_up``), so that
neither total includes numba compilation or the fast side's first mapping of its
workspace; the first calls' times are printed. Then they take turns, case by case
(``haaqi_speed.timed_sides``). Per-stage times come from timing wrappers around
each side's stage functions. Last line: ``haspi_speedup=X max_abs_diff=Y``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrix products; no BLAS threads

if __name__ == "__main__" and not __package__:
    # Run as a file: re-run as a module so that `code` is this project's package.
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.haspi_speed", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

from clarity.evaluator.haspi import haspi as pyclarity_haspi
from clarity.evaluator.haspi import haspi_v2 as pyclarity_haspi_v2
from clarity.utils.audiogram import AUDIOGRAM_MILD

from benchmarks.haaqi_speed import (EAR_PARTS, benchmark_cases, level1_of, report, timed_sides,
                                     warm_up)
from code.evaluation.quality import ear as fast_ear
from code.evaluation.quality import haspi as fast_haspi
from code.evaluation.quality.haspi import haspi_v2


def main(argv: list[str] | None = None) -> None:
    data, seconds, cases, load_before = benchmark_cases(__doc__.split("\n")[0], argv)

    warm_up(data, lambda p, r, rate: pyclarity_haspi_v2(r, rate, p, rate, AUDIOGRAM_MILD),
            lambda p, r, rate: haspi_v2(r, rate, p, rate, AUDIOGRAM_MILD))

    stages = ["ear_model", "env_filter", "cepstral_correlation_coef", "fir_modulation_filter",
              "modulation_cross_correlation"]
    (theirs, ref), (mine, fast) = timed_sides(cases, [
        (lambda p, r, rate, a: pyclarity_haspi_v2(r, rate, p, rate, a, level1=level1_of(r))[0],
         pyclarity_haspi, stages, None),
        (lambda p, r, rate, a: haspi_v2(r, rate, p, rate, a, level1=level1_of(r))[0],
         fast_haspi, stages, (fast_ear, EAR_PARTS))])
    report("haspi", "HASPI v2", "pyclarity haspi_v2", "fast haspi_v2", data, seconds, cases, theirs, mine,
           ref, fast, load_before)


if __name__ == "__main__":
    main()
