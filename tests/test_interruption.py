"""Kill `python main.py` mid-Stage 1 and mid-Stage 2, rerun: same CSV, finished work kept."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from code.data.audio import read_audio
from tests.conftest import DEMO_ROOT, ROOT, demo_records

ARGS = ["--model", "identity", "--input", "unprocessed", "--jobs", "1"]


def _lines(path_glob: list[Path]) -> int:
    return sum(len(p.read_text().splitlines()) for p in path_glob)


def _start(results: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "main.py", *ARGS, "--results-dir", str(results)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while not ready():
        if proc.poll() is not None:
            raise AssertionError(f"run ended before it could be interrupted:\n{proc.stderr.read()[-2000:]}")
        if time.time() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting to interrupt")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_kill_and_resume_gives_the_same_csv(tmp_path):
    reference = tmp_path / "reference"
    proc = subprocess.run([sys.executable, "main.py", *ARGS, "--results-dir", str(reference)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]

    # The chain's sanity check: identity on unprocessed audio + MSBG reproduces what the
    # listeners heard (the demo signals were made with the same simulator), up to the
    # 16-bit quantisation of the stored files (noise power q^2/12, q = 2^-15; 3 dB margin).
    floor = (2.0 ** -15) ** 2 / 12
    for record in demo_records("valid"):
        provided = read_audio(DEMO_ROOT / "cadenza_data" / "valid" / "signals" / f"{record['signal']}.flac")
        simulated = read_audio(reference / "identity" / "from_unprocessed" / "heard" / f"{record['signal']}.wav")
        assert provided.shape == simulated.shape
        assert np.mean((provided - simulated) ** 2) <= 2 * floor, record["signal"]

    results = tmp_path / "interrupted"
    results.mkdir()
    shutil.copytree(reference / "_train_scores", results / "_train_scores")  # shared cache
    out = results / "identity" / "from_unprocessed"
    manifest = out / ".stage1_manifest.jsonl"

    n = len(demo_records("valid"))
    # 1. Kill during Stage 1 (after 3 of n signals).
    _kill_when(_start(results), lambda: manifest.exists() and _lines([manifest]) >= 3)
    finished = [json.loads(line)["signal"] for line in manifest.read_text().splitlines() if line.strip()]
    assert 3 <= len(finished) < n
    mtimes = {s: (out / "heard" / f"{s}.wav").stat().st_mtime_ns for s in finished}
    assert not list((results).glob("submission_*"))

    # 2. Rerun, kill during Stage 2 (after 3 scored signals).
    score_files = lambda: list(out.glob("scores.valid.*.jsonl"))
    _kill_when(_start(results), lambda: _lines(score_files()) >= 3)
    assert {s: (out / "heard" / f"{s}.wav").stat().st_mtime_ns for s in finished} == mtimes
    scored_before = _lines(score_files())
    assert scored_before < n and not list(results.glob("submission_*"))

    # 3. Rerun to the end.
    proc = subprocess.run([sys.executable, "main.py", *ARGS, "--results-dir", str(results)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"{n - scored_before} signal(s) to transcribe, {scored_before} reused" in proc.stderr
    name = "submission_identity-unprocessed_valid.csv"
    assert (results / name).read_text() == (reference / name).read_text()
    assert {s: (out / "heard" / f"{s}.wav").stat().st_mtime_ns for s in finished} == mtimes
    signals = [json.loads(line)["signal"] for p in score_files() for line in p.read_text().splitlines()]
    assert len(signals) == len(set(signals)) == n
