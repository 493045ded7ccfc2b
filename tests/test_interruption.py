"""Kill `python main.py` mid-Stage 1 and mid-Stage 2, rerun: same CSV, finished work kept.

On a small copy of the demo (6 valid signals, 2 training prompts) without the shipped
store: what is transcribed and when is the point. The killed runs are processes of their
own; the reference run and the last rerun run in this process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from code.data.audio import read_audio
from code.evaluation.cache import STORE_DIR
from tests.conftest import DEMO_ROOT, ROOT, demo_records, make_clip_root, run_main

ARGS = ["--model", "identity", "--input", "unprocessed", "--jobs", "1"]
N_VALID = 6  # each kill lands mid-stage: after 3 signals (Whisper takes 4 per batch of 8 ears)


def _lines(path_glob: list[Path]) -> int:
    return sum(len(p.read_text().splitlines()) for p in path_glob)


def _start(data: Path, results: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "main.py", *ARGS, "--data-root", str(data),
                             "--results-dir", str(results)],
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
def test_kill_and_resume_gives_the_same_csv(tmp_path, caplog):
    valid = demo_records("valid")[:N_VALID]
    data = make_clip_root(tmp_path / "data", "valid", valid)
    make_clip_root(data, "train", demo_records("train")[:6])
    reference = tmp_path / "reference"
    code, log = run_main([*ARGS, "--data-root", data, "--results-dir", reference], caplog)
    assert code == 0, log[-2000:]

    # The chain's sanity check: identity on unprocessed audio + MSBG reproduces what the
    # listeners heard (the demo signals were made with the same simulator), up to the
    # 16-bit quantisation of the stored files (noise power q^2/12, q = 2^-15; 3 dB margin).
    floor = (2.0 ** -15) ** 2 / 12
    for record in valid:
        provided = read_audio(DEMO_ROOT / "cadenza_data" / "valid" / "signals" / f"{record['signal']}.flac")
        simulated = read_audio(reference / "identity" / "from_unprocessed" / "heard" / f"{record['signal']}.wav")
        assert provided.shape == simulated.shape
        assert np.mean((provided - simulated) ** 2) <= 2 * floor, record["signal"]

    results = tmp_path / "interrupted"
    results.mkdir()
    out = results / "identity" / "from_unprocessed"
    manifest = out / ".stage1_manifest.jsonl"

    n = len(valid)
    # 1. Kill during Stage 1 (after 3 of n signals).
    _kill_when(_start(data, results), lambda: manifest.exists() and _lines([manifest]) >= 3)
    finished = [json.loads(line)["signal"] for line in manifest.read_text().splitlines() if line.strip()]
    assert 3 <= len(finished) < n
    mtimes = {s: (out / "heard" / f"{s}.wav").stat().st_mtime_ns for s in finished}
    assert not list((results).glob("submission_*"))

    # 2. Rerun, kill during Stage 2 (after 3 transcribed signals; the predicted split is
    # transcribed before the fit set, and its scores file is written when all are).
    score_files = lambda: list(out.glob("scores.valid.*.jsonl"))
    transcribed = lambda: len(list((results / STORE_DIR / "transcript").glob("*/*.json")))
    _kill_when(_start(data, results), lambda: transcribed() >= 3)
    assert {s: (out / "heard" / f"{s}.wav").stat().st_mtime_ns for s in finished} == mtimes
    scored_before = transcribed()
    assert scored_before < n and not score_files() and not list(results.glob("submission_*"))

    # 3. Rerun to the end.
    code, log = run_main([*ARGS, "--data-root", data, "--results-dir", results], caplog)
    assert code == 0, log[-2000:]
    assert f"{n - scored_before} signal(s) to transcribe, {scored_before} reused" in log
    name = "submission_identity-unprocessed_valid.csv"
    assert (results / name).read_text() == (reference / name).read_text()
    assert {s: (out / "heard" / f"{s}.wav").stat().st_mtime_ns for s in finished} == mtimes
    signals = [json.loads(line)["signal"] for p in score_files() for line in p.read_text().splitlines()]
    assert len(signals) == len(set(signals)) == n
