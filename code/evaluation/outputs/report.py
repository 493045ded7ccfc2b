"""Hearing-aid comparison report: predicted intelligibility and music quality per model and hearing loss.

One row per (model, hearing-loss category) plus an "All" row per model, with
the mean predicted intelligibility (0..100), a 95% confidence interval of the
mean (normal approximation, mean +/- 1.96 standard errors) and the paired change
against a baseline model (default ``identity``, no hearing aid) on the same signals,
with a 95% bootstrap interval that resamples prompts (all records of a lyric line
together). The change's interval is the figure to read: both models share every
signal, so it is far narrower than the means' intervals.

With quality (``{model: {signal: HAAQI 0..1}}``, ``code.evaluation.quality.aid_quality``)
each row also has the mean HAAQI with its interval, its paired change against the
baseline (the same bootstrap), and the combined score of CAD2's recipe code,
``alpha * intelligibility + (1 - alpha) * HAAQI`` per signal, with intelligibility
as a fraction (the prediction / 100). Signals whose HAAQI is undefined (NaN: a
silent output) are left out of the quality and combined figures (``haaqi_n``).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from code.config import HEARING_LOSS_CATEGORIES
from code.evaluation.comparison.compare import prompt_bootstrap
from code.io_utils import write_text_atomic

COLUMNS = ("model", "hearing_loss", "n", "mean_intelligibility", "ci95_low", "ci95_high",
           "baseline", "change", "change_ci95_low", "change_ci95_high")
QUALITY_COLUMNS = ("haaqi_n", "mean_haaqi", "haaqi_ci95_low", "haaqi_ci95_high", "haaqi_change",
                   "haaqi_change_ci95_low", "haaqi_change_ci95_high", "alpha", "combined",
                   "combined_change", "combined_change_ci95_low", "combined_change_ci95_high")
NAN = float("nan")


def _mean_and_interval(values: np.ndarray) -> tuple[float, float, float]:
    if len(values) == 0:
        return NAN, NAN, NAN
    mean = float(values.mean())
    half = 1.96 * float(values.std(ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else NAN
    return mean, mean - half, mean + half


def _paired_change(values: np.ndarray, base: np.ndarray, prompts: list[str], n_boot: int,
                   seed: int) -> tuple[float, float, float]:
    """Mean of ``values - base`` and its 95% interval over prompts; NaN when empty."""
    if len(values) == 0:
        return NAN, NAN, NAN
    diff = values - base
    low, high = prompt_bootstrap(prompts, lambda i: float(diff[i].mean()), n_boot=n_boot, seed=seed)
    return float(diff.mean()), low, high


def combined_score(intelligibility_0_100: np.ndarray, haaqi_0_1: np.ndarray, alpha: float) -> np.ndarray:
    """CAD2's combined score per signal: ``alpha * intelligibility (0..1) + (1 - alpha) * HAAQI``."""
    return alpha * np.asarray(intelligibility_0_100) / 100 + (1 - alpha) * np.asarray(haaqi_0_1)


def _quality_part(signals: list[str], prompts: list[str], intelligibility: dict[str, float],
                  base_intelligibility: dict[str, float] | None, haaqi: dict[str, float],
                  base_haaqi: dict[str, float] | None, alpha: float, n_boot: int, seed: int) -> dict:
    """The quality columns of one row (see the module docstring)."""
    scored = [s for s in signals if not math.isnan(haaqi.get(s, NAN))]
    values = np.array([haaqi[s] for s in scored])
    combined = combined_score([intelligibility[s] for s in scored], values, alpha)
    mean, low, high = _mean_and_interval(values)
    part = {"haaqi_n": len(scored), "mean_haaqi": mean, "haaqi_ci95_low": low, "haaqi_ci95_high": high,
            "alpha": alpha, "combined": float(combined.mean()) if len(combined) else NAN}
    change = combined_change = (NAN, NAN, NAN)
    if base_haaqi is not None and base_intelligibility is not None:
        prompt_of = dict(zip(signals, prompts))
        both = [s for s in scored if not math.isnan(base_haaqi.get(s, NAN))]
        here = np.array([haaqi[s] for s in both])
        there = np.array([base_haaqi[s] for s in both])
        prompts_both = [prompt_of[s] for s in both]
        change = _paired_change(here, there, prompts_both, n_boot, seed)
        combined_change = _paired_change(
            combined_score([intelligibility[s] for s in both], here, alpha),
            combined_score([base_intelligibility[s] for s in both], there, alpha),
            prompts_both, n_boot, seed)
    part.update(zip(("haaqi_change", "haaqi_change_ci95_low", "haaqi_change_ci95_high"), change))
    part.update(zip(("combined_change", "combined_change_ci95_low", "combined_change_ci95_high"),
                    combined_change))
    return part


