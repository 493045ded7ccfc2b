"""Compare predictions (0..100) with listener ground truth: the CLIP1 metrics.

Definitions follow the official CLIP1 evaluation (recipe ``evaluate.py``):
RMSE = sqrt(mean((p - y)^2)); Std = std(p - y) / sqrt(n); NCC = Pearson r;
KT = Kendall's tau (scipy's default, tau-b). ``y`` is ``correctness x 100``.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, pearsonr


@dataclass
class Comparison:
    """One submission compared with the ground truth."""

    path: str
    n: int = 0
    unmatched: int = 0  # signal IDs of the CSV absent from the ground truth
    RMSE: float = math.nan
    Std: float = math.nan
    NCC: float = math.nan
    KT: float = math.nan
    per_hearing_loss: dict = field(default_factory=dict)  # category -> {"n", "RMSE"}
    error: str | None = None

    def to_dict(self) -> dict:
        if self.error:
            return {"error": self.error}
        return {"n": self.n, "unmatched": self.unmatched, "RMSE": self.RMSE, "Std": self.Std, "NCC": self.NCC,
                "KT": self.KT, "per_hearing_loss": self.per_hearing_loss}


def clip_metrics(predicted_0_100: np.ndarray, true_0_100: np.ndarray) -> dict[str, float]:
    """RMSE, Std, NCC and KT of predictions against truth (both 0..100)."""
    p = np.asarray(predicted_0_100, dtype=float)
    y = np.asarray(true_0_100, dtype=float)
    diff = p - y
    constant = np.all(p == p[0]) or np.all(y == y[0])
    return {
        "RMSE": float(np.sqrt(np.mean(diff ** 2))),
        "Std": float(np.std(diff) / np.sqrt(len(diff))),
        "NCC": math.nan if constant or len(p) < 2 else float(pearsonr(p, y)[0]),
        "KT": math.nan if constant or len(p) < 2 else float(kendalltau(p, y)[0]),
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


def compare(path: Path, truth: dict[str, tuple[float, str]]) -> Comparison:
    """Compare one submission with ``truth`` ({signal: (correctness x 100, hearing_loss)})."""
    result = Comparison(str(path))
    try:
        predicted = read_submission(path)
    except (SubmissionError, OSError, UnicodeDecodeError) as e:
        result.error = str(e)
        return result
    shared = [s for s in predicted if s in truth]
    if not shared:
        result.error = f"none of its {len(predicted)} signal IDs are in the ground truth"
        return result
    p = np.array([predicted[s] for s in shared])
    y = np.array([truth[s][0] for s in shared])
    result.n = len(shared)
    result.unmatched = len(predicted) - len(shared)
    for key, value in clip_metrics(p, y).items():
        setattr(result, key, value)
    categories = np.array([truth[s][1] for s in shared])
    for category in sorted(set(categories)):
        mask = categories == category
        result.per_hearing_loss[category] = {
            "n": int(mask.sum()), "RMSE": float(np.sqrt(np.mean((p[mask] - y[mask]) ** 2)))}
    return result
