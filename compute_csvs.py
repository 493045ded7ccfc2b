"""Compare every submission CSV with listener ground truth (RMSE, Std, NCC, KT).

    python compute_csvs.py                      # all CSVs in results/ and here, vs the demo train labels
    python compute_csvs.py results/ my.csv --ground-truth /data/clip1/cadenza_data/metadata/train_metadata.json
    python compute_csvs.py --json scores.json --plot
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

# ----------------------------------------------------------------------------
# Defaults. Edit here, or override on the command line.
# ----------------------------------------------------------------------------
DATA_ROOT = Path("data/demo")  # the dataset whose train metadata is the default ground truth
SEARCH = [Path("results"), Path(".")]  # where to look for CSVs when none are given
# ----------------------------------------------------------------------------

log = logging.getLogger("compute_csvs")


def find_csvs(paths: list[Path]) -> list[Path]:
    """CSV files named, or inside named folders (not recursive), sorted, deduplicated."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.glob("*.csv") if p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            log.warning("no such file or folder: %s", path)
    unique = {p.resolve(): p for p in found}
    return list(unique.values())


def load_truth(metadata_file: Path) -> dict[str, tuple[float, str]]:
    """{signal: (correctness x 100, hearing_loss)} from a metadata file with correctness."""
    from code.data_loading import check_records, load_metadata, DataError

    records = load_metadata(metadata_file)
    problems = check_records(records, require_correctness=True)
    if problems:
        listing = "\n  ".join(str(p) for p in problems[:10])
        raise DataError(f"{metadata_file} cannot be ground truth ({len(problems)} problem(s)):\n  {listing}")
    return {r["signal"]: (100.0 * float(r["correctness"]), r["hearing_loss"]) for r in records}


def format_table(results: list) -> str:
    ok = sorted((r for r in results if not r.error), key=lambda r: r.RMSE)
    lines = [f"{'file':<48} {'n':>6} {'absent':>6} {'RMSE':>7} {'Std':>6} {'NCC':>6} {'KT':>6}  RMSE by hearing loss"]
    for r in ok:
        by_loss = ", ".join(f"{k} {v['RMSE']:.2f}" for k, v in r.per_hearing_loss.items())
        fmt = lambda x: "   nan" if math.isnan(x) else f"{x:6.3f}"
        lines.append(f"{r.path:<48} {r.n:>6} {r.unmatched:>6} {r.RMSE:7.2f} {r.Std:6.2f} {fmt(r.NCC)} {fmt(r.KT)}  {by_loss}")
    for r in results:
        if r.error:
            lines.append(f"{r.path:<48} SKIPPED: {r.error}")
    return "\n".join(lines)


def plot(result, truth, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from code.evaluation.metrics import read_submission

    predicted = read_submission(Path(result.path))
    fig, ax = plt.subplots(figsize=(5, 5))
    for category in sorted({truth[s][1] for s in predicted if s in truth}):
        shared = [s for s in predicted if s in truth and truth[s][1] == category]
        ax.scatter([truth[s][0] for s in shared], [predicted[s] for s in shared], s=12,
                   alpha=0.7, label=category)
    ax.plot([0, 100], [0, 100], "k--", lw=1)
    ax.set(xlim=(-2, 102), ylim=(-2, 102), xlabel="true intelligibility (correctness x 100)",
           ylabel="predicted intelligibility", title=f"{Path(result.path).name}\nRMSE {result.RMSE:.2f}, n={result.n}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("compute_csvs", "code"):
        logging.getLogger(name).setLevel(logging.INFO)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="CSV files or folders")
    parser.add_argument("--ground-truth", type=Path,
                        default=DATA_ROOT / "cadenza_data" / "metadata" / "train_metadata.json",
                        help="metadata JSON with correctness (0..1)")
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--plot", action="store_true", help="write a PNG per file beside it")
    args = parser.parse_args(argv)

    from code.data_loading import DataError
    from code.evaluation.metrics import compare
    from code.io_utils import write_json_atomic

    try:
        truth = load_truth(args.ground_truth)
    except DataError as e:
        log.error("%s", e)
        return 2
    csvs = find_csvs(args.paths or SEARCH)
    if not csvs:
        log.error("no CSV files found in %s", ", ".join(map(str, args.paths or SEARCH)))
        return 2
    results = [compare(path, truth) for path in csvs]
    print(format_table(results))
    for r in results:
        if not r.error and r.unmatched:
            log.warning("%s: %d signal ID(s) are not in the ground truth (left out)", r.path, r.unmatched)
    if args.json:
        write_json_atomic(args.json, {r.path: r.to_dict() for r in results})
    if args.plot:
        for r in results:
            if not r.error:
                out = Path(r.path).with_suffix(".png")
                plot(r, truth, out)
                log.info("plot: %s", out)
    return 0 if any(not r.error for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
