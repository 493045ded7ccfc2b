"""Rebuild the demo's shipped Stage-2 store: ``data/demo/cadenza_data/stage2_store/``.

    python scripts/make_demo_store.py [--data-root data/demo] [--out STORE]

Runs the README's demo commands (``COMMANDS``: the default experiment, the compare
recipe, the hearing-aid chain) on a copy of the data root without its shipped store
(so that everything is computed afresh) into a fresh results folder and copies the values
they stored (transcripts, scores, STOI/eSTOI, HAAQI; not the path-bound file digests)
beside the demo's metadata. A newcomer's first ``python main.py`` then finds the
fit set's (and the models' outputs') values there instead of running Whisper on
them; values of audio whose bytes differ on another machine are simply computed.
Every value is keyed by the audio's content, the settings and the code that computed
it (``code/evaluation/cache.py``), so after a change to that code the shipped values no
longer match and are recomputed, never misused: rerun this script to ship current ones
(``tests/test_shipped_store.py`` says when). The new store is built in a new folder and
swapped in for the old one only when complete: an interruption leaves the shipped store as it was.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Run as a file: re-run as a module so that `code` is this project's package.
    root = Path(__file__).resolve().parents[1]
    os.execve(sys.executable, [sys.executable, "-m", "scripts.make_demo_store", *sys.argv[1:]],
              {**os.environ, "PYTHONPATH": str(root)})

from code.io_utils import replaced_folder

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo"
STORE_NAME = "stage2_store"  # beside the data set's metadata/ (as Stage 2 looks for it)
TARGET = DEMO / "cadenza_data" / STORE_NAME
KINDS = ("transcript", "score", "intrusive", "haaqi")
COMMANDS = (
    [],  # python main.py
    ["--split", "train", "--models", "identity,NLR1"],  # the compare recipe
    ["--input", "unprocessed", "--models", "identity,NLR1"],  # the hearing-aid chain
    ["--data-root", "data/demo_clip2"],  # the CLIP2 demo (its audio is the demo's; it links this store)
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, default=DEMO,
                        help="the data set whose values are shipped (default: the demo)")
    parser.add_argument("--out", type=Path, default=None,
                        help="the store folder written (default: <data-root>/cadenza_data/stage2_store)")
    args = parser.parse_args(argv)
    if not (args.data_root / "cadenza_data" / "metadata").is_dir():
        parser.error(f"--data-root {args.data_root}: expected a folder holding cadenza_data/metadata/")
    out = args.out or args.data_root / "cadenza_data" / STORE_NAME
    with tempfile.TemporaryDirectory(prefix="demo-store-") as tmp:
        # The same data set (same folder name) without its shipped store: a fresh run computes everything.
        data = Path(tmp) / args.data_root.resolve().name
        shutil.copytree(args.data_root, data, ignore=shutil.ignore_patterns(STORE_NAME))
        results = Path(tmp) / "results"
        for extra in COMMANDS:
            command = [sys.executable, "main.py", "--data-root", str(data), "--results-dir", str(results), *extra]
            done = subprocess.run(command, cwd=ROOT)
            if done.returncode != 0:
                print(f"python main.py {' '.join(extra)} failed (exit {done.returncode}); "
                      f"{out} is unchanged", file=sys.stderr)
                return 1
        with replaced_folder(out) as store:
            for kind in KINDS:
                if (results / ".cache" / kind).is_dir():
                    shutil.copytree(results / ".cache" / kind, store / kind)
    count = sum(1 for _ in out.glob("*/*/*.json"))
    size = sum(p.stat().st_size for p in out.glob("*/*/*.json"))
    print(f"shipped {count} values ({size / 1e3:.0f} kB) in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
