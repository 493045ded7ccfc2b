"""Trained weights on disk: where a results folder keeps a model's weights, which file a
run loads, and the record of the training beside it."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

TRAINED_WEIGHTS = "_training/{name}.pt"  # where a results folder keeps a trained model's weights


def weights_stem(model) -> str:
    """The stem of ``model``'s (an instance's or a class's) weights file: its ``weights_name``
    when set, else its class's name."""
    cls = model if inspect.isclass(model) else type(model)
    return getattr(cls, "weights_name", None) or cls.__name__


def trained_weights_path(results_dir: Path | str, name: str, *, tag: str = "") -> Path:
    """Where ``results_dir`` keeps the weights of model class ``name`` trained by a run
    tagged ``tag`` (``--tag``): ``_training/<name>[-<tag>].pt``, so tagged trainings
    never overwrite each other."""
    return Path(results_dir) / TRAINED_WEIGHTS.format(name=f"{name}-{tag}" if tag else name)


def weights_to_load(results_dir: Path | str, name: str, *, tag: str = "") -> Path | None:
    """The weights a run tagged ``tag`` uses: its own (``<name>-<tag>.pt``) when that tag
    was trained, else the untagged ones (so ``--tag`` can still keep other settings apart),
    else None."""
    own, untagged = trained_weights_path(results_dir, name, tag=tag), trained_weights_path(results_dir, name)
    for path in (own, untagged):
        if path.exists():
            return path
    return None


def training_record(weights: Path) -> dict:
    """The record written beside trained ``weights`` (``<stem>.json``: key, options, curve,
    ...); empty when it is missing or unreadable."""
    record = Path(weights).with_suffix(".json")
    try:
        return json.loads(record.read_text(encoding="utf-8")) if record.exists() else {}
    except ValueError:
        return {}
