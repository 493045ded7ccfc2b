"""LyricAid trained at several quality-guard weights: intelligibility change against HAAQI
change versus NLR1, one point per weight, in the report's trade-off figure and a table.

    for w in 0 0.3 1 3: python main.py --split valid --input unprocessed --models NLR1,LyricAid \\
        --baseline NLR1 --train --train-quality-weight $w --tag q<w without the dot>
    python benchmarks/lyricaid_tradeoff.py --results-dir R --tags q0,q03,q1,q3 --out FIGURE.png

Each tag's runs (``submission_<Model>-<tag>-unprocessed_<split>.csv`` and the outputs beside
them) give the pooled Mild+Moderate changes with 95% intervals over prompts, as
``benchmarks/lyricaid_report.py`` prints them; HAAQI comes from the results folder's store.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.lyricaid_tradeoff", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

from benchmarks.lyricaid_report import _predictions, _submission, haaqi_by_signal
from code.evaluation.outputs.report import report_rows
from code.evaluation.outputs.report_figure import tradeoff_figure


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--data-root", default="data/demo/cadenza_data")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--tags", default="q0,q03,q1,q3")
    parser.add_argument("--out", default="lyricaid_tradeoff.png")
    args = parser.parse_args(argv)
    results, data = Path(args.results_dir), Path(args.data_root)
    records = [r for r in json.loads((data / "metadata" / f"{args.split}_metadata.json").read_text())
               if r["hearing_loss"] in ("Mild", "Moderate")]
    rows = []
    for tag in args.tags.split(","):
        weight = json.loads((results / "_training" / f"LyricAid-{tag}.json").read_text())["settings"][
            "--train-quality-weight"]
        names = {"NLR1": f"NLR1-{tag}", f"LyricAid (weight {weight:g})": f"LyricAid-{tag}"}
        predictions = {m: _predictions(_submission(results, folder, args.split, tagged=True))
                       for m, folder in names.items()}
        quality = {m: haaqi_by_signal(results, folder, data, args.split, records) for m, folder in names.items()}
        for row in report_rows(predictions, records, baseline="NLR1", quality=quality):
            if row["model"] != "NLR1":
                rows.append(row)
                if row["hearing_loss"] == "All":
                    print(f"{row['model']:24s} Mild+Moderate n={row['n']} intelligibility change "
                          f"{row['change']:+.2f} [{row['change_ci95_low']:+.2f}, {row['change_ci95_high']:+.2f}]"
                          f"  HAAQI change {row['haaqi_change']:+.4f} [{row['haaqi_change_ci95_low']:+.4f}, "
                          f"{row['haaqi_change_ci95_high']:+.4f}]")
    tradeoff_figure(rows, Path(args.out), f"LyricAid by quality-guard weight, {args.split} (Mild and Moderate)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
