"""Hearing-aid comparison report: predicted intelligibility per model and hearing loss.

One row per (model, hearing-loss category) plus an "All" row per model, with
the mean predicted intelligibility (0..100), a 95% confidence interval of the
mean (normal approximation, mean +/- 1.96 standard errors) and the paired change
against a baseline model (default ``identity``, no hearing aid) on the same signals,
with a 95% bootstrap interval that resamples prompts (all records of a lyric line
together). The change's interval is the figure to read: both models share every
signal, so it is far narrower than the means' intervals.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from code.config import HEARING_LOSS_CATEGORIES
from code.evaluation.comparison.compare import prompt_bootstrap
from code.io_utils import atomic_path, write_text_atomic

COLUMNS = ("model", "hearing_loss", "n", "mean_intelligibility", "ci95_low", "ci95_high",
           "baseline", "change", "change_ci95_low", "change_ci95_high")


def report_rows(predictions: dict[str, dict[str, float]], records: list[dict], *,
                baseline: str = "identity", n_boot: int = 2000, seed: int = 0) -> list[dict]:
    """Rows of the report from ``{model: {signal: prediction 0..100}}``.

    ``change`` is the mean of ``model - baseline`` over a group's signals, with a 95%
    bootstrap interval over prompts (``code.evaluation.comparison.prompt_bootstrap``);
    NaN when ``baseline`` is not among the models, 0 for the baseline itself.
    """
    groups = [(c, [r for r in records if r["hearing_loss"] == c])
              for c in HEARING_LOSS_CATEGORIES] + [("All", list(records))]
    base = predictions.get(baseline)
    nan = float("nan")
    rows = []
    for model, by_signal in predictions.items():
        for category, members in groups:
            if not members:
                continue
            signals = [r["signal"] for r in members]
            values = np.array([by_signal[s] for s in signals])
            mean = float(values.mean())
            half = 1.96 * float(values.std(ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else nan
            change, low, high = nan, nan, nan
            if base is not None:
                diff = values - np.array([base[s] for s in signals])
                change = float(diff.mean())
                low, high = prompt_bootstrap([r["prompt"] for r in members],
                                             lambda i: float(diff[i].mean()), n_boot=n_boot, seed=seed)
            rows.append({"model": model, "hearing_loss": category, "n": len(values),
                         "mean_intelligibility": mean, "ci95_low": mean - half,
                         "ci95_high": mean + half, "baseline": baseline if base is not None else "",
                         "change": change, "change_ci95_low": low, "change_ci95_high": high})
    return rows


def change_text(row: dict) -> str:
    """``+2.0 [+0.4, +3.9]``: a row's change against the baseline and its 95% interval."""
    return f"{row['change']:+.1f} [{row['change_ci95_low']:+.1f}, {row['change_ci95_high']:+.1f}]"


def write_report(rows: list[dict], csv_path: Path, png_path: Path, title: str) -> None:
    """Write the report CSV and a grouped bar chart with 95% CI error bars (atomically)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text_atomic(csv_path, buffer.getvalue())

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    categories = list(dict.fromkeys(r["hearing_loss"] for r in rows))
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(categories), 4.5))
    for i, model in enumerate(models):
        mine = {r["hearing_loss"]: r for r in rows if r["model"] == model}
        xs = np.arange(len(categories)) + (i - (len(models) - 1) / 2) * width
        means = [mine[c]["mean_intelligibility"] for c in categories]
        errors = [np.nan_to_num(mine[c]["ci95_high"] - mine[c]["mean_intelligibility"]) for c in categories]
        bars = ax.bar(xs, means, width, yerr=errors, capsize=3, label=model)
        for bar, c in zip(bars, categories):
            row = mine[c]
            if model != row["baseline"] and np.isfinite(row["change"]):
                # the change against the baseline with its 95% interval, over the bar
                ax.annotate(f"{row['change']:+.1f}\n[{row['change_ci95_low']:+.1f},\n"
                            f"{row['change_ci95_high']:+.1f}]",
                            (bar.get_x() + bar.get_width() / 2, 3), ha="center", fontsize=6,
                            color="white")
    baseline = next((r["baseline"] for r in rows if r["baseline"]), "")
    ax.set_xticks(np.arange(len(categories)), categories)
    ax.set(ylim=(0, 100), ylabel="predicted intelligibility (0..100)",
           title=title + (f"\nbars: 95% CI of the mean; numbers: change vs {baseline} "
                          "[95% CI, prompts resampled]" if baseline else ""))
    ax.title.set_fontsize(8)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=len(models), fontsize=8)  # below: never over a bar
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
