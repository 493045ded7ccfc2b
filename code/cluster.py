"""``python main.py ... --slurm N``: the run submitted to SLURM, with submitit, as one array of N
shard tasks (``--shard K/N`` each) and a final job that depends on them all (``afterok``) and
writes the CSV and the reports as a single run does.

The jobs run ``main.py`` with every option spelled out, so they do what this command would do
here. Each submission is kept in ``<results>/.slurm/<run>/`` (``state.json``, submitit's scripts,
one log per task), where ``<run>`` is named by the run's settings. The same command again says
how the last submission went (which task failed, and its log's last lines) and submits only
what is unfinished: the shard tasks that did not succeed, and the final job.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from code.config import ExperimentConfig
from code.config_fields import RESOURCES, fields_with_role
from code.cluster_checks import (ClusterUnavailable, Partition, check_options, check_shared,
                                 check_slurm_here, slurm_command)
from code.errors import ConfigError
from code.io_utils import write_json_atomic
from code.keys import settings_digest
from code.slurm_options import OPTIONS

logger = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parents[1]
MAIN = PROJECT_DIR / "main.py"
LOG_LINES = 12  # a failed task's log lines shown
POLL_S = 2.0  # --slurm-wait: seconds between looks at the queue
# Options that change no value a job computes (their role is RESOURCES): left out of the run's
# name, so a rerun with more CPUs or another device goes on with the same submission.
NOT_IN_NAME = fields_with_role(ExperimentConfig, RESOURCES)


@dataclass
class Submission:
    """The jobs of a run's latest submission: each shard's job ID and the final job's."""

    shards: int
    tasks: dict[int, str]  # shard K -> job ID ("123_0", or "123" for a lone task)
    final: str

    def job_ids(self) -> list[str]:
        return sorted(set(self.tasks.values())) + [self.final]


def job_argv(cfg, **changes) -> list[str]:
    """``main.py``'s options for a job: every field spelled out (so main.py's CONFIG block
    cannot change what the job does), paths absolute, no ``--slurm`` options."""
    cfg = dataclasses.replace(cfg, **changes)
    argv = []
    for f in dataclasses.fields(cfg):
        if f.name == "slurm" or f.name in OPTIONS:
            continue
        value = getattr(cfg, f.name)
        flag = "--" + f.name.replace("_", "-")
        if f.name in ("data_root", "results_dir"):
            value = str(Path(value).absolute())
        if isinstance(value, bool):
            argv.append(flag if value else f"--no-{flag[2:]}")
        else:  # --flag=value: a value may be empty or start with "-"
            argv.append(f"{flag}={json.dumps(value) if isinstance(value, dict) else value}")
    return argv


def run_folder(cfg) -> Path:
    """``<results>/.slurm/<run>/``, named by the settings the jobs run with and N."""
    argv = [a for a in job_argv(cfg) if a.split("=")[0][2:].replace("-", "_") not in NOT_IN_NAME]
    return Path(cfg.results_dir) / ".slurm" / settings_digest({"argv": argv, "shards": cfg.slurm})[:16]


