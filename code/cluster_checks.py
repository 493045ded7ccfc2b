"""What ``--slurm`` checks before it submits anything: SLURM's commands are here and answer,
the folders the jobs read and write are on a filesystem every node sees, and the scheduler
accepts the options (``sbatch --test-only``).

Nothing heavy is imported: these checks run on a cluster's login node in a second.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from code.slurm_options import sbatch_options
from code.errors import ConfigError

# Filesystems every node of a cluster mounts (network and cluster filesystems).
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph", "fuse.ceph",
    "fuse.cephfs", "glusterfs", "fuse.glusterfs", "panfs", "wekafs", "afs", "orangefs", "pvfs2",
    "ocfs2", "gfs2", "fuse.juicefs", "fuse.lizardfs", "fuse.mfs", "fuse.sshfs", "9p", "virtiofs",
})
# Filesystems in a machine's memory: never seen by another node, and private to each job where
# SLURM gives jobs their own /tmp and /dev/shm (job_container/tmpfs).
MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})
# A disk of one machine: shared only when the cluster is that one machine.
LOCAL_FILESYSTEMS = frozenset({
    "ext2", "ext3", "ext4", "xfs", "btrfs", "zfs", "f2fs", "vfat", "exfat", "ntfs", "ntfs3",
    "overlay", "reiserfs", "jfs", "nilfs2", "bcachefs",
})


class ClusterUnavailable(RuntimeError):
    """SLURM cannot be used from this machine (a fault of the environment, exit 1)."""


@dataclass(frozen=True)
class Partition:
    name: str
    default_time: str  # sinfo's %L: the partition's default time limit, "n/a" when it has none
    max_time: str  # sinfo's %l: its largest, "infinite" when unlimited
    nodes: tuple[str, ...]


def slurm_command(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """A SLURM client command's result (text)."""
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)


def check_slurm_here() -> list[Partition]:
    """The cluster's partitions, default first.

    Raises:
        ClusterUnavailable: no sbatch, squeue or sinfo on PATH, submitit not installed, or the
            controller does not answer.
    """
    missing = [c for c in ("sbatch", "squeue", "sinfo", "scancel") if shutil.which(c) is None]
    if missing:
        raise ClusterUnavailable(
            f"--slurm submits to SLURM, but {', '.join(missing)} is not on this machine's PATH. "
            "Run it where sbatch works (the cluster's login node), or leave --slurm out to run here")
    try:
        import submitit  # noqa: F401  (only needed to submit)
    except ImportError:
        raise ClusterUnavailable("--slurm submits with submitit, which is not installed: "
                                 "pip install -r requirements.txt") from None
    try:
        out = slurm_command("sinfo", "-h", "-o", "%P|%L|%l|%N")
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ClusterUnavailable(f"SLURM does not answer (sinfo: {e})") from None
    if out.returncode != 0:
        raise ClusterUnavailable(f"SLURM does not answer: sinfo says {out.stderr.strip()!r}")
    partitions = []
    for line in out.stdout.splitlines():
        name, default_time, max_time, nodes = line.split("|", 3)
        default = name.endswith("*")
        entry = Partition(name.rstrip("*"), default_time, max_time, tuple(expand_nodes(nodes)))
        partitions.insert(0, entry) if default else partitions.append(entry)
    if not partitions:
        raise ClusterUnavailable("SLURM answers but lists no partition (sinfo is empty)")
    return partitions


def expand_nodes(nodes: str) -> list[str]:
    """``sinfo``'s node list as names (``scontrol show hostnames`` when it holds ranges)."""
    if "[" not in nodes:
        return [n for n in nodes.split(",") if n]
    out = slurm_command("scontrol", "show", "hostnames", nodes)
    return out.stdout.split() if out.returncode == 0 else [nodes]


