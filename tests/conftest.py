"""Shared fixtures: the shipped demo data, and small CLIP folders built from it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO_ROOT = ROOT / "data" / "demo"


@pytest.fixture(scope="session")
def demo_root() -> Path:
    return DEMO_ROOT


def demo_records(split: str) -> list[dict]:
    path = DEMO_ROOT / "cadenza_data" / "metadata" / f"{split}_metadata.json"
    return json.loads(path.read_text())


def make_clip_root(root: Path, split: str = "valid", records: list[dict] | None = None,
                   layout: str = "release") -> Path:
    """Copy (some of) the demo split into ``root`` in the given layout; return the data root."""
    records = demo_records(split) if records is None else records
    base = root / "cadenza_data"
    audio_dir = base / split if layout == "release" else base / "audio" / split
    src = DEMO_ROOT / "cadenza_data" / split
    for kind in ("signals", "unprocessed"):
        (audio_dir / kind).mkdir(parents=True, exist_ok=True)
    for r in records:
        signal = r.get("signal")
        for kind, name in (("signals", f"{signal}.flac"), ("unprocessed", f"{signal}_unproc.flac")):
            if (src / kind / name).exists():
                shutil.copy(src / kind / name, audio_dir / kind / name)
    (base / "metadata").mkdir(parents=True, exist_ok=True)
    (base / "metadata" / f"{split}_metadata.json").write_text(json.dumps(records))
    return root
