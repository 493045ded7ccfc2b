"""The ``--slurm`` options: their checks (cheap, while the command line is read) and the sbatch
options they ask for. Beside ``code.config`` at the bottom of the project: imports nothing
from ``code`` but ``code.errors``."""

from __future__ import annotations

import re

from code.errors import shown

OPTIONS = ("slurm_partition", "slurm_time", "slurm_mem", "slurm_gres", "slurm_extra", "slurm_wait")
# sbatch options --slurm writes itself: --slurm-extra may not set them.
MANAGED = ("array", "dependency", "output", "error", "wrap", "kill-on-invalid-dep", "open-mode",
           "signal", "job-name", "test-only")
NAMED = {"partition": "--slurm-partition", "time": "--slurm-time", "mem": "--slurm-mem",
         "gres": "--slurm-gres", "cpus-per-task": "--jobs"}
TIME = re.compile(r"(\d+-)?\d+(:\d{1,2}){0,2}|UNLIMITED|INFINITE", re.IGNORECASE)


def sbatch_options(cfg) -> dict[str, str]:
    """The sbatch options of ``--slurm``'s jobs, ``{name: value}``: the named options, then
    ``--slurm-extra``. Each job asks for ``--jobs`` CPUs (1 when ``--jobs`` is 0)."""
    options = {"partition": cfg.slurm_partition, "time": cfg.slurm_time,
               "cpus-per-task": str(max(cfg.jobs, 1)), "mem": cfg.slurm_mem, "gres": cfg.slurm_gres}
    options.update({_name(k): str(v) for k, v in cfg.slurm_extra.items()})
    return {k: v for k, v in options.items() if v != ""}


def _name(key: object) -> str:
    return str(key).lstrip("-").replace("_", "-")


def slurm_problem(cfg, defaults) -> str | None:
    """Why the ``--slurm`` options cannot work, else None (``defaults``: the config's defaults,
    to see which options were given)."""
    given = [f"--{f.replace('_', '-')}" for f in OPTIONS if getattr(cfg, f) != getattr(defaults, f)]
    if not cfg.slurm:
        return f"{', '.join(given)} apply only with --slurm N (which submits the run to SLURM)" if given else None
    if cfg.slurm < 0:
        return f"--slurm must be the number of shard tasks (1 or more; 0 runs here), got {cfg.slurm}"
    for other, why in (("shard", "--slurm gives each task its --shard"),
                       ("scores", "--scores needs no audio work"),
                       ("train", "train first, then submit: python main.py --train --stages 1 ...")):
        if getattr(cfg, other):
            return f"--slurm and --{other} do not go together ({why})"
    if cfg.slurm_time and not TIME.fullmatch(cfg.slurm_time):
        return (f"--slurm-time must be minutes, H:MM:SS or D-H:MM:SS (sbatch's --time), got "
                f"{cfg.slurm_time!r}")
    for key, value in cfg.slurm_extra.items():
        name = _name(key)
        if (not re.fullmatch(r"[a-z][a-z0-9-]*", name) or isinstance(value, bool)
                or not isinstance(value, (str, int, float))):
            return (f"--slurm-extra {shown(key)}: expected an sbatch option's long name and its value "
                    f"as text or a number (e.g. {{\"account\": \"abc\"}}), got {shown(value)}")
        if name in MANAGED:
            return f"--slurm-extra {key!r}: --slurm sets sbatch's --{name} itself"
        if name in NAMED:
            return f"--slurm-extra {key!r}: give it with {NAMED[name]}"
    return None