def report_rows(predictions: dict[str, dict[str, float]], records: list[dict], *,
                baseline: str = "identity", quality: dict[str, dict[str, float]] | None = None,
                alpha: float = 0.5, n_boot: int = 2000, seed: int = 0) -> list[dict]:
    """Rows of the report from ``{model: {signal: prediction 0..100}}`` and, optionally,
    ``quality`` ``{model: {signal: HAAQI 0..1}}`` (every model of ``predictions``).

    ``change`` is the mean of ``model - baseline`` over a group's signals, with a 95%
    bootstrap interval over prompts (``code.evaluation.comparison.prompt_bootstrap``);
    NaN when ``baseline`` is not among the models, 0 for the baseline itself. The
    quality columns (``QUALITY_COLUMNS``) are there only with ``quality``.
    """
    groups = [(c, [r for r in records if r["hearing_loss"] == c])
              for c in HEARING_LOSS_CATEGORIES] + [("All", list(records))]
    base = predictions.get(baseline)
    rows = []
    for model, by_signal in predictions.items():
        for category, members in groups:
            if not members:
                continue
            signals = [r["signal"] for r in members]
            prompts = [r["prompt"] for r in members]
            values = np.array([by_signal[s] for s in signals])
            mean, low95, high95 = _mean_and_interval(values)
            change = (NAN, NAN, NAN)
            if base is not None:
                change = _paired_change(values, np.array([base[s] for s in signals]), prompts,
                                        n_boot, seed)
            row = {"model": model, "hearing_loss": category, "n": len(values),
                   "mean_intelligibility": mean, "ci95_low": low95, "ci95_high": high95,
                   "baseline": baseline if base is not None else "",
                   **dict(zip(("change", "change_ci95_low", "change_ci95_high"), change))}
            if quality is not None:
                row.update(_quality_part(signals, prompts, by_signal, base, quality[model],
                                         quality.get(baseline) if base is not None else None,
                                         alpha, n_boot, seed))
            rows.append(row)
    return rows


def change_text(row: dict, key: str = "change", digits: int = 1) -> str:
    """``+2.0 [+0.4, +3.9]``: a row's change (``key``: ``change``, ``haaqi_change`` or
    ``combined_change``) against the baseline and its 95% interval."""
    return (f"{row[key]:+.{digits}f} [{row[key + '_ci95_low']:+.{digits}f}, "
            f"{row[key + '_ci95_high']:+.{digits}f}]")


def report_csv(rows: list[dict]) -> str:
    """The report's rows as CSV text (floats to 3 decimals; the quality columns to 4)."""
    columns = COLUMNS + (QUALITY_COLUMNS if rows and "mean_haaqi" in rows[0] else ())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) and k not in COLUMNS
                             else f"{v:.3f}" if isinstance(v, float) else v)
                         for k, v in row.items()})
    return buffer.getvalue()


def write_report(rows: list[dict], csv_path: Path, png_path: Path, title: str,
                 tradeoff_path: Path | None = None) -> None:
    """Write the report CSV, its bar chart (with a HAAQI panel when the rows have quality)
    and, with quality and ``tradeoff_path``, the trade-off figure (all atomically)."""
    from code.evaluation.outputs.report_figure import bars_figure, tradeoff_figure

    write_text_atomic(csv_path, report_csv(rows))
    bars_figure(rows, png_path, title)
    if tradeoff_path is not None and rows and "mean_haaqi" in rows[0]:
        tradeoff_figure(rows, tradeoff_path, title)
