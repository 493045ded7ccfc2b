"""Checks of the options that name things a run writes or reads: ``--tag`` and ``--team-id``
(parts of file names) and the lists ``--models`` and ``--asr-models``. Part of the config's
checks (``code.config.check_config``), kept apart to keep that file small; standard library
only."""

from __future__ import annotations

from collections import Counter

from code.errors import shown

MAX_NAME_BYTES = 64  # --tag and --team-id become parts of file names (at most 255 bytes each)


def lists_problem(cfg) -> str | None:
    """Why ``--tag`` or ``--team-id`` is too long to go into a file name, or ``--models`` or
    ``--asr-models`` has an empty or a repeated item, else None."""
    for option, value in (("--tag", cfg.tag), ("--team-id", cfg.team_id)):
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > MAX_NAME_BYTES:
            return (f"{option} must be at most {MAX_NAME_BYTES} bytes long (it becomes part of the "
                    f"run's file names), got {size}: {shown(value, 40)}")
    for option, text in (("--models", cfg.models), ("--asr-models", cfg.asr_models)):
        items = [part.strip() for part in text.split(",")] if text.strip() else []
        if not all(items):
            example = "identity,NLR1" if option == "--models" else "tiny.en,base.en"
            return (f"{option} has an empty item in {shown(text)}: give names separated by single "
                    f"commas, e.g. {example}")
        counts = Counter(items)
        name, n = counts.most_common(1)[0] if counts else ("", 0)
        if n > 1:
            return (f"{option} lists a model twice: {shown(name)} {n} times ({len(items)} items, {len(counts)} different); "
                    f"give each once: {option} {shown(','.join(counts), 120)}")
    return None
