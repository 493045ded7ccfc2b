"""How well each learned predictor predicts listeners: one line per predictor.

    python benchmarks/predictors.py [--data-root R] [--train-scores F1,F2] [--scores F1,F2]
                                    [--fit-split train] [--split train] [--folds 5] [--feature NAME]
                                    [--group-by auto|track|prompt] [--stack-feature NAME]

Fits every predictor of ``PREDICTORS`` on the labelled ``--fit-split`` and
predicts ``--split`` (out-of-fold where the two share a track or prompt: folds
grouped by track when the metadata carries ``fma``, else by prompt, or as
``--group-by`` says; so ``--split train`` on ``--fit-split train`` gives honest
figures), then prints
``predictor=NAME rmse=X ncc=Y kt=Z n=N`` per predictor, after a ``predictor=mean``
line (the out-of-fold mean of the targets, the floor to beat). With several
feature columns and no ``--feature``, the logistic predictors run once per
column (``feature=...`` on their lines).

Real CLIP1 labels, no audio (the official precomputed training scores)::

    mkdir -p /tmp/clip1/cadenza_data/metadata
    ln -sf /work/shared/data/clip1/train_metadata.json /tmp/clip1/cadenza_data/metadata/
    P=$(python -c "import recipes,os;print(os.path.join(recipes.__path__[0],'cad_icassp_2026/baseline/precomputed'))")
    python benchmarks/predictors.py --data-root /tmp/clip1 \\
        --train-scores $P/cadenza_data.train.whisper.jsonl,$P/cadenza_data.train.stoi.jsonl

Default (the shipped demo): the Stage-2 features of the identity model on the demo
train split, ``results/identity/features.train.*.jsonl`` (made by
``python main.py --split train --model identity``). Demo labels are synthetic:
its figures prove mechanics, never quality.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a file: re-run as a module so that `code` is this project's package.
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.predictors", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

import numpy as np

from code.data.metadata import check_records, load_metadata
from code.errors import DataError
from code.evaluation.comparison.metrics import clip_metrics
from code.evaluation.prediction.calibration import FOLD_GROUPINGS, fold_groups, prompt_folds
from code.evaluation.prediction.fitting import fit_predict
from code.evaluation.prediction.capabilities import ONE_COLUMN
from code.evaluation.prediction.predictors import PREDICTORS
from code.evaluation.table import read_feature_files

ROOT = Path(__file__).resolve().parents[1]
DEMO_ROOT = ROOT / "data" / "demo"


def split_records(data_root: Path, split: str, *, labelled: bool) -> list[dict]:
    """A split's checked metadata records (no audio needed).

    Raises:
        DataError: listing the problems of the metadata.
    """
    path = Path(data_root) / "cadenza_data" / "metadata" / f"{split}_metadata.json"
    records = load_metadata(path)
    problems = check_records(records, require_correctness=labelled)
    if problems:
        listing = "\n  ".join(str(p) for p in problems[:10])
        raise DataError(f"{len(problems)} problem(s) in {path}:\n  {listing}")
    return records


def demo_features(results: Path, split: str) -> list[Path]:
    """The newest Stage-2 feature file of the identity model for ``split``, if any."""
    found = [p for d in results.glob("*") if d.is_dir() and d.name.lower() == "identity"
             for p in d.glob(f"features.{split}.*.jsonl")]
    return sorted(found, key=lambda p: p.stat().st_mtime)[-1:]


def out_of_fold_mean(fit_records: list[dict], y: np.ndarray, records: list[dict], *,
                     n_folds: int, seed: int, group_by: str = "auto") -> np.ndarray:
    """The mean target of the other folds (the folds of ``fit_predict``) for shared
    groups, else the mean."""
    groups, other, _ = fold_groups(fit_records, records, by=group_by)
    folds = prompt_folds(groups, n_folds=n_folds, seed=seed)
    fold_of = dict(zip(groups, folds.tolist()))
    out = np.full(len(records), float(y.mean()))
    for i, g in enumerate(other):
        if g in fold_of:
            out[i] = y[folds != fold_of[g]].mean()
    return out


def _line(label: str, predicted: np.ndarray, truth: np.ndarray) -> str:
    m = clip_metrics(predicted, truth)
    return f"{label} rmse={m['RMSE']:.2f} ncc={m['NCC']:.3f} kt={m['KT']:.3f} n={len(truth)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=DEMO_ROOT,
                        help="folder holding cadenza_data/metadata/<split>_metadata.json")
    parser.add_argument("--train-scores", default=None, help="feature JSONL file(s) of --fit-split, comma-separated")
    parser.add_argument("--scores", default=None, help="feature file(s) of --split (default: --train-scores "
                                                       "when the splits are the same)")
    parser.add_argument("--fit-split", default="train")
    parser.add_argument("--split", default="train")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--feature", default=None, help="the column of the logistic predictors")
    parser.add_argument("--skip-invalid", action="store_true")
    parser.add_argument("--group-by", default="auto", choices=FOLD_GROUPINGS,
                        help="fold groups: track (fma) and prompt, prompt only, or auto (track when "
                             "the fit metadata has fma)")
    parser.add_argument("--stack-feature", default=None,
                        help="the column of stack's logistic member (default: the stack's own choice: "
                             "the chorus mean, else the better-ear ASR score; name one for files "
                             "without them, e.g. whisper.mixture)")
    parser.add_argument("--predictors", default=",".join(PREDICTORS),
                        help="comma-separated predictor names (default: all)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    if args.train_scores:
        fit_paths = [Path(p) for p in args.train_scores.split(",") if p]
    else:
        fit_paths = demo_features(ROOT / "results", args.fit_split)
        if not fit_paths:
            print(f"no Stage-2 features of the identity model for {args.fit_split!r} under "
                  f"{ROOT / 'results'}; run first:\n  python main.py --split {args.fit_split} "
                  "--model identity\nor pass --train-scores FILE[,FILE...]", file=sys.stderr)
            return 2
    if args.scores:
        predict_paths = [Path(p) for p in args.scores.split(",") if p]
    elif args.split == args.fit_split:
        predict_paths = fit_paths
    else:
        parser.error("--scores is needed when --split differs from --fit-split")

    fit_records = split_records(args.data_root, args.fit_split, labelled=True)
    records = (fit_records if args.split == args.fit_split
               else split_records(args.data_root, args.split, labelled=True))
    fit_table, skipped = read_feature_files(fit_paths, [r["signal"] for r in fit_records],
                                            skip_invalid=args.skip_invalid)
    table, skipped_predict = ((fit_table, skipped) if predict_paths == fit_paths else
                              read_feature_files(predict_paths, [r["signal"] for r in records],
                                                 skip_invalid=args.skip_invalid))
    fit_records = [r for r in fit_records if r["signal"] in set(fit_table.signals)]
    records = [r for r in records if r["signal"] in set(table.signals)]
    if skipped or skipped_predict:
        print(f"left out {len(skipped) + len(skipped_predict)} signal(s) without features", file=sys.stderr)
    y_fit = np.array([100.0 * r["correctness"] for r in fit_records])
    truth = np.array([100.0 * r["correctness"] for r in records])
    how = fold_groups(fit_records, by=args.group_by)[2]
    print(f"# fit={args.fit_split} ({len(fit_records)}) predict={args.split} ({len(records)}) "
          f"folds={args.folds} grouped by {how} seed={args.seed} features={fit_table.names}")

    mean = out_of_fold_mean(fit_records, y_fit, records, n_folds=args.folds, seed=args.seed,
                            group_by=args.group_by)
    print(_line("predictor=mean", mean, truth))
    for name in [n for n in args.predictors.split(",") if n]:
        cls = PREDICTORS.get(name)  # an unknown name is refused by fit_predict, below
        one_column = cls is not None and cls.takes == ONE_COLUMN
        columns = ([args.feature] if args.feature or not one_column or len(fit_table.names) == 1
                   else fit_table.names)
        for column in columns:
            # a one-column predictor's column; a blend's (stack's) one-column members' column
            feature = column if one_column else (args.stack_feature if cls and cls.uses_feature else None)
            try:
                predicted, _ = fit_predict(name, fit_table=fit_table, fit_records=fit_records,
                                           fit_target_0_100=y_fit, predict_table=table,
                                           predict_records=records, n_folds=args.folds,
                                           seed=args.seed, feature=feature, group_by=args.group_by,
                                           skip_invalid=args.skip_invalid)
            except (DataError, ValueError) as e:  # a column outside 0..1 or with gaps for the logistic,
                # or a fit that does not converge (a 0/1 flag): say so, go on
                print(f"predictor={name}" + (f" feature={column}" if len(columns) > 1 else "")
                      + f" skipped: {e}")
                continue
            label = f"predictor={name}" + (f" feature={column}" if len(columns) > 1 else "")
            print(_line(label, np.array([predicted[r["signal"]] for r in records]), truth))
    return 0


if __name__ == "__main__":
    sys.exit(main())
