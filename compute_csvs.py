"""Compare submission CSVs with listener ground truth (RMSE, Std, NCC, KT), one row per model and split.

    python compute_csvs.py                      # every submission in results/ and here, vs the demo's labels
    python compute_csvs.py --data-root /data/clip1            # labels of whichever split each CSV covers
    python compute_csvs.py results/ my.csv --ground-truth /data/clip1/cadenza_data/metadata/valid_metadata.json
    python compute_csvs.py --baseline identity --plot --json scores.json

Each CSV is matched with the labels of the split whose signals it holds (any split whose
metadata carries ``correctness``: CLIP1's valid and eval labels were released after the
challenge). ``--baseline`` adds, for every other model, the paired difference on shared
signals (dRMSE, dNCC) with a 95% bootstrap interval that resamples prompts.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

# ----------------------------------------------------------------------------
# Defaults. Edit here, or override on the command line. Relative paths here are
# relative to this file's folder; paths given on the command line, to the current one.
# ----------------------------------------------------------------------------
HERE = Path(__file__).resolve().parent
DATA_ROOT = None  # None: the data root of main.py's config (the demo unless edited)
SEARCH = [HERE / "results", Path(".")]  # where to look for CSVs when none are given
BASELINE = "identity"  # the model every other is paired with, when present ("" for none)
# ----------------------------------------------------------------------------

log = logging.getLogger("compute_csvs")


def default_data_root() -> Path:
    if DATA_ROOT is not None:
        return HERE / DATA_ROOT
    from main import CONFIG

    return HERE / CONFIG.data_root


def metadata_files(data_root: Path, challenge: str = "") -> dict[str, Path]:
    """``{split: metadata file}`` of the data root (the folder holding ``cadenza_data/``,
    ``cadenza_data/`` itself, or CLIP2's ``cadenza_data/clip2/``).

    Raises:
        DataError: listing the paths looked for, when the root holds no CLIP metadata.
    """
    from code.config import SPLITS
    from code.data.layout import resolve_data_root

    folder = resolve_data_root(Path(data_root), challenge).metadata_dir
    return {split: folder / f"{split}_metadata.json" for split in SPLITS}


def _fmt(x: float, width: int = 6, digits: int = 3) -> str:
    return f"{'nan':>{width}}" if math.isnan(x) else f"{x:{width}.{digits}f}"


def format_table(rows: list[dict]) -> str:
    lines = [f"{'model':<28} {'split':<6} {'n':>5} {'lacks':>5} {'RMSE':>7} {'Std':>6} {'NCC':>6} "
             f"{'KT':>6}  RMSE by hearing loss"]
    for r in sorted(rows, key=lambda r: (r["split"], r["RMSE"])):
        by_loss = ", ".join(f"{k} {v['RMSE']:.2f}" for k, v in r["per_hearing_loss"].items())
        lines.append(f"{r['name']:<28} {r['split']:<6} {r['n']:>5} {r['truth_not_predicted']:>5} "
                     f"{r['RMSE']:7.2f} {r['Std']:6.2f} {_fmt(r['NCC'])} {_fmt(r['KT'])}  {by_loss}")
    return "\n".join(lines)


def format_differences(diffs: list) -> str:
    lines = [f"\npaired with {diffs[0].baseline} on shared signals (95% bootstrap CI, prompts resampled):",
             f"{'model':<28} {'n':>5} {'dRMSE':>7} {'95% CI':>17} {'dNCC':>7} {'95% CI':>17}"]
    for d in diffs:
        lines.append(f"{d.model:<28} {d.n:>5} {d.d_rmse:+7.2f} "
                     f"[{d.d_rmse_ci[0]:+6.2f}, {d.d_rmse_ci[1]:+6.2f}] {d.d_ncc:+7.3f} "
                     f"[{d.d_ncc_ci[0]:+6.3f}, {d.d_ncc_ci[1]:+6.3f}]")
    lines.append("(dRMSE < 0 and dNCC > 0: better than the baseline; an interval holding 0: "
                 "no clear difference)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("compute_csvs", "code"):
        logging.getLogger(name).setLevel(logging.INFO)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", type=Path,
                        help="CSV files or folders (default: results/ beside this file, and .)")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="folder holding cadenza_data/; each CSV is compared with the labels of "
                             "the split it covers (default: main.py's data root)")
    parser.add_argument("--ground-truth", type=Path,
                        help="one metadata JSON with correctness (0..1) for every CSV (overrides --data-root)")
    parser.add_argument("--challenge", default="", choices=["", "clip1", "clip2"],
                        help="clip1 or clip2 when the data root holds both (default: from the layout)")
    parser.add_argument("--target", default="correctness",
                        help="label field (0..1): correctness (default), or phoneme_correctness for CLIP2")
    parser.add_argument("--baseline", default=BASELINE,
                        help=f"model name or CSV path to pair every other model with ('' for none; default: {BASELINE})")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--plot", type=Path, nargs="?", const=Path("comparison.png"),
                        help="write one figure comparing all models (default file: comparison.png)")
    args = parser.parse_args(argv)

    from code.errors import DataError
    from code.evaluation.comparison import find_submissions, load_labels
    from code.io_utils import write_json_atomic

    try:
        if args.ground_truth:
            files = {"given": args.ground_truth}
            if not args.ground_truth.is_file():
                raise DataError(f"ground truth file not found: {args.ground_truth}")
        else:
            files = metadata_files(args.data_root or default_data_root(), args.challenge)
        labels, unlabelled = load_labels(files, target=args.target)
    except DataError as e:
        log.error("%s", e)
        return 2
    if args.ground_truth and not labels:
        log.error("%s has no %r on every record: it cannot be ground truth", args.ground_truth, args.target)
        return 2
    submissions = find_submissions(args.paths or SEARCH)
    if not submissions:
        log.error("no submission CSVs found in %s; make one with e.g. "
                  "`python main.py --split train --models identity,NLR1`",
                  ", ".join(map(str, args.paths or SEARCH)))
        return 1
    rows, by_key, without_labels, broken = compare_all(submissions, labels)
    for s in broken:
        print(f"{s.path}: not comparable: {s.error}")
    if without_labels:
        names = ", ".join(sorted({s.name for s in without_labels}))
        print(f"{len(without_labels)} submission(s) cover signals without labels "
              f"({'split(s) ' + ', '.join(unlabelled) + ' have none' if unlabelled else 'no labelled split matches'}): {names}")
    if not rows:
        log.error("nothing could be compared: no submission covers a labelled split. Out-of-fold "
                  "predictions on the labelled training split: `python main.py --split train "
                  "--models identity,NLR1`, then `python compute_csvs.py`")
        return 1
    print(format_table(rows))
    for r in rows:
        if r["scale_warning"]:
            log.warning("%s: every score is within 0..1: is it on the 0..1 scale? "
                        "Submissions are 0..100", r["path"])
        if r["absent_from_truth"]:
            log.warning("%s: %d signal ID(s) are not in the %s labels (left out)", r["path"],
                        r["absent_from_truth"], r["split"])
    diffs = paired(args.baseline, submissions, rows, by_key, labels)
    if diffs:
        print(format_differences(diffs))
    if args.json:
        write_json_atomic(args.json, {"rows": [{k: v for k, v in r.items() if k != "predictions"}
                                               for r in rows],
                                      "paired": [d.to_dict() for d in diffs]})
    if args.plot:
        from code.evaluation.comparison_plot import plot_comparison

        plot_comparison(rows, labels, args.plot)
        log.info("plot: %s", args.plot)
    return 0


def compare_all(submissions, labels):
    """Rows of figures, one per (model, split); submissions without labels; broken ones."""
    from code.evaluation.comparison import covering_split, metrics_by_category, overall_metrics

    rows, by_key, without_labels, broken = [], {}, [], []
    for s in submissions:
        if s.error:
            broken.append(s)
            continue
        split = covering_split(s.predictions, labels)
        if split is None:
            without_labels.append(s)
            continue
        figures = overall_metrics(s.predictions, labels[split])
        row = {"name": s.name, "split": split, "path": str(s.path), **figures,
               "per_hearing_loss": metrics_by_category(s.predictions, labels[split]),
               "scale_warning": all(0.0 <= v <= 1.0 for v in s.predictions.values()),
               "predictions": s.predictions}
        key = (s.name, split)
        if key in by_key:  # same model and split twice (e.g. a copy elsewhere): keep the first
            log.info("%s: same model and split as %s; listed once", s.path, by_key[key]["path"])
            continue
        by_key[key] = row
        rows.append(row)
    return rows, by_key, without_labels, broken


def paired(baseline: str, submissions, rows, by_key, labels) -> list:
    """Paired differences of every model with the baseline, split by split."""
    from code.evaluation.comparison import paired_difference

    if not baseline:
        return []
    base_rows = [r for r in rows if r["name"] == baseline or r["path"] == baseline
                 or Path(r["path"]).name == baseline]
    if not base_rows and Path(baseline).is_file():
        from code.evaluation.comparison import covering_split
        from code.evaluation.metrics import read_submission

        predictions = read_submission(Path(baseline))
        split = covering_split(predictions, labels)
        base_rows = [{"name": Path(baseline).name, "split": split, "predictions": predictions,
                      "path": baseline}] if split else []
    diffs = []
    for base in base_rows:
        for r in rows:
            if r["split"] != base["split"] or r["path"] == base["path"]:
                continue
            d = paired_difference(r["predictions"], base["predictions"], labels[r["split"]],
                                  names=(f"{r['name']} ({r['split']})", base["name"]))
            if d is not None:
                diffs.append(d)
    return diffs


if __name__ == "__main__":
    sys.exit(main())
