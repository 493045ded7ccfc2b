"""A trained model against its baseline on the physical chain: pooled Mild+Moderate change
(paired, 95% bootstrap interval over prompts, as the hearing-aid report computes it) and the
output level check (each signal's RMS over both ears against the baseline's, and the peak).

    python main.py --input unprocessed --models NLR1,LyricAidLevelOnly,LyricAid --baseline NLR1
    python benchmarks/lyricaid_report.py [--model LyricAid --baseline NLR1 --split valid] [--tag T]

Reads ``submission_<Model>[-<tag>]-unprocessed*_<split>.csv`` (the one run of that name; with
``--tag``, the runs made with ``--tag T``) and ``<Model>[-<tag>]/from_unprocessed/<signal>.wav``
(the model's output, before the simulator) in ``--results-dir``. With ``--held-out``, only the
signals the model's training held out (``_training/<Model>[-<tag>].json``: run the report on
``--split train``). Music quality: HAAQI of both models' outputs as the hearing-aid report
computes it (read from the results folder's store, computed when missing), its pooled paired
change. Last line: ``pooled_change=X ci95=[L, H] haaqi_change=Q ci95=[L, H] max_level_db=Y
max_peak=Z``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks.lyricaid_report", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

import numpy as np
import soundfile

from code.enhancement_plan import model_output_path, output_dir
from code.evaluation.cache import results_store
from code.evaluation.outputs.report import report_rows
from code.evaluation.quality.aid_quality import QualityItem, aid_quality
from code.models.audiograms import DEFAULT_AUDIOGRAMS


def _predictions(path: Path) -> dict[str, float]:
    with path.open() as f:
        return {row[0]: float(row[1]) for row in csv.reader(f) if row and row[0] != "signal_ID"}


def _submission(results: Path, name: str, split: str, *, tagged: bool) -> Path:
    """The one ``submission_<name>-unprocessed*_<split>.csv`` in ``results``."""
    found = sorted(results.glob(f"submission_{name}-unprocessed*_{split}.csv"))
    exact = results / f"submission_{name}-unprocessed_{split}.csv"
    if exact in found:
        return exact
    if len(found) != 1:
        hint = "" if tagged else ", or give the runs' --tag"
        raise SystemExit(f"expected one submission_{name}-unprocessed*_{split}.csv in {results}, found "
                         f"{[p.name for p in found] or 'none'}: run python main.py --input unprocessed "
                         f"--models ... first{hint}")
    return found[0]


def haaqi_by_signal(results: Path, folder: str, data_root: Path, split: str,
                    records: list[dict]) -> dict[str, float]:
    """``{signal: HAAQI}`` of the outputs in ``results/<folder>/from_unprocessed/``, as the
    hearing-aid report computes it (from the results folder's store, computed when missing)."""
    items = [QualityItem(r["signal"], model_output_path(output_dir(results, folder, "unprocessed"), r["signal"]),
                         data_root / split / "unprocessed" / f"{r['signal']}_unproc.flac",
                         DEFAULT_AUDIOGRAMS[r["hearing_loss"]]) for r in records]
    values = aid_quality(items, store=results_store(results), sample_rate=44100, desc=f"HAAQI {folder}")
    return {signal: v["haaqi"] for signal, v in values.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--data-root", default="data/demo/cadenza_data")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--model", default="LyricAid")
    parser.add_argument("--baseline", default="NLR1")
    parser.add_argument("--tag", default="", help="the runs' --tag (and the trained weights')")
    parser.add_argument("--held-out", action="store_true", help="only the signals the training held out")
    args = parser.parse_args(argv)
    results = Path(args.results_dir)
    records = json.loads((Path(args.data_root) / "metadata" / f"{args.split}_metadata.json").read_text())
    folder = {m: f"{m}-{args.tag}" if args.tag else m for m in (args.baseline, args.model)}
    if args.held_out:
        kept = set(json.loads((results / "_training" / f"{folder[args.model]}.json").read_text())["held_out_signals"])
        records = [r for r in records if r["signal"] in kept]
    predictions = {m: _predictions(_submission(results, folder[m], args.split, tagged=bool(args.tag)))
                   for m in (args.baseline, args.model)}
    quality = {m: haaqi_by_signal(results, folder[m], Path(args.data_root), args.split, records)
               for m in (args.baseline, args.model)}
    for name, categories in (("Mild", ("Mild",)), ("Moderate", ("Moderate",)), ("Mild+Moderate", ("Mild", "Moderate")),
                             ("No Loss", ("No Loss",))):
        members = [r for r in records if r["hearing_loss"] in categories]
        if not members:
            continue
        row = next(r for r in report_rows(predictions, members, baseline=args.baseline, quality=quality)
                   if r["model"] == args.model and r["hearing_loss"] == "All")
        base = np.mean([predictions[args.baseline][r["signal"]] for r in members])
        print(f"{name:14s} n={row['n']:2d} {args.baseline} {base:5.1f} {args.model} {row['mean_intelligibility']:5.1f} "
              f"change {row['change']:+.2f} [{row['change_ci95_low']:+.2f}, {row['change_ci95_high']:+.2f}]; "
              f"HAAQI {row['mean_haaqi']:.3f} change {row['haaqi_change']:+.4f} "
              f"[{row['haaqi_change_ci95_low']:+.4f}, {row['haaqi_change_ci95_high']:+.4f}]")
        if name == "Mild+Moderate":
            pooled = row
    levels, peaks = [], []
    for r in records:
        out, _ = soundfile.read(results / folder[args.model] / "from_unprocessed" / f"{r['signal']}.wav")
        ref, _ = soundfile.read(results / folder[args.baseline] / "from_unprocessed" / f"{r['signal']}.wav")
        energy, ref_energy = np.sum(out.astype(np.float64) ** 2), np.sum(ref.astype(np.float64) ** 2)
        if ref_energy == 0:  # a silent baseline: a level ratio means nothing there
            continue
        levels.append(10 * np.log10(max(energy, 1e-30) / ref_energy))
        peaks.append(float(np.abs(out).max()))
    levels = np.array(levels)
    print(f"level vs {args.baseline} (dB, RMS over both ears, per signal): mean {levels.mean():+.2f} "
          f"min {levels.min():+.2f} max {levels.max():+.2f}; largest peak {max(peaks):.4f}")
    print(f"pooled_change={pooled['change']:+.2f} ci95=[{pooled['change_ci95_low']:+.2f}, "
          f"{pooled['change_ci95_high']:+.2f}] haaqi_change={pooled['haaqi_change']:+.4f} "
          f"ci95=[{pooled['haaqi_change_ci95_low']:+.4f}, {pooled['haaqi_change_ci95_high']:+.4f}] max_level_db={levels.max():+.3f} max_peak={max(peaks):.4f}")


if __name__ == "__main__":
    main()
