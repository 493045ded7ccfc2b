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
import json
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


def _other(r: dict) -> str:
    """The settings besides data set, input, predictor and fit split that set a row apart."""
    return ",".join(r["other"]) or "-"


def format_table(rows: list[dict]) -> str:
    width = max([12] + [len(r["model"]) for r in rows])  # long model names keep the columns aligned
    other = max([14] + [len(_other(r)) for r in rows])
    lines = [f"{'model':<{width}} {'data':<12} {'split':<6} {'input':<11} {'predictor':<12} {'fit':<11} "
             f"{'other':<{other}} {'n':>4} {'lacks':>5} {'RMSE':>7} {'Std':>6} {'NCC':>6} {'KT':>6}  "
             "RMSE by hearing loss"]
    for r in sorted(rows, key=lambda r: (r["data_set"], r["split"], r["RMSE"])):
        by_loss = ", ".join(f"{k} {v['RMSE']:.2f}" for k, v in r["per_hearing_loss"].items())
        lines.append(f"{r['model']:<{width}} {r['data_set']:<12} {r['split']:<6} {r['input']:<11} "
                     f"{r['predictor']:<12} {r['fit']:<11} {_other(r):<{other}} {r['n']:>4} "
                     f"{r['truth_not_predicted']:>5} {r['RMSE']:7.2f} {r['Std']:6.2f} {_fmt(r['NCC'])} "
                     f"{_fmt(r['KT'])}  {by_loss}")
    if any(r["data_set"] == "?" for r in rows):
        lines.append("(data '?': a CSV without the .run.json main.py writes beside it, matched by "
                     "its signal IDs with the labels of --data-root)")
    return "\n".join(lines)


def format_differences(diffs: list, baseline: str) -> str:
    lines = [f"\npaired with the {baseline} run of the same settings, on shared signals "
             "(95% bootstrap CI, prompts resampled):",
             f"{'run':<40} {'baseline':<28} {'n':>4} {'dRMSE':>7} {'95% CI':>17} {'dNCC':>7} {'95% CI':>17}"]
    for d in diffs:
        lines.append(f"{d.model:<40} {d.baseline:<28} {d.n:>4} {d.d_rmse:+7.2f} "
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
                        help="folder holding cadenza_data/: the labels for CSVs without provenance "
                             "(a .run.json beside them); each is compared with the split it covers "
                             "(default: main.py's data root)")
    parser.add_argument("--ground-truth", type=Path,
                        help="one metadata JSON with correctness (0..1) for every CSV (overrides "
                             "--data-root and every CSV's provenance)")
    parser.add_argument("--challenge", default="", choices=["", "clip1", "clip2"],
                        help="clip1 or clip2 when the data root holds both (default: from the layout)")
    parser.add_argument("--target", default="correctness",
                        help="label field (0..1) for CSVs without provenance: correctness (default), "
                             "or phoneme_correctness for CLIP2")
    parser.add_argument("--baseline", default=BASELINE,
                        help="the model each run is paired with, in its run of the same settings, or "
                             f"a CSV path ('' for none; default: {BASELINE})")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--plot", type=Path, nargs="?", const=Path(""),
                        help="write one figure comparing all runs (default file: comparison.png in "
                             "the first folder searched, e.g. results/)")
    parser.add_argument("--html", type=Path, nargs="?", const=Path(""),
                        help="write one HTML page per group of compared runs (split, input and "
                             "settings: report_<split>_<input>[...].html in the first folder "
                             "searched, e.g. results/), or at FILE when one group")
    args = parser.parse_args(argv)

    from code.errors import DataError
    from code.evaluation.comparison.compare import find_submissions, load_labels
    from code.io_utils import write_json_atomic

    search = args.paths or SEARCH
    submissions = find_submissions(search)
    bare = [s for s in submissions if s.provenance is None and not s.error]
    labels, unlabelled = {}, []
    try:
        if args.ground_truth:
            if not args.ground_truth.is_file():
                raise DataError(f"ground truth file not found: {args.ground_truth}")
            labels, unlabelled = load_labels({"given": args.ground_truth}, target=args.target)
            if not labels:
                log.error("%s has no %r on every record: it cannot be ground truth", args.ground_truth,
                          args.target)
                return 2
        elif bare or not submissions:
            labels, unlabelled = load_labels(metadata_files(args.data_root or default_data_root(),
                                                            args.challenge), target=args.target)
    except DataError as e:
        log.error("%s", e)
        return 2
    if not submissions:
        log.error("no submission CSVs found in %s; make one with e.g. "
                  "`python main.py --split train --models identity,NLR1`", ", ".join(map(str, search)))
        return 1
    rows, without_labels, broken = compare_all(submissions, labels, unlabelled,
                                               use_provenance=not args.ground_truth)
    for s in broken:
        print(f"{s.path}: not comparable: {s.error}")
    for s, why in without_labels:
        print(f"{s.path.name}: not scored: {why}")
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
    diffs, missing = paired(args.baseline, rows, target=args.target)
    if diffs:
        print(format_differences(diffs, args.baseline))
    for line in missing:
        print(line)
    if args.json:
        hidden = ("predictions", "truth", "match")
        write_json_atomic(args.json, {"rows": [{k: v for k, v in r.items() if k not in hidden}
                                               for r in rows],
                                      "paired": [d.to_dict() for d in diffs],
                                      "unpaired": missing})
    if args.plot is not None:
        from code.evaluation.comparison.plot import plot_comparison

        folder = next((p for p in search if p.is_dir()), HERE / "results")
        plot = args.plot if str(args.plot) not in ("", ".") else folder / "comparison.png"
        plot_comparison(rows, plot)
        log.info("plot: %s", plot)
    if args.html is not None:
        from code.evaluation.outputs.html_report import write_html_reports

        folder = next((p for p in search if p.is_dir()), HERE / "results")
        write_html_reports([Path(r["path"]) for r in rows if "config" in r],
                           args.html if str(args.html) not in ("", ".") else folder,
                           baseline=args.baseline if not args.baseline.endswith(".csv") else BASELINE)
    return 0


