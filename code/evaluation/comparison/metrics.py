"""Compare predictions (0..100) with listener ground truth: the CLIP1 metrics.

Definitions follow the official CLIP1 evaluation (recipe ``evaluate.py``):
RMSE = sqrt(mean((p - y)^2)); Std = std(p - y) / sqrt(n); NCC = Pearson r;
KT = Kendall's tau (scipy's default, tau-b). ``y`` is ``correctness x 100``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau


def rmse(predicted_0_100: np.ndarray, true_0_100: np.ndarray) -> float:
    """Root mean squared error (both 0..100)."""
    diff = np.asarray(predicted_0_100, dtype=float) - np.asarray(true_0_100, dtype=float)
    return float(np.sqrt(np.mean(diff ** 2)))


def ncc(predicted_0_100: np.ndarray, true_0_100: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant or has fewer than 2 values."""
    p = np.asarray(predicted_0_100, dtype=float)
    y = np.asarray(true_0_100, dtype=float)
    if len(p) < 2 or np.all(p == p[0]) or np.all(y == y[0]):
        return math.nan
    return float(np.corrcoef(p, y)[0, 1])


def clip_metrics(predicted_0_100: np.ndarray, true_0_100: np.ndarray) -> dict[str, float]:
    """RMSE, Std, NCC and KT of predictions against truth (both 0..100)."""
    p = np.asarray(predicted_0_100, dtype=float)
    y = np.asarray(true_0_100, dtype=float)
    diff = p - y
    correlation = ncc(p, y)
    return {
        "RMSE": rmse(p, y),
        "Std": float(np.std(diff) / np.sqrt(len(diff))),
        "NCC": correlation,
        "KT": math.nan if math.isnan(correlation) else float(kendalltau(p, y)[0]),
    }


class SubmissionError(ValueError):
    """A submission CSV that cannot be compared, with the reason."""


def read_submission(path: Path) -> dict[str, float]:
    """Read ``signal,score`` rows; a header ``signal_ID,...`` / ``signal_id,...`` is optional.

    Raises:
        SubmissionError: for duplicate IDs, non-numeric, non-finite or out-of-range
            (0..100) scores, or no rows; the message names the rows.
    """
    with Path(path).open(newline="", encoding="utf-8") as f:
        rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    if rows and rows[0][0].strip().lower() == "signal_id":
        rows = rows[1:]
    if not rows:
        raise SubmissionError("no rows")
    scores: dict[str, float] = {}
    problems: list[str] = []
    for lineno, row in enumerate(rows, start=1):
        if len(row) < 2:
            problems.append(f"row {lineno}: expected signal,score, got {row}")
            continue
        signal, text = row[0].strip(), row[1].strip()
        try:
            value = float(text)
        except ValueError:
            problems.append(f"row {lineno} ({signal}): score {text!r} is not a number")
            continue
        if not math.isfinite(value):
            problems.append(f"row {lineno} ({signal}): score {text!r} is not finite")
        elif not 0.0 <= value <= 100.0:
            problems.append(f"row {lineno} ({signal}): score {value} is outside 0..100")
        if signal in scores:
            problems.append(f"row {lineno}: duplicate signal ID {signal}")
        scores[signal] = value
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        raise SubmissionError("; ".join(problems[:3]) + more)
    return scores
