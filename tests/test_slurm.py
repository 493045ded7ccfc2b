"""``python main.py --slurm 3`` against a real SLURM (``scripts/slurm_local_cluster.sh``: one
node, this machine): a subset of the demo goes as an array of three shard tasks and a final job.
Shard 2 is cancelled (``scancel``) mid-run, after its Stage 1: the final job does not run and the
command names the task, with its log's last lines. The same command again submits only shard 2
and the final job, and ends with the CSV of a single-process run, byte for byte (one over the
demo's shipped values, made by single runs); no signal is transcribed twice across the tasks,
and the cancelled task's finished audio is reused.

Outside CI the test skips, naming what is missing; CI sets CLIP_REQUIRE_SLURM=1, and there a
missing cluster fails instead."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from code.cluster_checks import MEMORY_FILESYSTEMS, mount_of
from tests.conftest import ROOT, demo_records, make_clip_root, run_main

START = "bash scripts/slurm_local_cluster.sh"


def slurm_missing() -> str:
    """What keeps this machine from running the test, or ``""``."""
    missing = [c for c in ("sbatch", "squeue", "sinfo", "scancel", "scontrol") if shutil.which(c) is None]
    if missing:
        return (f"no SLURM here ({', '.join(missing)} not on PATH): apt-get install slurmctld slurmd "
                f"slurm-client munge, then {START}")
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return f"SLURM's controller does not answer (sinfo timed out): {START}"
    states = out.stdout.split()
    if out.returncode != 0 or not {"idle", "mixed", "allocated"} & set(states):
        return f"no SLURM node is up (sinfo: {(out.stderr or out.stdout).strip()[:200]!r}): {START}"
    return ""


MISSING = slurm_missing()
# CI sets CLIP_REQUIRE_SLURM=1: there a missing cluster fails instead of skipping.
if MISSING and os.environ.get("CLIP_REQUIRE_SLURM") == "1":
    raise RuntimeError(f"CLIP_REQUIRE_SLURM=1 but {MISSING}")
pytestmark = [pytest.mark.slow,  # jobs through a scheduler: a minute
              pytest.mark.skipif(bool(MISSING), reason=MISSING or "SLURM present")]


@pytest.fixture
def shared(tmp_path):
    """A folder the jobs share: tmp_path, unless it is in memory (tmpfs, which --slurm refuses)."""
    if mount_of(tmp_path)[1] not in MEMORY_FILESYSTEMS:
        yield tmp_path
        return
    (ROOT / "test-artefacts").mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="slurm-", dir=ROOT / "test-artefacts"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def wait_for(condition, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")


def transcribed(log: str) -> dict[str, int]:
    counts = {"NLR1": 0, "fit set": 0}
    for what, n in re.findall(r"Stage 2: (fit set|NLR1)[^:]*: (\d+) signal\(s\) to transcribe", log):
        counts[what] += int(n)
    return counts


def test_an_array_and_its_final_job_survive_a_cancelled_task(shared, caplog):
    started = time.monotonic()
    root = make_clip_root(shared / "data", "valid", demo_records("valid")[:3])  # 1 signal a shard
    make_clip_root(root, "train", demo_records("train")[:4])  # the fit set: 2, 1 and 1 a shard
    options = ["--data-root", str(root), "--folds", "2", "--jobs", "1"]
    results = shared / "slurm"
    command = [sys.executable, "main.py", *options, "--results-dir", str(results), "--slurm", "3", "--slurm-wait"]

    first = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        state_file = wait_for(lambda: next(results.glob(".slurm/*/state.json"), None), 120, "the submission")
        folder, tasks = state_file.parent, json.loads(state_file.read_text())["tasks"]
        log_of = lambda job: folder / f"{job}_0_log.err"  # noqa: E731  (submitit's names)
        wait_for(lambda: log_of(tasks["2"]).is_file() and "Stage 1 NLR1: 1 enhanced" in log_of(tasks["2"]).read_text(),
                 300, "shard 2's Stage 1")
        subprocess.run(["scancel", tasks["2"]], check=True)
        _, said = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 1, said[-3000:]
    assert f"shard 2/3 (job {tasks['2']}) did not finish: SLURM state CANCELLED" in said, said[-3000:]
    assert f"its log {log_of(tasks['2'])} ends:" in said
    final = json.loads(state_file.read_text())["final"]
    assert f"the final job {final} did not run" in said
    assert not log_of(final).exists()  # it never started
    assert not list(results.glob("submission_*"))
    cancelled = log_of(tasks["2"]).read_text()

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "submitted to SLURM" in again.stderr and "1 of 3 shard task(s) (2/3)" in again.stderr, again.stderr[-3000:]
    state = json.loads(state_file.read_text())
    assert state["tasks"]["1"] == tasks["1"] and state["tasks"]["3"] == tasks["3"]  # not submitted again
    assert state["tasks"]["2"] != tasks["2"] and state["final"] != final
    rerun, last = log_of(state["tasks"]["2"]).read_text(), log_of(state["final"]).read_text()
    assert "Stage 1 NLR1: 0 enhanced, 1 reused" in rerun  # the cancelled task's finished audio
    # Each signal transcribed once in all: shards 1 and 3 their own shares, shard 2 what its
    # cancelled run had not finished, the final job nothing.
    assert transcribed(log_of(tasks["1"]).read_text()) == {"NLR1": 1, "fit set": 2}
    assert transcribed(log_of(tasks["3"]).read_text()) == {"NLR1": 1, "fit set": 1}
    finished = {"NLR1": int(bool(re.search(r"Stage 2: NLR1 \(tiny.en\):\s+100%", cancelled))),
                "fit set": int(bool(re.search(r"Stage 2: fit set [^:]*:\s+100%", cancelled)))}
    assert transcribed(rerun) == {k: 1 - finished[k] for k in finished}, (finished, rerun[-2000:])
    assert transcribed(last) == {"NLR1": 0, "fit set": 0}, last[-2000:]

    # One process, here, over the same records with the demo's shipped values (made by single
    # runs, keyed by audio content, settings and code): the same CSV, byte for byte.
    through_slurm = time.monotonic() - started
    one = make_clip_root(shared / "one", "valid", demo_records("valid")[:3], shipped_store=True)
    make_clip_root(one, "train", demo_records("train")[:4])
    code, single = run_main([*options[2:], "--data-root", one, "--results-dir", shared / "one" / "results"], caplog)
    assert code == 0, single[-3000:]
    [csv] = list(results.glob("submission_*valid*.csv"))
    [csv_one] = list((shared / "one" / "results").glob("submission_*valid*.csv"))
    assert csv.read_bytes() == csv_one.read_bytes()
    print(f"SLURM test: {through_slurm:.0f} s through SLURM, {time.monotonic() - started:.0f} s in all")


def queued_jobs() -> list[str]:
    return subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True).stdout.split()


@pytest.mark.parametrize("options,expected", [
    (["--slurm-partition", "nosuch"], "invalid partition specified: nosuch"),
    (["--slurm-mem", "100000000G"], "Requested node configuration is not available"),
    (["--slurm-gres", "gpu:1"], "Invalid generic resource (gres) specification"),
    (["--slurm-extra", '{"account": "x", "bogus-option": "1"}'], "unrecognized option '--bogus-option=1'"),
])
def test_options_the_scheduler_refuses_submit_nothing(shared, caplog, options, expected):
    before = queued_jobs()
    code, log = run_main(["--slurm", "2", "--results-dir", shared / "r", *options], caplog)
    assert code == 2, log
    assert "the scheduler refuses these options" in log and expected in log and "Nothing was submitted" in log
    assert not list((shared / "r").glob(".slurm/*/state.json")) and queued_jobs() == before


def test_a_results_folder_in_memory_is_refused(caplog):
    if not Path("/dev/shm").is_dir() or mount_of(Path("/dev/shm"))[1] not in MEMORY_FILESYSTEMS:
        pytest.skip("no /dev/shm in memory here")
    results = Path(tempfile.mkdtemp(prefix="clip-slurm-", dir="/dev/shm"))
    try:
        code, log = run_main(["--slurm", "2", "--results-dir", results], caplog)
        assert code == 2, log
        assert f"--results-dir {results} is in memory (tmpfs)" in log and "every node of the cluster mounts" in log
        assert not (results / ".slurm").exists()
    finally:
        shutil.rmtree(results, ignore_errors=True)
