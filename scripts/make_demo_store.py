"""Rebuild the demo's shipped Stage-2 store: ``data/demo/cadenza_data/stage2_store/``.

    python scripts/make_demo_store.py

Runs the README's demo commands (``COMMANDS``: the default experiment, the compare
recipe, the hearing-aid chain) into a fresh results folder and copies the values
they stored (transcripts, scores, STOI/eSTOI, HAAQI; not the path-bound file digests)
beside the demo's metadata. A newcomer's first ``python main.py`` then finds the
fit set's (and the models' outputs') values there instead of running Whisper on
them; values of audio whose bytes differ on another machine are simply computed.
Every value is keyed by the audio's content, the settings and the code that computed
it (``code/evaluation/cache.py``), so after a change to that code the shipped values no
longer match and are recomputed, never misused: rerun this script to ship current ones
(``tests/test_shipped_store.py`` says when).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "data" / "demo" / "cadenza_data" / "stage2_store"
KINDS = ("transcript", "score", "intrusive", "haaqi")
COMMANDS = (
    [],  # python main.py
    ["--split", "train", "--models", "identity,NLR1"],  # the compare recipe
    ["--input", "unprocessed", "--models", "identity,NLR1"],  # the hearing-aid chain
    ["--data-root", "data/demo_clip2"],  # the CLIP2 demo (its audio is the demo's; it links this store)
)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="demo-store-") as tmp:
        results = Path(tmp) / "results"
        if TARGET.exists():
            shutil.rmtree(TARGET)  # a fresh run computes everything
        for extra in COMMANDS:
            subprocess.run([sys.executable, "main.py", "--results-dir", str(results), *extra], cwd=ROOT,
                           check=True)
        TARGET.mkdir(parents=True)
        for kind in KINDS:
            if (results / ".cache" / kind).is_dir():
                shutil.copytree(results / ".cache" / kind, TARGET / kind)
    count = sum(1 for _ in TARGET.glob("*/*/*.json"))
    size = sum(p.stat().st_size for p in TARGET.glob("*/*/*.json"))
    print(f"shipped {count} values ({size / 1e3:.0f} kB) in {TARGET}")


if __name__ == "__main__":
    main()
