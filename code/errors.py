"""The project's errors, importable without any heavy library (no torch, Whisper,
numba or pyclarity), so every layer and script can raise and catch them."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

QUOTE_LIMIT = 80  # characters of a value quoted in a message; longer ones are cut
LISTED_PROBLEMS = 50  # problems listed in one message; the rest are counted


def shown(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters with the length of the
    whole, so a huge value cannot make a huge log line."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f"{len(value)} characters" if isinstance(value, str) else f"{len(text)} characters as text"
    return f"{text[:limit]}... ({size})"


def problem_listing(problems: list, limit: int = LISTED_PROBLEMS) -> str:
    """The first ``limit`` problems, one per line (indented), then how many more there are."""
    lines = [str(p) for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"... and {len(problems) - limit} more")
    return "\n  ".join(lines)


class DataError(Exception):
    """The data set (or a file given for it) is not in the shape the pipeline needs."""


class ConfigError(ValueError):
    """The experiment's settings cannot work (found when the run starts, before any work)."""


class ASRError(RuntimeError):
    """A Whisper model could not be found, loaded or run."""


class ModelError(RuntimeError):
    """A hearing-aid model's output cannot be used: not a tensor of its input's shape,
    non-finite samples, or too quiet for the hearing-loss simulator."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one record or file."""

    signal: str | None
    reason: str
    path: str | None = None

    def __str__(self) -> str:
        plain = self.signal and len(self.signal) <= QUOTE_LIMIT and self.signal.isprintable()
        where = f"signal {self.signal if plain else shown(self.signal)}" if self.signal else "metadata"
        path = f" ({self.path})" if self.path and self.path not in self.reason else ""
        return f"{where}: {self.reason}{path}"

    def to_dict(self) -> dict:
        return {"signal": self.signal, "reason": self.reason, "path": self.path}


def unknown_arguments(unknown: list[str], options: list[str]) -> str:
    """What is wrong with command-line words no option took, for ``parser.exit``: each
    unknown ``--option`` with the closest known one (``--modle`` -> ``--model``), or the
    stray value. ``options`` are the parser's option strings."""
    said = []
    for word in unknown:
        name = word.split("=", 1)[0]
        if name.startswith("-"):
            close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
            said.append(f"unknown option {name}" + (f": did you mean {close[0]}?" if close else ""))
        elif not said or not said[-1].startswith("unknown option"):
            said.append(f"unexpected value {shown(word)} (options are written --name value)")
    return "; ".join(said)
