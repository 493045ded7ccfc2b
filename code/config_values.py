"""Checks of the options whose values are structures or paths: ``--audiograms``,
``--predictor-options`` and ``--results-dir``. Part of the config's checks
(``code.config.check_config``), kept apart to keep that file small; standard library only."""

from __future__ import annotations

import math
from pathlib import Path

from code.errors import shown

AUDIOGRAM_LEVELS_DB_HL = (-10.0, 120.0)  # plausible hearing thresholds (dB HL) an audiogram may give


def _numbers(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)


def audiogram_problem(category: str, spec: object) -> str | None:
    """Why ``--audiograms``' entry for ``category`` cannot be used, else None: it must be
    ``{"levels": [...], "frequencies": [...]}``, lists of numbers of one length, every
    level finite and within ``AUDIOGRAM_LEVELS_DB_HL``, the frequencies finite, positive
    and rising."""
    where = f"--audiograms {category!r}"
    if not isinstance(spec, dict) or set(spec) != {"levels", "frequencies"}:
        return (f"{where} must be an object {{\"levels\": [dB HL, ...], \"frequencies\": [Hz, ...]}}, "
                f"got {shown(spec)}")
    levels, frequencies = spec["levels"], spec["frequencies"]
    for name, values in (("levels", levels), ("frequencies", frequencies)):
        if not _numbers(values):
            return f"{where}: {name} must be a non-empty list of numbers, got {shown(values)}"
        bad = [x for x in values if not math.isfinite(x)]
        if bad:
            return f"{where}: {name} must be finite numbers, got {bad[0]} in {shown(values)}"
    if len(levels) != len(frequencies):
        return (f"{where}: {len(levels)} levels for {len(frequencies)} frequencies; "
                "give one level per frequency")
    low, high = AUDIOGRAM_LEVELS_DB_HL
    outside = [x for x in levels if not low <= x <= high]
    if outside:
        return (f"{where}: level {outside[0]} is outside {low:g}..{high:g} dB HL, the plausible "
                f"range of a hearing threshold (levels {shown(levels)})")
    if any(f <= 0 for f in frequencies) or any(b <= a for a, b in zip(frequencies, frequencies[1:])):
        return f"{where}: frequencies must be positive and rising (Hz), got {shown(frequencies)}"
    return None


def audiograms_problem(audiograms: object, categories: tuple[str, ...]) -> str | None:
    """Why ``--audiograms`` cannot be used, else None: an object of ``categories``, each
    entry as ``audiogram_problem`` wants, every category with the same frequencies."""
    if not isinstance(audiograms, dict):
        return f"--audiograms must be a JSON object of categories, got {shown(audiograms)}"
    for category, spec in audiograms.items():
        if category not in categories:
            return f"audiograms: unknown category {shown(category)}; expected {list(categories)}"
        problem = audiogram_problem(category, spec)
        if problem:
            return problem
    sets = {category: tuple(spec["frequencies"]) for category, spec in audiograms.items()}
    if len(set(sets.values())) > 1:
        listing = "; ".join(f"{c}: {list(f)}" for c, f in sets.items())
        return ("--audiograms gives the categories different frequencies; models get one level per "
                f"frequency for every signal, so give every category the same frequencies ({listing})")
    return None


def options_problem(options: object) -> str | None:
    """Why ``--predictor-options`` cannot be used, else None: an object of plain values
    (a stack's ``members`` are checked by the stack)."""
    if not isinstance(options, dict):
        return f"--predictor-options must be a JSON object of settings, got {shown(options)}"
    for key, value in options.items():
        if value is not None and not isinstance(value, (int, float, str, bool)) and key != "members":  # the stack checks its members
            return (f"--predictor-options {key!r} must be a number, a string, true/false or null, "
                    f"got {shown(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            return f"--predictor-options {key!r} must be a finite number, got {value}"
    return None


def results_dir_problem(results_dir: str) -> str | None:
    """Why ``--results-dir`` cannot be a folder, else None."""
    path = Path(results_dir)
    for folder in (path, *path.parents):
        try:
            if not folder.exists():
                continue
        except (OSError, ValueError) as e:
            return f"--results-dir {shown(results_dir)} cannot be a folder here: {e}"
        if not folder.is_dir():
            what = "is a file" if folder == path else f"lies under {folder}, which is a file"
            return f"--results-dir {path} {what}; expected a folder (or a path where one can be made)"
        return None
    return None
