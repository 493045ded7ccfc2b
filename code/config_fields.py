"""How a setting of ``ExperimentConfig`` declares itself: ``setting(default, role, help, ...)``
puts its help text and its role in the dataclass field's metadata, and the functions below read
them back, so that ``--help``, run names, keys, ``--recompute`` and suggested commands follow from
the field's own line in ``code/config.py`` instead of lists kept elsewhere.

A role says what a setting changes:

- ``STAGE1``: Stage 1's audio, and so every prediction after it;
- ``PREDICTION``: Stage 2's values or the predictor, so the predictions (not Stage 1);
- ``OUTPUT``: only where and how output is written (folders, file names, reports);
- ``WORK``: how this command goes about the work (which stages or part, SLURM, trusting the
  shipped store): no value changes, but the command is not the same command;
- ``RESOURCES``: only how fast or on which device the work runs: no value, name or key changes
  (a rerun with more CPUs goes on with the same ``--recompute`` progress and SLURM submission).

A ``STAGE1`` or ``PREDICTION`` setting either has a ``label`` (how it is written in a run's name
when it differs from the default) or says in ``unlabelled`` why the name needs none.

Beside ``code.config`` at the bottom of the project: imports nothing from ``code``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

STAGE1, PREDICTION, OUTPUT, WORK, RESOURCES = "stage1", "prediction", "output", "work", "resources"
ROLES = (STAGE1, PREDICTION, OUTPUT, WORK, RESOURCES)
NAMED_ROLES = (STAGE1, PREDICTION)  # settings of these roles are in a run's name, or say why not
EACH_FEATURE = "each feature"  # a label: one per Stage-2 feature added (its name) or left out (no-<name>)
LAST_RANK = 1000  # a label without a rank comes after those with one


def setting(default: Any, role: str, help: str, *, label: Callable[[Any], str] | str | None = None,
            rank: int | None = None, applies: Callable[[Any], bool] | None = None,
            compared: Callable[[Any], Any] | None = None, unlabelled: str = "", command: bool = True) -> Any:
    """A config field with its metadata.

    Args:
        default: the value when neither main.py's block nor the command line gives one (a dict
            default is copied for each config).
        role: one of ``ROLES``: what the setting changes.
        help: the ``--help`` text.
        label: how a value differing from the default is written in a run's name
            (``lambda v: f"folds{v}"``), or ``EACH_FEATURE``.
        rank: where the label goes in a run's name (lower first; ties in field order).
        applies: ``cfg -> bool``, whether the setting can change this run's predictions at all
            (``--msbg`` only with ``--input unprocessed``); default: always.
        compared: ``cfg -> value`` compared with the defaults' and given to the label (the
            resolved list of ``--asr-models``); default: the field's value.
        unlabelled: for a ``STAGE1`` or ``PREDICTION`` setting without a label: why the run's
            name needs none (it is in the name otherwise, or enters Stage 1's key).
        command: False to leave it out of suggested ``python main.py`` commands (it names other
            work than the run's own); ``RESOURCES`` settings are always left out.
    """
    metadata = {"role": role, "help": help, "label": label, "rank": rank, "applies": applies,
                "compared": compared, "unlabelled": unlabelled, "command": command and role != RESOURCES}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def field_help(config_class) -> dict[str, str]:
    """Each field's ``--help`` text, from its metadata."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(config_class)}


def fields_with_role(config_class, *roles: str) -> tuple[str, ...]:
    """The names of the fields whose role is one of ``roles``, in field order."""
    return tuple(f.name for f in dataclasses.fields(config_class) if f.metadata.get("role") in roles)


def name_labels(config_class) -> dict[str, Callable[[Any], str] | str]:
    """``{field: label}`` of the settings that enter a run's name, in the order their labels
    are written (by rank, then field order)."""
    labelled = [(f.metadata.get("rank") or LAST_RANK, i, f) for i, f in enumerate(dataclasses.fields(config_class))
                if f.metadata.get("label") is not None]
    return {f.name: f.metadata["label"] for _, _, f in sorted(labelled, key=lambda t: t[:2])}


def named_value(cfg, name: str) -> Any:
    """A named setting's value as run names compare it (its ``compared``, else the field)."""
    compared = _metadata(cfg, name).get("compared")
    return compared(cfg) if compared else getattr(cfg, name)


def applies(cfg, name: str) -> bool:
    """Whether a setting can change this run's predictions at all (its ``applies``)."""
    check = _metadata(cfg, name).get("applies")
    return check(cfg) if check else True


def _metadata(cfg, name: str):
    return next(f.metadata for f in dataclasses.fields(cfg) if f.name == name)


def in_commands(config_class) -> tuple[str, ...]:
    """The fields a suggested ``python main.py`` command may spell out, in field order."""
    return tuple(f.name for f in dataclasses.fields(config_class) if f.metadata.get("command"))


def role_problems(config_class) -> list[str]:
    """What is wrong with the fields' declarations (empty when each says what it is): a field
    without a known role or help, a named-role field with neither label nor reason."""
    problems = []
    for f in dataclasses.fields(config_class):
        meta, where = f.metadata, f"ExperimentConfig.{f.name}"
        if meta.get("role") not in ROLES:
            problems.append(f"{where} has no role (one of {ROLES}): declare it with setting(default, role, help)")
            continue
        if not meta.get("help"):
            problems.append(f"{where} has no help text")
        has_label, has_reason = meta.get("label") is not None, bool(meta.get("unlabelled"))
        if meta["role"] in NAMED_ROLES and has_label == has_reason:
            problems.append(f"{where} changes {meta['role']}: give it a label for run names, "
                            "or say in unlabelled= why the name needs none (one of the two)")
        if meta["role"] not in NAMED_ROLES and (has_label or has_reason):
            problems.append(f"{where} ({meta['role']}) changes no prediction: it takes no label")
    return problems