def mount_of(path: Path, mountinfo: str | None = None) -> tuple[str, str]:
    """(mount point, filesystem type) of the mount holding ``path`` (its nearest existing
    folder), read from ``/proc/self/mountinfo``."""
    path, missing = Path(path).absolute(), []
    while not path.exists() and path != path.parent:  # links resolved where the folders exist
        missing.insert(0, path.name)
        path = path.parent
    path = path.resolve().joinpath(*missing)
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text(encoding="utf-8")
        except OSError:
            return "/", "unknown"
    best = ("/", "unknown")
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        point = fields[4].encode().decode("unicode_escape")  # \040 for a space, as the kernel writes it
        fstype = fields[fields.index("-") + 1]
        inside = path == Path(point) or Path(point) in path.parents
        if inside and len(point) >= len(best[0]):
            best = (point, fstype)
    return best


def shared_problem(what: str, path: Path, fstype: str, cluster_nodes: set[str], here: str) -> str | None:
    """Why the jobs could not share ``path`` (on a ``fstype`` filesystem), else None.

    Network filesystems are shared. A memory filesystem (tmpfs: /tmp on many systems,
    /dev/shm) never is. A local disk is shared only when the cluster's one node is this
    machine. An unknown type is let through (the jobs then fail on a missing file, with its
    name)."""
    required = (f"{what} must be on a filesystem every node of the cluster mounts (NFS, Lustre, "
                "GPFS, BeeGFS, CephFS, ...)")
    if fstype in MEMORY_FILESYSTEMS:
        return (f"{path} is in memory ({fstype}), which other nodes never see and SLURM may make "
                f"private to each job; {required}")
    if fstype in LOCAL_FILESYSTEMS and cluster_nodes != {here}:
        return (f"{path} is on a disk of this machine ({fstype}) and the cluster's nodes "
                f"({', '.join(sorted(cluster_nodes)) or 'none listed'}) are not just this machine "
                f"({here}); {required}")
    return None


def check_shared(cfg, partition: Partition, project_dir: Path) -> None:
    """Refuse folders the nodes of ``partition`` cannot share: the results folder and the data
    root (the user's, exit 2), the project and its Python (the environment's, exit 1)."""
    import socket

    here = socket.gethostname().split(".")[0]
    nodes = {n.split(".")[0] for n in partition.nodes}
    data_root = Path(cfg.data_root)
    if not data_root.is_dir():
        raise ConfigError(f"--data-root {data_root} is not a folder; the jobs would all fail on it")
    for option, path in (("--results-dir", Path(cfg.results_dir)), ("--data-root", data_root)):
        problem = shared_problem(f"{option} (the jobs share it)", path, mount_of(path)[1], nodes, here)
        if problem:
            raise ConfigError(f"--slurm: {option} {problem}")
    for what, path in (("the project", project_dir), ("the Python environment", Path(sys.prefix))):
        problem = shared_problem(f"{what} (the jobs run it)", path, mount_of(path)[1], nodes, here)
        if problem:
            raise ClusterUnavailable(f"--slurm: {what} {problem}")


def check_options(cfg, partition: Partition, tasks: int) -> dict[str, str]:
    """The sbatch options of the jobs, once the scheduler has accepted them for an array of
    ``tasks`` (``sbatch --test-only``); nothing is submitted.

    Raises:
        ConfigError: the scheduler's own words, naming our options.
    """
    options = sbatch_options(cfg)
    options.setdefault("partition", partition.name)
    if "time" not in options:  # submitit always writes a limit: the partition's own default
        limit = partition.default_time if partition.default_time not in ("n/a", "") else partition.max_time
        options["time"] = "UNLIMITED" if limit in ("infinite", "n/a", "") else limit
    flags = [f"--{k}={v}" for k, v in options.items()]
    try:
        out = slurm_command("sbatch", "--test-only", f"--array=0-{tasks - 1}", *flags, "--wrap", "true")
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ClusterUnavailable(f"sbatch --test-only did not answer: {e}") from None
    if out.returncode != 0:
        said = "; ".join(line.strip() for line in (out.stderr + out.stdout).splitlines() if line.strip())
        raise ConfigError(f"--slurm: the scheduler refuses these options ({' '.join(flags)}): {said}. "
                          "Nothing was submitted")
    return options
