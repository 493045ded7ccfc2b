"""What each kind of input is worth: a predictor fitted with one group of features left out.

    python benchmarks/ablations.py [--data-root R] [--train-scores F1,F2] [--scores F1,F2]
                                   [--fit-split train] [--split valid] [--predictor gbm]
                                   [--predictor-options JSON] [--feature NAME] [--folds 5]
                                   [--group-by auto|track|prompt] [--n-boot 1000]

The groups, by what a feature needs besides the audio the listener heard:

- ``unprocessed audio``: the intrusive measures, which compare with the unprocessed
  signal: columns ``stoi*``, ``estoi*`` (and ``pesq``, ``haspi``, ``hasqi``, ``haaqi``,
  ``sisdr`` from other teams' files).
- ``lyrics``: what needs the lyric line. The words-correct scores are counted against
  it (``asr.<model>.left/right/better_ear``, ``asr.chorus.*``, the official
  ``whisper.*``), and ``n_words`` (the record column gbm adds) is its length. What
  Whisper says without the lyrics stays: the ASR confidences, compression ratios,
  repetition flags and ``words_heard``.
- ``hearing loss``: the listener's category, every record given the same category: gbm's
  category column is then constant (a tree never splits on it) and logistic-hl fits one
  curve for all (its per-category models are gone).

``n_words`` is left out the same way (every record gets ``n_words`` 1). Each row is
out-of-fold on ``--fit-split`` (folds as ``fit_predict``'s), and, when ``--split``
names another labelled split with ``--scores``, fitted on the fit split and measured
there too. RMSE, NCC and KT come with 95% bootstrap intervals over prompts
(``prompt_bootstrap``), and the RMSE change against nothing left out with a paired one.

Default (the shipped demo): the Stage-2 features of the identity model, as
``benchmarks/predictors.py`` reads them. Demo labels are SYNTHETIC: mechanics only.
Real CLIP1 labels with the official precomputed scores: see ``benchmarks/predictors.py``'s
docstring, and pass the same ``--data-root`` and ``--train-scores`` here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a file: re-run as a module so that `code` is this project's package.
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.ablations", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

import numpy as np

from benchmarks.predictors import ROOT, demo_features, split_records
from code.config import HEARING_LOSS_CATEGORIES, SPLITS
from code.errors import DataError
from code.evaluation.comparison.compare import prompt_bootstrap
from code.evaluation.comparison.metrics import clip_metrics, ncc, rmse
from code.evaluation.prediction.calibration import FOLD_GROUPINGS
from code.evaluation.prediction.fitting import fit_predict
from code.evaluation.table import FeatureTable, read_feature_files

DEMO_ROOT = ROOT / "data" / "demo"
INTRUSIVE_PREFIXES = ("stoi", "estoi", "pesq", "haspi", "hasqi", "haaqi", "sisdr")
SCORED_SUFFIXES = (".left", ".right", ".better_ear")
GROUPS = ("unprocessed audio", "lyrics", "hearing loss")
SKIPPED = " skipped: "  # a row's cell when its fit failed


def column_group(name: str) -> str | None:
    """The group a feature column belongs to (``None``: the heard audio alone)."""
    head = name.split(".")[0].lower()
    if head in INTRUSIVE_PREFIXES:
        return "unprocessed audio"
    if head == "whisper" or name.startswith("asr.chorus."):
        return "lyrics"
    if head == "asr" and name.endswith(SCORED_SUFFIXES):
        return "lyrics"
    return None


def without(group: str | None, table: FeatureTable, records: list[dict]) -> tuple[FeatureTable, list[dict]]:
    """``table`` and ``records`` with ``group``'s features taken away (see the module doc)."""
    if group is None:
        return table, records
    keep = [i for i, n in enumerate(table.names) if column_group(n) != group]
    table = FeatureTable(list(table.signals), [table.names[i] for i in keep], table.values[:, keep])
    if group == "lyrics":
        records = [{**r, "n_words": 1} for r in records]
    elif group == "hearing loss":
        records = [{**r, "hearing_loss": HEARING_LOSS_CATEGORIES[0]} for r in records]
    return table, records


def _kt(p: np.ndarray, y: np.ndarray) -> float:
    return clip_metrics(p, y)["KT"]


