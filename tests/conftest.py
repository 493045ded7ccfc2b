"""Shared fixtures: the shipped demo data, small CLIP folders built from it, and
``run_main``: ``python main.py`` called in this process (where isolation is not the point)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO_ROOT = ROOT / "data" / "demo"
# The demo's shipped Stage-2 values (scripts/make_demo_store.py): transcripts, scores and STOI
# of the demo's fit set and of the README's demo runs, keyed by audio content, settings and code.
DEMO_STORE = DEMO_ROOT / "cadenza_data" / "stage2_store"
CLIP2_DEMO = ROOT / "data" / "demo_clip2"  # its audio is the demo's (same bytes)


@pytest.fixture(scope="session")
def demo_root() -> Path:
    return DEMO_ROOT


def demo_records(split: str) -> list[dict]:
    path = DEMO_ROOT / "cadenza_data" / "metadata" / f"{split}_metadata.json"
    return json.loads(path.read_text())


def make_clip_root(root: Path, split: str = "valid", records: list[dict] | None = None,
                   layout: str = "release", shipped_store: bool = False) -> Path:
    """Copy (some of) the demo split into ``root`` in the given layout; return the data root.

    ``shipped_store=True`` links the demo's shipped Stage-2 store beside the metadata (as a
    data set ships one), so the demo audio's values (the fit set, NLR1 and identity outputs)
    are read, not transcribed again. Leave it off where a test counts transcriptions."""
    records = demo_records(split) if records is None else records
    base = root / "cadenza_data"
    if shipped_store and DEMO_STORE.is_dir() and not (base / DEMO_STORE.name).exists():
        base.mkdir(parents=True, exist_ok=True)
        (base / DEMO_STORE.name).symlink_to(DEMO_STORE, target_is_directory=True)
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


def clip2_demo_copy(root: Path) -> Path:
    """A copy of the shipped CLIP2 demo at ``root/demo_clip2`` (same data-set name) with the
    demo's shipped store linked beside its metadata: its audio is the demo's, so the fit set's
    transcripts are read, not made again. Returns the data root."""
    data = root / CLIP2_DEMO.name
    # the demo's own link is relative (to the demo beside it): linked again here, absolute
    shutil.copytree(CLIP2_DEMO, data, ignore=shutil.ignore_patterns(DEMO_STORE.name))
    if DEMO_STORE.is_dir():
        (data / "cadenza_data" / "clip2" / DEMO_STORE.name).symlink_to(DEMO_STORE, target_is_directory=True)
    return data


def run_main(argv, caplog, capsys=None) -> tuple[int, str]:
    """``python main.py *argv`` in this process: its exit code and what it logged (and,
    with ``capsys``, what it wrote to stderr, e.g. an argparse error)."""
    import main

    caplog.clear()
    if capsys is not None:
        capsys.readouterr()
    try:
        code = main.main([str(a) for a in argv])
    except SystemExit as e:  # argparse: --help, a refused option
        code = e.code
    text = caplog.text + (capsys.readouterr().err if capsys is not None else "")
    return code, text


@pytest.fixture(scope="session")
def demo_report_run(tmp_path_factory) -> Path:
    """``python main.py --input unprocessed --models identity,NLR1`` on the whole demo, into a
    results folder of its own (Stage 2 reads the demo's shipped values): the folder, which
    holds ``report_valid_unprocessed.html``. Tests copy it before changing anything in it."""
    import main

    results = tmp_path_factory.mktemp("report_run") / "results"
    code = main.main(["--input", "unprocessed", "--models", "identity,NLR1", "--results-dir", str(results)])
    assert code == 0
    return results
