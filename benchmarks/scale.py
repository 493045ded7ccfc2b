"""The pipeline at the real data sets' scale: first run and unchanged rerun of N signals.

    python benchmarks/scale.py --signals 2000 [--work DIR] [--keep] [--shipped-store]

Builds an N-signal CLIP1-layout data set from the shipped demo: the demo's valid
records repeated under new signal IDs, their audio files linked (hard links, or
symlinks across file systems), not copied; the demo's training split is the fit
set as it is. Runs ``python main.py`` on it (NLR1, the default settings), then
runs it again unchanged, each as its own process, and prints

    scale signals=N first_s=X rerun_s=Y max_rss_mb=Z

``max_rss_mb`` is the larger peak resident memory of the two runs' main process.
The first run enhances every signal (Stage 1 writes one file per signal) but,
because Stage 2 stores values by audio content, transcribes only the audio it has
not heard before (the demo's distinct excerpts and the fit set, on a fresh store).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo" / "cadenza_data"


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        dst.symlink_to(src)


def build(n: int, folder: Path, *, shipped_store: bool = False) -> Path:
    """An N-signal CLIP1 data root under ``folder`` made of the demo's valid excerpts (with
    ``shipped_store``, the demo's shipped Stage-2 store linked beside its metadata)."""
    base = folder / "cadenza_data"
    valid = json.loads((DEMO / "metadata" / "valid_metadata.json").read_text())
    for kind in ("signals", "unprocessed"):
        (base / "valid" / kind).mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        record = dict(valid[i % len(valid)])
        source = record["signal"]
        record["signal"] = f"s{i:06d}{source[7:]}"
        records.append(record)
        _link(DEMO / "valid" / "signals" / f"{source}.flac", base / "valid" / "signals" / f"{record['signal']}.flac")
        _link(DEMO / "valid" / "unprocessed" / f"{source}_unproc.flac",
              base / "valid" / "unprocessed" / f"{record['signal']}_unproc.flac")
    (base / "metadata").mkdir(parents=True, exist_ok=True)
    (base / "metadata" / "valid_metadata.json").write_text(json.dumps(records))
    shutil.copy(DEMO / "metadata" / "train_metadata.json", base / "metadata" / "train_metadata.json")
    (base / "train").symlink_to(DEMO / "train")
    if shipped_store:
        (base / "stage2_store").symlink_to(DEMO / "stage2_store", target_is_directory=True)
    return folder


def timed_run(data_root: Path, results: Path) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one ``python main.py`` run on ``data_root``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "main.py", "--data-root", str(data_root), "--results-dir",
                           str(results)], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"main.py failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KB on Linux; max over children
    for line in proc.stderr.splitlines():
        if "to transcribe" in line or "to enhance" in line:
            print("  " + line.split(": ", 1)[-1])
    return seconds, max(peak, before) / 1024


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--signals", type=int, default=200)
    parser.add_argument("--work", type=Path, default=None, help="folder for the data set and results (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--shipped-store", action="store_true",
                        help="link the demo's shipped Stage-2 store: the fit set is read, not transcribed "
                             "(the tests' smallest size; not the figure of a fresh store)")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="clip-scale-"))
    try:
        data_root = build(args.signals, work / "data", shipped_store=args.shipped_store)
        first, rss_first = timed_run(data_root, work / "results")
        rerun, rss_rerun = timed_run(data_root, work / "results")
        print(f"scale signals={args.signals} first_s={first:.1f} rerun_s={rerun:.1f} "
              f"max_rss_mb={max(rss_first, rss_rerun):.0f}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
