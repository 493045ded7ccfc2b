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
import sys
from pathlib import Path

from code.errors import unknown_arguments

# ----------------------------------------------------------------------------
# Defaults. Edit here, or override on the command line. Relative paths here are
# relative to this file's folder; paths given on the command line, to the current one.
# ----------------------------------------------------------------------------
HERE = Path(__file__).resolve().parent
DATA_ROOT = "data/demo"  # the labels of CSVs without a .run.json beside them (the demo's, as main.py's default)
SEARCH = [HERE / "results", Path(".")]  # where to look for CSVs when none are given
BASELINE = "identity"  # the model every other is paired with, when present ("" for none)
# ----------------------------------------------------------------------------

log = logging.getLogger("compute_csvs")


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
                             f"(default: {DATA_ROOT})")
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
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # one short line with the closest option, not the usage block
        parser.exit(2, f"{parser.prog}: error: {unknown_arguments(unknown, list(parser._option_string_actions))} "
                       "(python compute_csvs.py --help lists every option)\n")

    from code.data.synthetic import labels_are_synthetic
    from code.errors import DataError
    from code.evaluation.comparison.compare import find_submissions, load_labels
    from code.evaluation.comparison.runs_table import compare_all, metadata_files, paired
    from code.evaluation.comparison.text import format_differences, format_table
    from code.evaluation.outputs.targets import environment_message

    search = args.paths or SEARCH
    try:  # every output's place, before any work
        _check_outputs(args, next((p for p in search if p.is_dir()), HERE / "results"))
    except DataError as e:
        log.error("%s", e)
        return 2
    except OSError as e:
        log.error("%s", environment_message(e))
        return 1
    submissions = find_submissions(search)
    bare = [s for s in submissions if s.provenance is None and not s.error]
    labels, unlabelled, label_folder = {}, [], None  # the labels of CSVs without provenance
    try:
        if args.ground_truth:
            label_folder = args.ground_truth.parent
            if not args.ground_truth.is_file():
                raise DataError(f"ground truth file not found: {args.ground_truth}")
            labels, unlabelled = load_labels({"given": args.ground_truth}, target=args.target)
            if not labels:
                log.error("%s has no %r on every record: it cannot be ground truth", args.ground_truth,
                          args.target)
                return 2
        elif bare or not submissions:
            files = metadata_files(args.data_root or HERE / DATA_ROOT, args.challenge)
            label_folder = next(iter(files.values())).parent
            labels, unlabelled = load_labels(files, target=args.target)
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
    if not rows and broken and not without_labels:
        log.error("nothing could be compared: %s", "; ".join(f"{s.path}: {s.error}" for s in broken))
        return 2
    if not rows:
        log.error("nothing could be compared: no submission covers a labelled split. Out-of-fold "
                  "predictions on the labelled training split: `python main.py --split train "
                  "--models identity,NLR1`, then `python compute_csvs.py`")
        return 1
    for r in rows:  # a CSV without provenance: synthetic when the labels it was matched with are
        if "config" not in r:
            r["synthetic"] = labels_are_synthetic(label_folder)
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
    try:
        _write_outputs(args, search, rows, diffs, missing)
    except DataError as e:  # a run's provenance that cannot name a page
        log.error("%s", e)
        return 2
    except OSError as e:
        log.error("%s", environment_message(e))
        return 1
    return 0


def _check_outputs(args, folder: Path) -> None:
    """Refuse an output path that cannot be written, or not as the option's kind of file
    (``code.evaluation.outputs.targets``); ``folder``: where the defaults go."""
    from code.evaluation.outputs.targets import check_output_file, check_output_folder

    if args.json:
        check_output_file(args.json, option="--json", suffixes=(".json",))
    if args.plot is not None:
        plot = args.plot if str(args.plot) not in ("", ".") else folder / "comparison.png"
        check_output_file(plot, option="--plot", suffixes=(".png",))
    if args.html is not None:
        html = args.html if str(args.html) not in ("", ".") else folder
        if html.suffix.lower() in (".html", ".htm"):
            check_output_file(html, option="--html", suffixes=(".html", ".htm"))
        else:
            check_output_folder(html, option="--html")


def _write_outputs(args, search: list[Path], rows: list[dict], diffs: list, missing: list[str]) -> None:
    """The JSON, the figure and the pages the options ask for."""
    from code.io_utils import write_json_atomic

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


if __name__ == "__main__":
    sys.exit(main())
