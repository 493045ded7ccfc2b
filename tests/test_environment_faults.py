"""Faults of the machine, not of the input: a full or read-only file system stops the run
with the path and the cause (exit status 1), leaves no temporary file, keeps what was
finished and says that the same command goes on; SIGTERM is handled as Ctrl-C is.

The file systems are real: small tmpfs mounts (root only; elsewhere a read-only folder is
one without write permission, and the full-disk test is skipped, saying why)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, demo_records, make_clip_root, run_main


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A tmpfs of ``size`` mounted at ``path`` while the block runs; skips where none can be."""
    path.mkdir(parents=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small file system needs root and mount(8)")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _leftovers(results: Path) -> list[str]:
    return [str(p) for p in results.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".write_check")]


def test_full_disk_stops_with_the_path_keeps_finished_work_and_the_rerun_goes_on(tmp_path, caplog):
    data = make_clip_root(tmp_path / "data", "valid", demo_records("valid")[:3])
    argv = ["--data-root", data, "--stages", "1", "--jobs", "1", "--batch-size", "1"]
    with tmpfs(tmp_path / "small", "2200k") as results:  # room for two enhanced signals (~1 MB each)
        code, log = run_main([*argv, "--results-dir", results], caplog)
        assert code == 1, log[-3000:]
        assert f"the run stopped: {results / 'NLR1'}/" in log and ": No space left on device. " in log
        assert "free some space there" in log and "run the same command again: python main.py" in log
        assert "Traceback" not in log
        assert _leftovers(results) == []
        manifest = (results / "NLR1" / ".stage1_manifest.jsonl").read_text().splitlines()
        kept = sum(1 for line in manifest if line.endswith("}"))
        assert 1 <= kept < 3
        subprocess.run(["mount", "-o", "remount,size=20m", str(results)], check=True)
        code, log = run_main([*argv, "--results-dir", results], caplog)
        assert code == 0, log[-3000:]
        assert f"Stage 1 NLR1: {3 - kept} enhanced, {kept} reused" in log


@pytest.mark.parametrize("holding", [False, True], ids=["empty", "holding results"])
def test_read_only_results_folder_stops_before_any_work(tmp_path, caplog, holding):
    data = make_clip_root(tmp_path / "data", "valid", demo_records("valid")[:3])
    folder = tmp_path / "results"
    with contextlib.ExitStack() as stack:
        if os.geteuid() == 0:  # root writes through permissions: a read-only mount
            stack.enter_context(tmpfs(folder, "1m"))
            if holding:
                (folder / "submission_NLR1_valid.csv").write_text("signal_ID,intelligibility_score\n")
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
            cause = "Read-only file system"
        else:
            folder.mkdir()
            if holding:
                (folder / "submission_NLR1_valid.csv").write_text("signal_ID,intelligibility_score\n")
            folder.chmod(0o555)
            stack.callback(folder.chmod, 0o755)
            cause = "Permission denied"
        code, log = run_main(["--data-root", data, "--results-dir", folder], caplog)
    assert code == 1, log[-3000:]
    assert f"the run stopped: {folder}: {cause}" in log and "Traceback" not in log
    assert "give a writable --results-dir" in log or "give a folder you may write to" in log
    assert "run the same command again" in log
    assert "checked" not in log  # before the audio checks


def test_sigterm_in_stage_2_keeps_work_and_prints_the_command_to_resume(tmp_path):
    data = make_clip_root(tmp_path / "data", "valid", demo_records("valid")[:3])
    make_clip_root(data, "train", demo_records("train")[:6])
    results = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "main.py", "--data-root", str(data), "--results-dir", str(results),
                             "--model", "identity", "--jobs", "1"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while not (results / "identity" / "config_valid.json").exists():  # Stage 1 is over
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()[-3000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=300)[1]
    assert proc.returncode == 143, err[-3000:]
    assert "terminated (SIGTERM): finished work is kept; to continue, run the same command again: " \
           f"python main.py --data-root {data} --results-dir {results}" in err
    assert "Traceback" not in err
    assert len(list((results / "identity").glob("*.wav"))) == 3
