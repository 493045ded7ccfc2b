"""CLIP2 through `python main.py`: the shipped CLIP2-layout demo, offline, with the organisers'
file names and the whisper-head predictor (Whisper encoder embeddings + a trained head)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

CLIP2_DEMO = ROOT / "data" / "demo_clip2"


@pytest.mark.slow
def test_clip2_demo_with_team_id_and_whisper_head(tmp_path):
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "main.py", "--data-root", str(CLIP2_DEMO), "--model", "identity",
         "--predictor", "whisper-head", "--team-id", "T001", "--folds", "4",
         "--results-dir", str(results)], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "CLIP2 layout" in proc.stderr
    valid = json.loads((CLIP2_DEMO / "cadenza_data" / "clip2" / "metadata" / "valid_metadata.json").read_text())
    with (results / "ICASSP2027_valid_T001.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["signal_id", "intelligibility_score"]
    assert [r[0] for r in rows[1:]] == [r["signal"] for r in valid]  # every signal once
    assert all(0.0 <= float(r[1]) <= 100.0 for r in rows[1:])
    board = (results / "ICASSP2027_valid_T001_leaderboard.csv").read_text().splitlines()
    assert board == [",".join(r) for r in rows[1:]]  # the same rows, no header
    assert "to send:" in proc.stderr and "ICASSP2027_valid_T001.csv" in proc.stderr
    # not the default predictor and folds: the run's name says so (code/runs.py)
    (saved,) = results.glob("submission_identity-whisper-head-folds4-*_valid.predictor.json")
    head = json.loads(saved.read_text())
    assert head and saved.with_suffix(".pt").stat().st_size > 1000


def test_phoneme_target_needs_clip2_labels(tmp_path, caplog, capsys):
    from tests.conftest import run_main

    code, log = run_main(["--target", "phoneme_correctness", "--stages", "2", "--results-dir", tmp_path],
                         caplog, capsys)
    assert code == 2 and "phoneme_correctness" in log