def _labels_of(record: dict, cache: dict) -> tuple[dict | None, str]:
    """The labels of a run's own data set and split (from its provenance), or why there are none."""
    from code.errors import DataError
    from code.evaluation.comparison.compare import load_labels
    from code.io_utils import file_digest

    data = record["data_set"]
    path = Path(data.get("metadata_file", ""))
    key = (str(path), record.get("target", "correctness"))
    if key not in cache:
        if not path.is_file():
            cache[key] = (None, f"its data set's metadata {path} is gone")
        else:
            try:
                labels, _ = load_labels({record["split"]: path}, target=key[1])
            except DataError as e:
                cache[key] = (None, str(e))
            else:
                note = ""
                if data.get("metadata_digest") and file_digest(path) != data["metadata_digest"]:
                    note = f"{path} changed since the run (scored against its labels now)"
                cache[key] = ((labels.get(record["split"]), note) if labels else
                              (None, f"{data.get('name')} ({record.get('challenge', '?').upper()}) "
                                     f"{record['split']} has no labels ({key[1]})"))
    return cache[key]


def _row_settings(s) -> dict:
    """What sets a run apart, for the table and for pairing."""
    from code.runs import _LABELS

    record = s.provenance
    if record is None:
        return {"model": s.name, "run": s.name, "data_set": "?", "challenge": "?", "input": "?",
                "predictor": "?", "fit": "?", "other": [], "tag": "", "match": ("bare",)}
    diffs = record.get("differs_from_defaults", {})
    config = record.get("config", {})
    other = ([f"tag={record['tag']}"] if record.get("tag") else []) + [
        _LABELS[k](v) if k in _LABELS else k for k, v in diffs.items()
        if k not in ("predictor", "fit_split")]
    data = record["data_set"]
    match = (data.get("metadata_dir"), record.get("challenge"), record["split"], record.get("input"),
             record.get("tag"), json.dumps(diffs, sort_keys=True))
    return {"model": record["model"], "run": record["run"], "data_set": data.get("name", "?"),
            "challenge": record.get("challenge", "?"), "input": record.get("input", "?"),
            "predictor": config.get("predictor", "?"),
            "fit": "+".join(sorted(p.strip() for p in config.get("fit_split", "?").split(","))),
            "other": other, "tag": record.get("tag", ""), "match": match, "config": config}


