"""What a hearing-aid report's settings add to its files' and its page's names.

The report of a ``--models`` run is named by the run (split, input, tag, run suffix) and
by its own settings when they are not the defaults: ``vs-<baseline>``,
``quality=<quality>`` (hearing-aid chain) and ``alpha<alpha>`` (when quality is judged).
The page of the same runs carries the same labels, so two reports never share a page.
"""

from __future__ import annotations

from code.config import DEFAULTS, model_names


def quality_wanted(cfg) -> bool:
    """Whether this run judges music quality: a report of several models on the hearing-aid
    chain (the unprocessed audio is the reference), unless ``--quality none``."""
    return cfg.input == "unprocessed" and cfg.quality != "none" and len(model_names(cfg)) > 1


def report_labels(cfg) -> list[str]:
    """The report's settings that differ from the defaults, as name parts, in name order."""
    labels = [f"vs-{cfg.baseline}"] if cfg.baseline != DEFAULTS.baseline else []
    if cfg.input == "unprocessed" and cfg.quality != DEFAULTS.quality:
        labels.append(f"quality={cfg.quality}")
    if quality_wanted(cfg) and cfg.alpha != DEFAULTS.alpha:
        labels.append(f"alpha{cfg.alpha:g}")
    return labels
