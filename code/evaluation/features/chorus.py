"""Chorus features: what several ASR models agree on, derived by column name.

When a table holds the same words-correct score (0..1) from two or more ASR models
(``asr.<model>.left``, ``asr.<model>.right``, ``asr.<model>.better_ear``), each of
those three is summarised across the models as

    asr.chorus.<ear>.mean, .min, .max, .spread   (spread = max - min; all 0..1)

for ``<ear>`` in ``left``, ``right``, ``better_ear``. ``asr.chorus.better_ear.*``
summarises the models' own better-ear scores (each model picks its better ear), not
the better of the chorus's two ears. A chorus value is missing (NaN) when any model's
value is missing: it is never a summary of fewer models than its neighbours'.

The columns are derived from names only, so a Stage-2 table and a ``--scores`` file in
this project's naming give the same columns: ``split_features`` adds them to its table
and ``fit_predict`` to every table it is given (whatever made it). They are never stored:
any ``asr.chorus.*`` column already in a table is replaced by the derived one.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

CHORUS_LABEL = "chorus"  # the pseudo model name of the derived columns
EARS = ("left", "right", "better_ear")
STATS = ("mean", "min", "max", "spread")
PREFIX = "asr."


def chorus_column(ear: str, stat: str) -> str:
    """The name of one chorus column, e.g. ``asr.chorus.better_ear.mean``."""
    return f"{PREFIX}{CHORUS_LABEL}.{ear}.{stat}"


def is_chorus_column(name: str) -> bool:
    return name.startswith(f"{PREFIX}{CHORUS_LABEL}.")


def model_score_columns(names: list[str]) -> dict[str, dict[str, str]]:
    """``{ear: {model: column}}`` of the per-model words-correct scores among ``names``."""
    out: dict[str, dict[str, str]] = {ear: {} for ear in EARS}
    for name in names:
        if not name.startswith(PREFIX) or is_chorus_column(name):
            continue
        for ear in EARS:
            suffix = f".{ear}"
            model = name[len(PREFIX):-len(suffix)] if name.endswith(suffix) else ""
            if model:
                out[ear][model] = name
    return out


def chorus_values(names: list[str], values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The chorus columns of a table (``names``, ``values`` ``[N, F]``) and their
    values ``[N, C]``; none (``C == 0``) when no ear has two or more models."""
    values = np.asarray(values, dtype=float)
    derived_names: list[str] = []
    derived: list[np.ndarray] = []
    for ear, by_model in model_score_columns(names).items():
        if len(by_model) < 2:
            continue
        block = values[:, [names.index(c) for c in by_model.values()]]
        low, high = block.min(axis=1), block.max(axis=1)  # NaN where a model has none
        stats = {"mean": block.mean(axis=1), "min": low, "max": high, "spread": high - low}
        for stat in STATS:
            derived_names.append(chorus_column(ear, stat))
            derived.append(stats[stat])
    if not derived:
        return [], np.empty((values.shape[0], 0))
    return derived_names, np.column_stack(derived)


def with_chorus(table):
    """``table`` (a ``FeatureTable``) with its chorus columns appended after the others,
    any stored ``asr.chorus.*`` column dropped first; the same table when it has none
    to derive or drop."""
    keep = [i for i, n in enumerate(table.names) if not is_chorus_column(n)]
    names = [table.names[i] for i in keep]
    base = table.values[:, keep]
    derived_names, derived = chorus_values(names, base)
    if not derived_names and len(keep) == len(table.names):
        return table
    models = sorted(model_score_columns(names)["better_ear"])
    if derived_names:
        logger.debug("chorus features of %d ASR models (%s): %d column(s)", len(models), ", ".join(models),
                    len(derived_names))
    return type(table)(list(table.signals), names + derived_names, np.hstack([base, derived]))