def _cell(value: float, interval: tuple[float, float], digits: int) -> str:
    return f"{value:.{digits}f} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def measure(args, fit_table, fit_records, table, records, evaluated_on: str) -> list[str]:
    """One table row per group left out (and none), as markdown lines."""
    y_fit = np.array([100.0 * r["correctness"] for r in fit_records])
    truth = np.array([100.0 * r["correctness"] for r in records])
    prompts = [r["prompt"] for r in records]
    options = {"settings": args.predictor_options} if args.predictor_options else None
    lines = [f"| {evaluated_on}: left out | features | RMSE [95%] | NCC [95%] | KT [95%] | "
             "RMSE change vs none [95%] |", "|---|---|---|---|---|---|"]
    reference = None
    for group in (None, *GROUPS):
        fit_x, fit_r = without(group, fit_table, fit_records)
        x, r = without(group, table, records)
        label = group or "none"
        try:
            predicted, _ = fit_predict(args.predictor, fit_table=fit_x, fit_records=fit_r, fit_target_0_100=y_fit,
                                       predict_table=x, predict_records=r, n_folds=args.folds, seed=args.seed,
                                       feature=args.feature, options=options, group_by=args.group_by,
                                       skip_invalid=args.skip_invalid)
        except (DataError, ValueError) as e:  # e.g. a logistic whose one column was left out
            lines.append(f"| {label} | {len(fit_x.names)} |{SKIPPED}{str(e)[:120]} | | | |")
            continue
        p = np.array([predicted.get(s["signal"], np.nan) for s in records])
        ok = np.isfinite(p)
        p_ok, y_ok, prompts_ok = p[ok], truth[ok], [q for q, k in zip(prompts, ok) if k]
        m = clip_metrics(p_ok, y_ok)
        boot = dict(n_boot=args.n_boot, seed=args.seed)
        cells = [_cell(m["RMSE"], prompt_bootstrap(prompts_ok, lambda i: rmse(p_ok[i], y_ok[i]), **boot), 2),
                 _cell(m["NCC"], prompt_bootstrap(prompts_ok, lambda i: ncc(p_ok[i], y_ok[i]), **boot), 3),
                 _cell(m["KT"], prompt_bootstrap(prompts_ok, lambda i: _kt(p_ok[i], y_ok[i]), **boot), 3)]
        if group is None:
            reference = p
            cells.append("")
        elif reference is not None and np.all(np.isfinite(reference[ok])):
            base = reference[ok]
            change = prompt_bootstrap(prompts_ok, lambda i: rmse(p_ok[i], y_ok[i]) - rmse(base[i], y_ok[i]), **boot)
            cells.append(_cell(m["RMSE"] - rmse(base, y_ok), change, 2))
        else:
            cells.append("")
        names = ", ".join(fit_x.names) if len(fit_x.names) <= 3 else f"{len(fit_x.names)} columns"
        lines.append(f"| {label} | {names} | " + " | ".join(cells) + " |")
    return lines


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise argparse.ArgumentTypeError(f"not a JSON object: {text[:80]!r} ({e})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"not a JSON object: {text[:80]!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=DEMO_ROOT,
                        help="folder holding cadenza_data/metadata/<split>_metadata.json")
    parser.add_argument("--train-scores", default=None, help="feature JSONL file(s) of --fit-split, comma-separated")
    parser.add_argument("--scores", default=None, help="feature file(s) of --split, when it is another split")
    parser.add_argument("--fit-split", default="train", choices=SPLITS)
    parser.add_argument("--split", default=None, choices=SPLITS,
                        help="a labelled split to measure on as well (needs --scores, or the demo's Stage-2 "
                             "features of it)")
    parser.add_argument("--predictor", default="gbm")
    parser.add_argument("--predictor-options", default=None, type=_json_object,
                        help="the predictor's settings, a JSON object")
    parser.add_argument("--feature", default=None, help="the column of a one-feature predictor")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--group-by", default="auto", choices=FOLD_GROUPINGS)
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of prompts (at least 1)")
    parser.add_argument("--skip-invalid", action="store_true")
    args = parser.parse_args(argv)
    if args.n_boot < 1:
        parser.error(f"--n-boot must be at least 1 (resamples behind each 95% interval), got {args.n_boot}")
    if args.folds < 2:
        parser.error(f"--folds must be at least 2 (out-of-fold predictions need 2 or more folds), got {args.folds}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(parser, args)
    except DataError as e:  # a missing or malformed metadata or feature file, named
        print(f"ablations: {e}", file=sys.stderr)
        return 2


def _run(parser: argparse.ArgumentParser, args) -> int:
    fit_paths = ([Path(p) for p in args.train_scores.split(",") if p] if args.train_scores
                 else demo_features(ROOT / "results", args.fit_split))
    if not fit_paths:
        print(f"no Stage-2 features of the identity model for {args.fit_split!r} under {ROOT / 'results'}; "
              f"run first:\n  python main.py --split {args.fit_split} --model identity\n"
              "or pass --train-scores FILE[,FILE...]", file=sys.stderr)
        return 2
    fit_records = split_records(args.data_root, args.fit_split, labelled=True)
    fit_table, _ = read_feature_files(fit_paths, [r["signal"] for r in fit_records], skip_invalid=args.skip_invalid)
    fit_records = [r for r in fit_records if r["signal"] in set(fit_table.signals)]
    groups = {n: column_group(n) or "heard audio alone" for n in fit_table.names}
    print(f"# predictor={args.predictor} fit={args.fit_split} ({len(fit_records)}) folds={args.folds} "
          f"group-by={args.group_by} seed={args.seed} n_boot={args.n_boot}")
    print(f"# feature groups: {json.dumps(groups)}; records: n_words -> lyrics, hearing_loss -> hearing loss")
    tables = [measure(args, fit_table, fit_records, fit_table, fit_records, f"out-of-fold on {args.fit_split}")]
    print("\n".join(tables[-1]))
    if args.split and args.split != args.fit_split:
        paths = ([Path(p) for p in args.scores.split(",") if p] if args.scores
                 else demo_features(ROOT / "results", args.split))
        if not paths:
            parser.error(f"--split {args.split}: pass its feature files with --scores")
        records = split_records(args.data_root, args.split, labelled=True)
        table, _ = read_feature_files(paths, [r["signal"] for r in records], skip_invalid=args.skip_invalid)
        records = [r for r in records if r["signal"] in set(table.signals)]
        print()
        tables.append(measure(args, fit_table, fit_records, table, records,
                              f"fitted on {args.fit_split}, measured on {args.split} ({len(records)})"))
        print("\n".join(tables[-1]))
    rows = [line for lines in tables for line in lines[2:]]
    skipped = [line for line in rows if SKIPPED in line]
    if len(skipped) == len(rows):
        print(f"ablations: every row was skipped, nothing was measured; the first: "
              f"{skipped[0].split(SKIPPED, 1)[1].rstrip(' |')}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
