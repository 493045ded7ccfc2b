"""One figure comparing submissions: predicted vs true per model, and RMSE by hearing loss."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from code.io_utils import atomic_path


def plot_comparison(rows: list[dict], out: Path) -> None:
    """Write a PNG: one scatter panel per row (a run and split, against its own labels,
    ``row["truth"]``), then a grouped bar chart of RMSE by hearing-loss category for all
    rows, its legend below the axes (never over the bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(rows)
    fig, axes = plt.subplots(1, n + 1, figsize=(3.6 * (n + 1), 3.8), squeeze=False)
    for ax, row in zip(axes[0], rows):
        truth = row["truth"]
        for category in sorted({truth[s].hearing_loss for s in row["predictions"] if s in truth}):
            shared = [s for s in row["predictions"] if s in truth and truth[s].hearing_loss == category]
            ax.scatter([truth[s].value_0_100 for s in shared], [row["predictions"][s] for s in shared],
                       s=10, alpha=0.6, label=category)
        ax.plot([0, 100], [0, 100], "k--", lw=1)
        ax.set(xlim=(-2, 102), ylim=(-2, 102), xlabel="true (correctness x 100)",
               ylabel="predicted (0..100)",
               title=f"{row['name']} ({row['split']})\nRMSE {row['RMSE']:.2f}, NCC {row['NCC']:.2f}, n={row['n']}")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    ax = axes[0][-1]
    categories = sorted({c for r in rows for c in r["per_hearing_loss"]})
    width = 0.8 / max(1, n)
    for i, row in enumerate(rows):
        xs = np.arange(len(categories)) + (i - (n - 1) / 2) * width
        values = [row["per_hearing_loss"].get(c, {}).get("RMSE", np.nan) for c in categories]
        ax.bar(xs, values, width, label=f"{row['name']} ({row['split']})")
    ax.set_xticks(np.arange(len(categories)), categories)
    ax.set(ylabel="RMSE (lower is better)", title="RMSE by hearing loss")
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=1)
    fig.tight_layout()
    with atomic_path(Path(out)) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
