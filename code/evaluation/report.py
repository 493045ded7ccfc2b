"""Hearing-aid comparison report: predicted intelligibility per model and hearing loss.

One row per (model, hearing-loss category) plus an "All" row per model, with
the mean predicted intelligibility (0..100), a 95% confidence interval of the
mean (normal approximation, mean +/- 1.96 standard errors) and the change
against the ``identity`` model (no hearing aid) on the same signals.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from code.config import HEARING_LOSS_CATEGORIES
from code.io_utils import atomic_path, write_text_atomic

COLUMNS = ("model", "hearing_loss", "n", "mean_intelligibility", "ci95_low", "ci95_high",
           "change_vs_identity")


def report_rows(predictions: dict[str, dict[str, float]], records: list[dict]) -> list[dict]:
    """Rows of the report from ``{model: {signal: prediction 0..100}}``."""
    groups = [(c, [r["signal"] for r in records if r["hearing_loss"] == c])
              for c in HEARING_LOSS_CATEGORIES] + [("All", [r["signal"] for r in records])]
    rows = []
    for model, by_signal in predictions.items():
        for category, signals in groups:
            if not signals:
                continue
            values = np.array([by_signal[s] for s in signals])
            mean = float(values.mean())
            half = 1.96 * float(values.std(ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
            change = (float(np.mean(values - np.array([predictions["identity"][s] for s in signals])))
                      if "identity" in predictions else float("nan"))
            rows.append({"model": model, "hearing_loss": category, "n": len(values),
                         "mean_intelligibility": mean, "ci95_low": mean - half,
                         "ci95_high": mean + half, "change_vs_identity": change})
    return rows


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
            change = mine[c]["change_vs_identity"]
            if model != "identity" and np.isfinite(change):
                ax.annotate(f"{change:+.1f}", (bar.get_x() + bar.get_width() / 2, 2),
                            ha="center", fontsize=8, color="white")
    ax.set_xticks(np.arange(len(categories)), categories)
    ax.set(ylim=(0, 100), ylabel="predicted intelligibility (0..100)", title=title)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
