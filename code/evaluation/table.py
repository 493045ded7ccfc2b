"""Per-signal numeric features for the learned predictors: read, join, check, write.

A feature file is JSONL, one ``{"signal": ID, "<feature>": number, ...}`` per
line with any number of numeric columns: the official precomputed score files
(one column, e.g. ``whisper.mixture``), this project's Stage-2 cache and feature
files, or anything a researcher computes. Non-numeric keys (transcripts, digests,
lists) are ignored; every numeric key is a feature column. Several files are
joined on ``signal`` into one ``FeatureTable``.

A value that could not be computed is missing: ``null`` in a file (a ``NaN``
there reads the same), ``NaN`` in a table, written back as ``null``. It is
never replaced by a made-up number; each predictor says what it does with it.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from code.errors import DataError, Problem
from code.io_utils import read_jsonl, write_text_atomic

logger = logging.getLogger(__name__)

MAX_LISTED = 10  # signals named in one error message before "... and N more"


@dataclass
class FeatureTable:
    """Numeric features of some signals: row ``i`` of ``values`` ``[N, F]`` (float64)
    belongs to ``signals[i]``, column ``j`` is the feature ``names[j]``."""

    signals: list[str]
    names: list[str]
    values: np.ndarray

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=float)
        expected = (len(self.signals), len(self.names))
        if values.size == 0 and 0 in expected:
            values = values.reshape(expected)
        if values.shape != expected:
            raise ValueError(f"feature values of shape {values.shape} for {expected[0]} signal(s) x "
                             f"{expected[1]} feature(s): expected {expected}")
        if np.isinf(values).any():
            raise ValueError("feature values hold an infinite number (a missing value is NaN)")
        self.values = values

    def column(self, name: str) -> np.ndarray:
        """One feature column, ``[N]``.

        Raises:
            KeyError: naming the available columns, for an unknown name.
        """
        if name not in self.names:
            raise KeyError(f"no feature column {name!r}; columns are {self.names}")
        return self.values[:, self.names.index(name)]

    def select(self, signals: list[str]) -> FeatureTable:
        """The rows of ``signals``, in that order.

        Raises:
            DataError: naming the signals that have no row.
        """
        index = {s: i for i, s in enumerate(self.signals)}
        missing = [s for s in signals if s not in index]
        if missing:
            raise DataError(f"no features for {len(missing)} signal(s): {_listing(missing)}")
        rows = [index[s] for s in signals]
        return FeatureTable(list(signals), list(self.names), self.values[rows])


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" ... and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def missing_counts(table: FeatureTable) -> dict[str, int]:
    """``{column: number of missing (NaN) values}`` for every column of ``table``."""
    return dict(zip(table.names, np.isnan(table.values).sum(axis=0).astype(int).tolist()))


def read_feature_file(path: Path) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Read one feature file: its numeric column names (in order of first appearance)
    and ``{signal: {column: value}}``. A ``null`` (or NaN) value of a column is
    missing: ``NaN``. When a signal has several lines, the last wins (a cache
    appended to over reruns), with a warning.

    Raises:
        DataError: naming the file (and line or signal), when it is missing, has no
            records, a line without a string ``signal``, no numeric column, an
            infinite value, or a column that is numeric on some lines and absent or
            non-numeric (other than ``null``) on others.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"feature file not found: {path}")
    records = read_jsonl(path)
    if not records:
        raise DataError(f"feature file {path} holds no records")
    names: list[str] = []  # in order of first appearance
    valued: set[str] = set()  # the keys with a number on some line (a key null everywhere is no column)
    rows: dict[str, dict[str, float]] = {}
    repeated: list[str] = []
    for lineno, record in enumerate(records, start=1):
        signal = record.get("signal")
        if not isinstance(signal, str) or not signal:
            raise DataError(f"feature file {path}, record {lineno}: needs a string 'signal', got {record}")
        numeric = {k: v for k, v in record.items() if k != "signal" and (_is_number(v) or v is None)}
        for key, value in numeric.items():
            if value is not None and math.isinf(value):
                raise DataError(f"feature file {path}: signal {signal}: {key} is {value} (not finite; "
                                "write null for a missing value)")
            if key not in names:
                names.append(key)
            if value is not None and not math.isnan(value):
                valued.add(key)
        if signal in rows:
            repeated.append(signal)
        rows[signal] = {k: math.nan if v is None else float(v) for k, v in numeric.items()}
    names = [n for n in names if n in valued]
    if not names:
        raise DataError(f"feature file {path} has no numeric column beside 'signal' (a column "
                        "that is null on every line is not one)")
    for signal, row in rows.items():
        absent = [n for n in names if n not in row]
        if absent:
            raise DataError(f"feature file {path}: signal {signal} has no numeric value for "
                            f"{absent} (other lines have them; write null for a missing value)")
    if repeated:
        logger.warning("feature file %s: %d signal(s) appear on several lines (e.g. %s); "
                       "the last line of each is used", path, len(set(repeated)), repeated[0])
    return names, rows


def read_feature_files(paths: list[Path], signals: list[str], *, skip_invalid: bool = False
                       ) -> tuple[FeatureTable, list[Problem]]:
    """Join feature files on ``signal`` for the given signals (rows in their order).

    Signals in a file but not in ``signals`` are ignored. Missing values (``null``)
    are kept as NaN, and the log counts them per column.

    Raises:
        DataError: when a file cannot be read (see ``read_feature_file``), two files
            share a column name, or (unless ``skip_invalid``) a signal is missing from
            a file; the message names the signals and the file. With ``skip_invalid``
            those signals are left out of the table and returned as problems.
    """
    if not paths:
        raise DataError("no feature files given")
    names: list[str] = []
    owner: dict[str, Path] = {}
    problems: list[Problem] = []
    tables: list[tuple[dict[str, dict[str, float]], list[str]]] = []
    for path in paths:
        file_names, rows = read_feature_file(path)
        for name in file_names:
            if name in owner:
                raise DataError(f"feature column {name!r} is in both {owner[name]} and {path}; "
                                "rename one of them")
            owner[name] = Path(path)
        names += file_names
        missing = [s for s in signals if s not in rows]
        if missing and not skip_invalid:
            raise DataError(f"feature file {path} has no line for {len(missing)} signal(s) of the "
                            f"split: {_listing(missing)} (pass --skip-invalid to leave them out)")
        problems += [Problem(s, "no features in this file", str(path)) for s in missing]
        tables.append((rows, file_names))
    bad = {p.signal for p in problems}
    kept = [s for s in signals if s not in bad]
    for p in problems:
        logger.warning("skipping signal without features: %s", p)
    values = np.array([[rows[s][n] for rows, cols in tables for n in cols] for s in kept], dtype=float)
    table = FeatureTable(kept, names, values.reshape(len(kept), len(names)))
    counts = {n: c for n, c in missing_counts(table).items() if c}
    if counts:
        logger.info("features of %d signal(s): %d missing value(s): %s", len(kept), sum(counts.values()),
                    ", ".join(f"{n} {c}" for n, c in counts.items()))
    return table, problems


def check_same_features(fit: FeatureTable, other: FeatureTable) -> FeatureTable:
    """``other`` with its columns in the order of ``fit``'s.

    Raises:
        DataError: listing both sets of names, when the two tables do not hold the
            same feature columns.
    """
    if set(fit.names) != set(other.names):
        only_fit = [n for n in fit.names if n not in other.names]
        only_other = [n for n in other.names if n not in fit.names]
        raise DataError(
            "the features of the fitted split and the predicted split differ: "
            f"fit has {fit.names}, predicted has {other.names} "
            f"(only in fit: {only_fit}; only in predicted: {only_other})")
    order = [other.names.index(n) for n in fit.names]
    return FeatureTable(list(other.signals), list(fit.names), other.values[:, order])


def write_features_jsonl(path: Path, rows: list[dict]) -> None:
    """Write per-signal feature rows as JSONL (``signal`` first), atomically.

    A missing value (``None`` or NaN) is written as ``null``.

    Raises:
        ValueError: naming the row, for a row without a string ``signal``, a repeated
            signal, or an infinite number.
    """
    seen: set[str] = set()
    lines = []
    for index, row in enumerate(rows):
        signal = row.get("signal")
        if not isinstance(signal, str) or not signal:
            raise ValueError(f"feature row #{index} needs a string 'signal', got {row}")
        if signal in seen:
            raise ValueError(f"signal {signal} appears twice in the feature rows")
        seen.add(signal)
        bad = [k for k, v in row.items() if _is_number(v) and math.isinf(v)]
        if bad:
            raise ValueError(f"signal {signal}: features {bad} are not finite")
        ordered = {"signal": signal, **{k: None if _is_number(v) and math.isnan(v) else v
                                        for k, v in row.items() if k != "signal"}}
        lines.append(json.dumps(ordered, allow_nan=False) + "\n")
    write_text_atomic(Path(path), "".join(lines))
