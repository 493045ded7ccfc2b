"""The official CLIP1 baseline from pyclarity's precomputed scores, on a metadata folder: one line per figure.

    python benchmarks/official_baseline.py --metadata DIR [--results-dir DIR] [--kinds whisper,stoi]

``--metadata`` is a folder holding the released ``train_metadata.json`` (and
``valid_metadata.json`` if you have it; labels for valid came with metadata v1.2), or a data
root holding ``cadenza_data/metadata/``. No audio is needed: the benchmark builds a
metadata-only data root (links to those files) and runs, for each labelled split and each
official score file (``whisper``: openai-whisper ``base.en``, the official baseline;
``stoi``: the official STOI baseline), the same command a user would::

    python main.py --data-root ROOT --split train --model identity \\
        --scores PRECOMPUTED/cadenza_data.train.whisper.jsonl --results-dir RESULTS/train-whisper

The logistic calibrates the file's one column (the official baseline's calibration). On
train the predictions are out-of-fold (5 folds grouped by track and prompt); on valid the
logistic is fitted on the official training file. Each figure is computed from the
submission CSV written, against the split's labels, and printed as::

    official_baseline split=train kind=whisper rmse=R ncc=N kt=K n=N reference=...

``reference`` is the figure to compare with: the published valid figure, or the project's
reference on the train labels (docs/baselines.md). Splits without labels are named and skipped.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a file: re-run as a module so that `code` is this project's package.
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.official_baseline", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

import numpy as np

from code.data.metadata import load_metadata
from code.evaluation.asr.scoring import PRECOMPUTED_DIR
from code.evaluation.comparison.metrics import clip_metrics

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("whisper", "stoi")  # pyclarity's precomputed files: cadenza_data.<split>.<kind>.jsonl
# Figures to compare with, RMSE / NCC: valid as published with the baseline (and measured by the
# issue's reporter with this tool on the v1.2 labels); train out-of-fold as measured here
# (../shared/README.md, 5 folds grouped by prompt).
REFERENCE = {("train", "whisper"): "29.88/0.550 (out-of-fold reference)",
             ("train", "stoi"): "34.79 (out-of-fold reference)",
             ("valid", "whisper"): "29.12/0.603 (official baseline, valid)",
             ("valid", "stoi"): "35.99 (official STOI scores, valid)"}


def metadata_root(metadata: Path, work: Path) -> Path:
    """A data root holding only ``cadenza_data/metadata/`` with links to the metadata files
    found in ``metadata`` (a metadata folder, or a data root holding one); returns it."""
    source = metadata / "cadenza_data" / "metadata" if (metadata / "cadenza_data").is_dir() else metadata
    files = sorted(source.glob("*_metadata.json"))
    if not files:
        raise SystemExit(f"error: no *_metadata.json in {source} (expected the released "
                         "train_metadata.json, and valid_metadata.json if you have it)")
    folder = work / "cadenza_data" / "metadata"
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        link = folder / f.name
        if not link.exists():
            link.symlink_to(f.resolve())
    return work


def run_split(data_root: Path, split: str, kind: str, results: Path) -> Path:
    """``main.py`` on the official score file of ``split``; returns the submission CSV."""
    command = [sys.executable, str(ROOT / "main.py"), "--data-root", str(data_root), "--split", split,
               "--model", "identity", "--scores", str(PRECOMPUTED_DIR / f"cadenza_data.{split}.{kind}.jsonl"),
               "--results-dir", str(results)]
    if split != "train":  # the logistic is fitted on the same kind of score
        command += ["--train-scores", str(PRECOMPUTED_DIR / f"cadenza_data.train.{kind}.jsonl")]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    (csv_path,) = results.glob(f"submission_identity-*_{split}.csv")
    return csv_path


def figures(csv_path: Path, records: list[dict]) -> dict[str, float]:
    """RMSE, NCC, KT of a submission against the records' ``correctness`` (as 0..100)."""
    with csv_path.open(newline="") as f:
        predicted = {row[0]: float(row[1]) for row in list(csv.reader(f))[1:]}
    truth = {r["signal"]: 100.0 * r["correctness"] for r in records}
    signals = [s for s in predicted if s in truth]
    return {**clip_metrics(np.array([predicted[s] for s in signals]), np.array([truth[s] for s in signals])),
            "n": len(signals)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metadata", type=Path, required=True,
                        help="folder holding train_metadata.json (and valid_metadata.json), or a data root")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="where the submissions are written (default: a temporary folder)")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"official score files to run ({', '.join(KINDS)})")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    if not args.metadata.is_dir():
        parser.error(f"--metadata {args.metadata} is not a folder")
    if not set(kinds) <= set(KINDS):
        parser.error(f"--kinds must be among {KINDS}, got {args.kinds!r}")
    with tempfile.TemporaryDirectory() as tmp:
        data_root = metadata_root(args.metadata.resolve(), Path(tmp) / "root")
        results = args.results_dir or Path(tmp) / "results"
        for split in ("train", "valid"):
            path = data_root / "cadenza_data" / "metadata" / f"{split}_metadata.json"
            records = load_metadata(path) if path.is_file() else []
            if not records or not all("correctness" in r for r in records):
                print(f"official_baseline split={split} skipped: "
                      f"{'no labels in ' + str(path) if records else 'no ' + path.name}")
                continue
            for kind in kinds:
                m = figures(run_split(data_root, split, kind, results / f"{split}-{kind}"), records)
                print(f"official_baseline split={split} kind={kind} rmse={m['RMSE']:.2f} ncc={m['NCC']:.3f} "
                      f"kt={m['KT']:.3f} n={m['n']} reference={REFERENCE[(split, kind)]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
