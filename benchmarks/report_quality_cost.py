"""What music quality costs in a hearing-aid report, and what pyclarity's HAAQI would cost.

    python main.py --input unprocessed --models identity,NLR1 --results-dir R   # first
    python benchmarks/report_quality_cost.py [--results-dir R] [--models identity,NLR1]
        [--pyclarity-signals 6]

Times the report's own HAAQI (``ear_haaqi``: both ears of every model's output against the
unprocessed audio, as the report computes it, no store) over every signal of the split, and
pyclarity's ``compute_haaqi`` with the same arguments (docs/quality.md's call) on the first
``--pyclarity-signals`` of them (all with 0), in one run. Checks that the two agree, and
prints pyclarity's time for all signals: measured when it ran on all of them, else its
measured time per signal times their number (said so). Last line:
``report_haaqi_s=X pyclarity_haaqi_s=Y speedup=Z max_abs_diff=D``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

if __name__ == "__main__" and not __package__:
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.report_quality_cost", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

import numpy as np
from clarity.evaluator.haaqi import compute_haaqi

from code.data.audio import read_audio
from code.evaluation.quality.aid_quality import EQUALISATION, LEVEL1_DB_SPL, NOISE_SEED, ear_haaqi
from code.models.audiograms import DEFAULT_AUDIOGRAMS

RATE = 44100


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--data-root", default="data/demo/cadenza_data")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--models", default="identity,NLR1")
    parser.add_argument("--pyclarity-signals", type=int, default=6, help="0: every signal")
    args = parser.parse_args(argv)
    data = Path(args.data_root)
    records = json.loads((data / "metadata" / f"{args.split}_metadata.json").read_text())
    jobs = []
    for model in args.models.split(","):
        for r in records:
            jobs.append((model, r, read_audio(Path(args.results_dir) / model / "from_unprocessed" /
                                              f"{r['signal']}.wav", RATE),
                         read_audio(data / args.split / "unprocessed" / f"{r['signal']}_unproc.flac", RATE)))
    seconds = sum(out.shape[-1] for _, _, out, _ in jobs) / RATE
    warm = jobs[0]  # both sides compile (numba) on a short excerpt first
    ear_haaqi(warm[2][:, :RATE // 2], warm[3][:, :RATE // 2], RATE, DEFAULT_AUDIOGRAMS["Mild"])
    compute_haaqi(warm[2][0, :RATE // 2].astype(np.float64), warm[3][0, :RATE // 2].astype(np.float64),
                  RATE, RATE, DEFAULT_AUDIOGRAMS["Mild"], equalisation=EQUALISATION, level1=LEVEL1_DB_SPL)
    start = time.perf_counter()
    ours = [ear_haaqi(out, ref, RATE, DEFAULT_AUDIOGRAMS[r["hearing_loss"]]) for _, r, out, ref in jobs]
    fast_s = time.perf_counter() - start
    n_py = len(jobs) if args.pyclarity_signals <= 0 else min(args.pyclarity_signals, len(jobs))
    subset = jobs[:: max(1, len(jobs) // n_py)][:n_py]  # spread over the models and categories
    start = time.perf_counter()
    diffs = []
    for model, r, out, ref in subset:
        audiogram = DEFAULT_AUDIOGRAMS[r["hearing_loss"]]
        for ear, channel in (("left", 0), ("right", 1)):
            np.random.seed(NOISE_SEED)
            theirs = compute_haaqi(out[channel].astype(np.float64), ref[channel].astype(np.float64), RATE, RATE,
                                   audiogram, equalisation=EQUALISATION, level1=LEVEL1_DB_SPL)
            diffs.append((model, r["signal"], ear, theirs))
    py_s = time.perf_counter() - start
    index = {(m, r["signal"]): i for i, (m, r, _, _) in enumerate(jobs)}
    max_diff = max(abs(ours[index[(m, s)]][f"haaqi.{e}"] - v) for m, s, e, v in diffs)
    start = time.perf_counter()
    for _, r, out, ref in subset:
        ear_haaqi(out, ref, RATE, DEFAULT_AUDIOGRAMS[r["hearing_loss"]])
    fast_subset = time.perf_counter() - start
    ratio = py_s / fast_subset
    estimated = py_s / len(subset) * len(jobs)
    how = "measured" if len(subset) == len(jobs) else f"estimated from {len(subset)} of {len(jobs)} signals"
    print(f"{len(jobs)} signals ({args.models} on {args.split}, {seconds:.1f} s of stereo audio): the "
          f"report's HAAQI {fast_s:.1f} s; pyclarity on the same {len(subset)} signals {py_s:.1f} s against "
          f"{fast_subset:.1f} s (x{ratio:.1f}); pyclarity for all: {estimated:.0f} s ({how})")
    print(f"report_haaqi_s={fast_s:.1f} pyclarity_haaqi_s={estimated:.0f} speedup={ratio:.1f} "
          f"max_abs_diff={max_diff:.2e}")


if __name__ == "__main__":
    main()