def read_state(folder: Path) -> Submission | None:
    try:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        return Submission(int(state["shards"]), {int(k): str(v) for k, v in state["tasks"].items()},
                          str(state["final"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # none yet, or unreadable: a fresh submission


def write_state(folder: Path, submission: Submission) -> None:
    write_json_atomic(folder / "state.json", {"shards": submission.shards, "final": submission.final,
                                              "tasks": {str(k): v for k, v in submission.tasks.items()}})


def in_queue(job_ids: list[str]) -> dict[str, str]:
    """``{job ID: state}`` of those of ``job_ids`` still pending or running."""
    masters = sorted({j.split("_")[0] for j in job_ids})
    out = slurm_command("squeue", "-h", "-r", "-j", ",".join(masters), "-o", "%i|%T")
    if out.returncode != 0 and "Invalid job id" not in out.stderr:
        raise ClusterUnavailable(f"squeue does not answer: {out.stderr.strip()!r}")
    listed = dict(line.split("|", 1) for line in out.stdout.splitlines() if "|" in line)
    return {j: listed[j] for j in job_ids if j in listed}


def paths_of(folder: Path, job_id: str):
    from submitit.core.utils import JobPaths

    return JobPaths(folder, job_id=job_id, task_id=0)


def outcome(folder: Path, job_id: str) -> tuple[bool, str]:
    """(whether the job succeeded, what is known of it otherwise: SLURM's state and its
    log's last lines)."""
    from submitit.core.utils import pickle_load

    paths = paths_of(folder, job_id)
    try:
        if pickle_load(paths.result_pickle)[0] == "success":
            return True, ""
    except Exception:  # no result (cancelled, killed, never started) or a torn one
        pass
    said = slurm_command("scontrol", "-o", "show", "job", job_id)
    fields = dict(f.split("=", 1) for f in said.stdout.split() if "=" in f) if said.returncode == 0 else {}
    state = (f"SLURM state {fields.get('JobState')} (reason {fields.get('Reason')}, exit code "
             f"{fields.get('ExitCode')})" if fields else "SLURM no longer lists it")
    try:
        lines = paths.stderr.read_text(encoding="utf-8", errors="replace").splitlines()
        tail = "\n".join("    " + line for line in lines[-LOG_LINES:])
        return False, f"{state}; its log {paths.stderr} ends:\n{tail}"
    except OSError:
        return False, f"{state}; it wrote no log (it never started)"


def executor(folder: Path, options: dict[str, str], name: str):
    import submitit

    ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
    # Every sbatch option passes as submitit's additional parameters, so ours replace its
    # defaults (its 5-minute time limit); chdir: a folder every node sees.
    ex.update_parameters(slurm_job_name=name, slurm_additional_parameters={**options, "chdir": str(folder)})
    return ex


def submit(cfg, folder: Path, todo: list[int], kept: dict[int, str], options: dict[str, str]) -> Submission:
    """The shard tasks ``todo`` as one array, then the final job after them."""
    from submitit.helpers import CommandFunction

    python = [sys.executable, str(MAIN)]
    name = f"clip-{folder.name[:8]}"
    tasks = dict(kept)
    depends = {}
    if todo:
        ex = executor(folder, options, name)
        with ex.batch():
            jobs = [ex.submit(CommandFunction(python + job_argv(cfg, shard=f"{k}/{cfg.slurm}"), cwd=PROJECT_DIR))
                    for k in todo]
        tasks.update({k: job.job_id for k, job in zip(todo, jobs)})
        array = jobs[0].job_id.split("_")[0]
        depends = {"dependency": f"afterok:{array}", "kill-on-invalid-dep": "yes"}
    ex = executor(folder, {**options, **depends}, name + "-final")
    final = ex.submit(CommandFunction(python + job_argv(cfg, recompute="none"), cwd=PROJECT_DIR))
    return Submission(cfg.slurm, tasks, final.job_id)


def describe(folder: Path, submission: Submission, todo: list[int]) -> str:
    n = submission.shards
    lines = [f"  shard {k}/{n}: job {submission.tasks[k]}, log {paths_of(folder, submission.tasks[k]).stderr}"
             for k in todo]
    lines.append(f"  final: job {submission.final}, log {paths_of(folder, submission.final).stderr}")
    ids = ",".join(sorted({j.split('_')[0] for j in [submission.tasks[k] for k in todo] + [submission.final]}))
    return "\n".join(lines + [f"check on them: squeue -j {ids} (or add --slurm-wait); when they end, the same "
                              "command says how they went and submits only what is unfinished"])


def report(folder: Path, submission: Submission, results_dir: str) -> int:
    """How the submission went, once its jobs left the queue: 0 when the final job succeeded."""
    ok, detail = outcome(folder, submission.final)
    if ok:
        logger.info("done: the final job %s wrote the CSV and reports in %s (its log: %s)",
                    submission.final, results_dir, paths_of(folder, submission.final).stderr)
        return 0
    failed = [(k, outcome(folder, j)) for k, j in sorted(submission.tasks.items())]
    failed = [(k, why) for k, (done, why) in failed if not done]
    for k, why in failed:
        logger.error("shard %d/%d (job %s) did not finish: %s", k, submission.shards, submission.tasks[k], why)
    if failed:
        logger.error("the final job %s did not run (it waits for every shard to succeed); its finished "
                     "work is kept. Fix what the log says, then run the same command again: it submits "
                     "only the %d unfinished shard(s) and the final job", submission.final, len(failed))
    else:
        logger.error("the final job %s did not finish: %s. Run the same command again: every shard is "
                     "done, so it submits only the final job", submission.final, detail)
    return 1


def wait(folder: Path, submission: Submission, results_dir: str) -> int:
    """Watch the queue until the submission's jobs have left it, then ``report``."""
    shown = None
    names = {j: f"shard {k}/{submission.shards}" for k, j in submission.tasks.items()}
    names[submission.final] = "final"
    while True:
        queued = in_queue(submission.job_ids())
        summary = ", ".join(f"{names[j]} {state}" for j, state in sorted(queued.items()))
        if summary != shown and summary:
            logger.info("in the queue: %s", summary)
            shown = summary
        if not queued:
            return report(folder, submission, results_dir)
        time.sleep(POLL_S)


def partition_named(partitions: list[Partition], name: str) -> Partition:
    """The partition the jobs go to (an unknown name: the default, and sbatch says it is unknown)."""
    return next((p for p in partitions if p.name == name), partitions[0])


def submit_run(cfg) -> int:
    """Submit the run (or what is unfinished of it); with ``--slurm-wait``, watch it to its end."""
    partition = partition_named(check_slurm_here(), cfg.slurm_partition)
    check_shared(cfg, partition, PROJECT_DIR)
    folder = run_folder(cfg)
    previous = read_state(folder)
    todo, kept = list(range(1, cfg.slurm + 1)), {}
    if previous:
        queued = in_queue(previous.job_ids())
        if queued:
            logger.info("this run's jobs are still in the queue (%s); nothing submitted.\n%s",
                        ", ".join(f"{j} {s}" for j, s in sorted(queued.items())),
                        describe(folder, previous, sorted(previous.tasks)))
            return wait(folder, previous, cfg.results_dir) if cfg.slurm_wait else 0
        if outcome(folder, previous.final)[0]:
            logger.info("the last submission of this run finished (final job %s); submitting it afresh: "
                        "what the store holds is reused, not computed again", previous.final)
        else:
            report(folder, previous, cfg.results_dir)
            kept = {k: j for k, j in previous.tasks.items() if outcome(folder, j)[0]}
            todo = [k for k in todo if k not in kept]
    options = check_options(cfg, partition, max(len(todo), 1))
    folder.mkdir(parents=True, exist_ok=True)
    submission = submit(cfg, folder, todo, kept, options)
    write_state(folder, submission)
    what = (f"{len(todo)} of {cfg.slurm} shard task(s) ({', '.join(f'{k}/{cfg.slurm}' for k in todo)}) "
            "and the final job, which runs once they all succeed (afterok) and writes the CSV"
            if todo else f"the final job only (all {cfg.slurm} shards are done)")
    logger.info("submitted to SLURM (%s): %s\n%s", ", ".join(f"{k} {v}" for k, v in options.items()),
                what, describe(folder, submission, todo))
    return wait(folder, submission, cfg.results_dir) if cfg.slurm_wait else 0


def slurm_main(cfg) -> int:
    """``main.py --slurm N``: the exit code (2: an option or folder the cluster cannot use;
    1: SLURM cannot be used from here, or a task failed while ``--slurm-wait`` watched)."""
    try:
        return submit_run(cfg)
    except ConfigError as e:
        logger.error("%s", e)
        return 2
    except (ClusterUnavailable, OSError, subprocess.SubprocessError) as e:
        logger.error("--slurm: %s", e)
        return 1
    except KeyboardInterrupt:
        logger.error("stopped watching; the jobs go on. The same command again says how they went")
        return 130