def compare_all(submissions, labels, unlabelled=(), *, use_provenance: bool = True):
    """Rows of figures, one per run (or bare CSV) and split; submissions that cannot be
    scored, with why; broken ones. A run is scored against its own data set's split (its
    provenance); a bare CSV against the ``labels`` split holding most of its signals."""
    from code.evaluation.comparison.compare import covering_split, metrics_by_category, overall_metrics

    rows, seen, without_labels, broken, cache = [], {}, [], [], {}
    for s in submissions:
        if s.error:
            broken.append(s)
            continue
        if s.provenance is not None and use_provenance:
            truth, why = _labels_of(s.provenance, cache)
            split = s.provenance["split"]
            if truth is None:
                without_labels.append((s, why))
                continue
            if why:
                log.warning("%s: %s", s.path, why)
        else:
            split = covering_split(s.predictions, labels)
            if split is None:
                without_labels.append((s, f"no labels for its signals ({'split(s) ' + ', '.join(unlabelled) + ' have none' if unlabelled else 'no labelled split matches'})"))
                continue
            truth = labels[split]
        settings = _row_settings(s) if use_provenance else _row_settings(
            type(s)(s.path, s.name, s.predictions))
        key = (settings["match"], settings["run"], split)
        if key in seen:  # the same run twice (e.g. a copy elsewhere): keep the first
            log.info("%s: same run and split as %s; listed once", s.path, seen[key]["path"])
            continue
        figures = overall_metrics(s.predictions, truth)
        row = {"name": settings["run"], **settings, "split": split, "path": str(s.path), **figures,
               "per_hearing_loss": metrics_by_category(s.predictions, truth),
               "scale_warning": all(0.0 <= v <= 1.0 for v in s.predictions.values()),
               "predictions": s.predictions, "truth": truth}
        seen[key] = row
        rows.append(row)
    return rows, without_labels, broken


def paired(baseline: str, rows: list[dict], *, target: str = "correctness") -> tuple[list, list[str]]:
    """Each run paired with the ``baseline`` model's run that matches it in everything but
    the model (data set, split, input, tag and every other setting); bare CSVs with the bare
    baseline CSV of their split. Returns the differences and, for runs without such a
    baseline, a line saying so with the command that would make it."""
    from code.evaluation.comparison.compare import covering_split, paired_difference
    from code.runs import command_for

    if not baseline:
        return [], []
    if baseline.endswith(".csv") and Path(baseline).is_file():
        from code.evaluation.comparison.metrics import read_submission

        predictions = read_submission(Path(baseline))
        bases = [{"name": Path(baseline).name, "predictions": predictions, "path": baseline}]
        diffs = []
        for r in rows:
            if r["path"] != baseline and covering_split(predictions, {"x": r["truth"]}):
                d = paired_difference(r["predictions"], predictions, r["truth"],
                                      names=(f"{r['name']} ({r['split']})", bases[0]["name"]))
                if d is not None:
                    diffs.append(d)
        return diffs, []
    by_match = {(r["match"], r["split"]): r for r in rows if r["model"] == baseline}
    diffs, missing = [], []
    for r in rows:
        if r["model"] == baseline:
            continue
        base = by_match.get((r["match"], r["split"]))
        if base is None:
            if "config" in r:
                missing.append(f"{r['name']} ({r['split']}): no {baseline} run with the same settings "
                               f"to pair with; make it with: {command_for(r['config'], model=baseline)}")
            else:
                missing.append(f"{r['name']} ({r['split']}): no {baseline} CSV of the same split to pair with")
            continue
        d = paired_difference(r["predictions"], base["predictions"], r["truth"],
                              names=(f"{r['name']} ({r['split']})", base["name"]))
        if d is not None:
            diffs.append(d)
    return diffs, missing


if __name__ == "__main__":
    sys.exit(main())
