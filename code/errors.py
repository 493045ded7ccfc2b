"""The project's errors, importable without any heavy library (no torch, Whisper,
numba or pyclarity), so every layer and script can raise and catch them."""

from __future__ import annotations

from dataclasses import dataclass


class DataError(Exception):
    """The data set (or a file given for it) is not in the shape the pipeline needs."""


class ConfigError(ValueError):
    """The experiment's settings cannot work (found when the run starts, before any work)."""


class ASRError(RuntimeError):
    """A Whisper model could not be found, loaded or run."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one record or file."""

    signal: str | None
    reason: str
    path: str | None = None

    def __str__(self) -> str:
        where = f"signal {self.signal}" if self.signal else "metadata"
        return f"{where}: {self.reason}" + (f" ({self.path})" if self.path else "")

    def to_dict(self) -> dict:
        return {"signal": self.signal, "reason": self.reason, "path": self.path}
