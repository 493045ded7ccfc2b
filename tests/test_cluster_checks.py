"""``--slurm``'s refusals that need no cluster: its options, the folders the nodes must share,
a machine without sbatch, and the jobs' command giving back the very config submitted.
(Against a real SLURM: tests/test_slurm.py.)"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from main import CONFIG, parse_config

from code.cluster import job_argv, run_folder
from code.cluster_checks import mount_of, shared_problem
from code.config import check_config
from code.slurm_options import sbatch_options
from tests.conftest import run_main


@pytest.mark.parametrize("change,expected", [
    ({"slurm_partition": "gpu"}, "--slurm-partition apply only with --slurm N"),
    ({"slurm_wait": True}, "--slurm-wait apply only with --slurm N"),
    ({"slurm": -2}, "--slurm must be the number of shard tasks"),
    ({"slurm": 3, "shard": "1/3"}, "--slurm and --shard do not go together"),
    ({"slurm": 3, "train": True}, "--slurm and --train do not go together"),
    ({"slurm": 3, "scores": "x.jsonl"}, "--slurm and --scores do not go together"),
    ({"slurm": 3, "slurm_time": "2h"}, "--slurm-time must be minutes"),
    ({"slurm": 3, "slurm_extra": {"mem": "4G"}}, "give it with --slurm-mem"),
    ({"slurm": 3, "slurm_extra": {"dependency": "afterok:1"}}, "sets sbatch's --dependency itself"),
    ({"slurm": 3, "slurm_extra": {"account": ["a"]}}, "--slurm-extra 'account': expected"),
])
def test_bad_slurm_options_are_refused_while_parsing(change, expected):
    assert expected in check_config(dataclasses.replace(CONFIG, **change))


def test_sbatch_options_pass_through():
    cfg = dataclasses.replace(CONFIG, slurm=4, slurm_partition="gpu", slurm_time="1-02:00:00", slurm_mem="16G",
                              slurm_gres="gpu:1", slurm_extra={"account": "abc", "qos": "high"}, jobs=8)
    assert check_config(cfg) is None
    assert sbatch_options(cfg) == {"partition": "gpu", "time": "1-02:00:00", "cpus-per-task": "8", "mem": "16G",
                                   "gres": "gpu:1", "account": "abc", "qos": "high"}
    assert sbatch_options(dataclasses.replace(CONFIG, slurm=2)) == {"cpus-per-task": "1"}


def test_a_job_runs_the_config_submitted(tmp_path):
    """main.py reads a job's options back into the submitted config (with its shard), whatever
    main.py's CONFIG block says; paths are absolute, so the job's folder does not matter."""
    cfg = dataclasses.replace(parse_config([]), slurm=3, slurm_wait=True, tag="-odd", folds=3, haspi=True,
                              predictor_options={}, audiograms={"Mild": {"levels": [10, 20], "frequencies": [500, 1000]}},
                              results_dir=str(tmp_path / "r"))
    back = parse_config(job_argv(cfg, shard="2/3"))
    assert back == dataclasses.replace(cfg, slurm=0, slurm_wait=False, shard="2/3")
    assert run_folder(cfg) == run_folder(dataclasses.replace(cfg, jobs=4, slurm_partition="gpu"))  # same run
    assert run_folder(cfg) != run_folder(dataclasses.replace(cfg, slurm=4))
    assert run_folder(cfg) != run_folder(dataclasses.replace(cfg, model="identity"))


MOUNTS = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:26 / /tmp rw shared:5 - tmpfs tmpfs rw
31 22 0:40 / /home rw shared:6 - nfs4 server:/home rw
32 31 0:41 / /home/with\\040space rw - lustre x rw
"""


@pytest.mark.parametrize("path,expected", [
    ("/var/data", ("/", "ext4")), ("/tmp/results", ("/tmp", "tmpfs")), ("/tmpfoo", ("/", "ext4")),
    ("/home/me/results", ("/home", "nfs4")), ("/home/with space/x", ("/home/with space", "lustre")),
])
def test_the_filesystem_of_a_folder(path, expected):
    assert mount_of(Path(path), MOUNTS) == expected


def test_which_folders_the_nodes_share():
    """Network filesystems always; memory never; a local disk only on a one-node cluster that
    is this machine; an unknown type is let through."""
    here, nodes = "login1", {"node1", "node2"}
    assert shared_problem("x", Path("/home/r"), "nfs4", nodes, here) is None
    assert "in memory (tmpfs)" in shared_problem("x", Path("/tmp/r"), "tmpfs", {here}, here)
    assert "a disk of this machine (ext4)" in shared_problem("x", Path("/r"), "ext4", nodes, here)
    assert "NFS, Lustre" in shared_problem("x", Path("/r"), "ext4", nodes, here)
    assert shared_problem("x", Path("/r"), "ext4", {here}, here) is None
    assert shared_problem("x", Path("/r"), "fuse.someday", nodes, here) is None


def test_dev_shm_is_seen_as_memory():
    if not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm here")
    assert mount_of(Path("/dev/shm/results/x"))[1] in ("tmpfs", "ramfs")


def test_no_sbatch_is_refused_before_anything(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no SLURM command on it
    code, log = run_main(["--slurm", "3", "--results-dir", tmp_path / "r"], caplog)
    assert code == 1
    assert "sbatch" in log and "not on this machine's PATH" in log and "leave --slurm out" in log
    assert not (tmp_path / "r").exists()
