"""The hearing-aid report's figures: bars per model and hearing loss, and the trade-off.

- ``bars_figure``: mean predicted intelligibility (0..100) per model and category
  with 95% intervals, each model's change against the baseline written over its bar;
  with quality, a second panel of mean HAAQI (0..1) drawn the same way.
- ``tradeoff_figure``: for every model but the baseline, its intelligibility change
  (x) against its HAAQI change (y), both with their 95% intervals over prompts, one
  point per category: up and to the right is better on both; a point to the right
  but below zero bought words with music quality.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from code.io_utils import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


HEADROOM = 1.75  # the value axis runs to this times its scale: the change numbers stand over the bars
CATEGORY_STYLE = {"No Loss": ("#1b9e77", "o"), "Mild": ("#d95f02", "s"), "Moderate": ("#7570b3", "^"),
                  "All": ("black", "D")}  # colour and marker of each hearing-loss category


def _bars(ax, rows: list[dict], mean: str, high: str, change: str, digits: int, scale: float) -> None:
    models = list(dict.fromkeys(r["model"] for r in rows))
    categories = list(dict.fromkeys(r["hearing_loss"] for r in rows))
    width = 0.8 / len(models)
    for i, model in enumerate(models):
        mine = {r["hearing_loss"]: r for r in rows if r["model"] == model}
        xs = np.arange(len(categories)) + (i - (len(models) - 1) / 2) * width
        means = [mine[c][mean] for c in categories]
        errors = [np.nan_to_num(mine[c][high] - mine[c][mean]) for c in categories]
        bars = ax.bar(xs, np.nan_to_num(means), width, yerr=errors, capsize=3, label=model)
        for bar, c in zip(bars, categories):
            row = mine[c]
            if model != row["baseline"] and np.isfinite(row[change]):
                # the change against the baseline with its 95% interval, over the bar's interval
                top = np.nan_to_num(max(row[mean], row[high])) + 0.02 * scale
                ax.annotate(f"{row[change]:+.{digits}f} [{row[change + '_ci95_low']:+.{digits}f}, "
                            f"{row[change + '_ci95_high']:+.{digits}f}]",
                            (bar.get_x() + bar.get_width() / 2, top), ha="center", va="bottom",
                            rotation=90, fontsize=8, color="black")
    ax.set_xticks(np.arange(len(categories)), categories)
    ax.set_ylim(0, scale * HEADROOM)
    ax.set_yticks(np.linspace(0, scale, 6))


def bars_figure(rows: list[dict], png_path: Path, title: str) -> None:
    """The report's bar chart (see the module docstring), written atomically as PNG."""
    plt = _pyplot()
    quality = bool(rows) and "mean_haaqi" in rows[0]
    categories = list(dict.fromkeys(r["hearing_loss"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    panels = 2 if quality else 1
    fig, axes = plt.subplots(1, panels, figsize=((2 + 1.6 * len(categories)) * panels, 5.5), squeeze=False)
    baseline = next((r["baseline"] for r in rows if r["baseline"]), "")
    note = (f"\nwhiskers: 95% CI of the mean; numbers over a bar: change vs {baseline} "
            "[95% CI, prompts resampled]" if baseline else "")
    ax = axes[0][0]
    _bars(ax, rows, "mean_intelligibility", "ci95_high", "change", 1, 100.0)
    ax.set(ylabel="predicted intelligibility (0..100)", title=title + note)
    ax.title.set_fontsize(9)
    if quality:
        ax = axes[0][1]
        _bars(ax, rows, "mean_haaqi", "haaqi_ci95_high", "haaqi_change", 3, 1.0)
        ax.set(ylabel="music quality, HAAQI (0..1)",
               title="HAAQI of the model output; reference: the unprocessed audio with NAL-R for\n"
                     "the listener's audiogram (HAAQI adds it), so NAL-R-like models gain by construction"
                     + note)
        ax.title.set_fontsize(9)
    axes[0][0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=len(models),
                      fontsize=9)  # below: never over a bar
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def tradeoff_figure(rows: list[dict], png_path: Path, title: str) -> None:
    """Intelligibility change against HAAQI change per model and category (see the
    module docstring), written atomically as PNG; nothing to draw without a baseline."""
    plt = _pyplot()
    points = [r for r in rows if r["baseline"] and r["model"] != r["baseline"]
              and np.isfinite(r["change"]) and np.isfinite(r.get("haaqi_change", np.nan))]
    fig, ax = plt.subplots(figsize=(8, 6.5))
    for r in points:  # colour and marker: the hearing-loss category; the model: written beside its point
        x, y = r["change"], r["haaqi_change"]
        xerr = [[x - r["change_ci95_low"]], [r["change_ci95_high"] - x]]
        yerr = [[y - r["haaqi_change_ci95_low"]], [r["haaqi_change_ci95_high"] - y]]
        colour, marker = CATEGORY_STYLE.get(r["hearing_loss"], ("grey", "x"))
        big = r["hearing_loss"] == "All"
        ax.errorbar(x, y, xerr=np.nan_to_num(xerr), yerr=np.nan_to_num(yerr), fmt=marker, color=colour,
                    markersize=10 if big else 7, capsize=3, alpha=1.0 if big else 0.8,
                    label=r["hearing_loss"])
        ax.annotate(r["model"], (x, y), xytext=(6, 6), textcoords="offset points", fontsize=9,
                    color=colour)
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8)
    baseline = next((r["baseline"] for r in rows if r["baseline"]), "the baseline")
    ax.set(xlabel=f"intelligibility change vs {baseline} (0..100 points)",
           ylabel=f"HAAQI change vs {baseline} (0..1)",
           title=f"{title}\nwords against music: each model's change with 95% CIs (prompts resampled)")
    ax.title.set_fontsize(10)
    if points:
        found, names = ax.get_legend_handles_labels()
        handles = dict(zip(names, found))  # one entry per category
        order = [c for c in CATEGORY_STYLE if c in handles] + [c for c in handles if c not in CATEGORY_STYLE]
        ax.legend([handles[c] for c in order], order, title="hearing loss", fontsize=10, title_fontsize=10,
                  loc="best")
    else:
        ax.text(0.5, 0.5, "no model with a change to draw", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
