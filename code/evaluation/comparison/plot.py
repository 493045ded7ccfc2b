"""One figure comparing submissions: per data set and split, one line per run, sorted.

Each data set and split gets its own pair of panels (never two data sets in one panel):
RMSE with its 95% interval (bootstrap over prompts) and the RMSE of each hearing-loss
category beside it, then NCC with its interval. The figure grows by a fixed height per run,
so 1 run and 30 runs read at the same type size; a run's label says what sets it apart.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from code.data.synthetic import SYNTHETIC_NOTE
from code.evaluation.comparison.compare import prompt_bootstrap
from code.evaluation.comparison.metrics import ncc, rmse
from code.evaluation.comparison.text import distinguishing
from code.io_utils import atomic_path

WIDTH_IN = 12.0  # figure width, inches (at DPI: 1200 px)
RUN_HEIGHT_IN = 0.42  # height of one run's line
GROUP_HEIGHT_IN = 1.4  # title, axis and ticks of one data set's panels
MIN_RUNS_HIGH = 3  # a panel is at least this many runs' lines high
TOP_IN, BOTTOM_IN = 0.55, 0.35  # the legend above, the key below
DPI = 100
BOOTSTRAP = 1000  # resamples of prompts per interval
LABEL_CHARS = 60  # a run's label wraps at this many characters
CATEGORY_STYLE = {"No Loss": ("#1b9e77", "o"), "Mild": ("#d95f02", "s"), "Moderate": ("#7570b3", "^")}


@dataclass(frozen=True)
class Panel:
    """What one pair of panels shows: a data set's split and its runs, top to bottom."""

    data_set: str
    split: str
    runs: list[str]


def _interval(row: dict, statistic) -> tuple[float, float]:
    shared = [s for s in row["predictions"] if s in row["truth"]]
    p = np.array([row["predictions"][s] for s in shared])
    y = np.array([row["truth"][s].value_0_100 for s in shared])
    if len(shared) < 3:
        return (np.nan, np.nan)
    return prompt_bootstrap([row["truth"][s].prompt for s in shared], lambda i: statistic(p[i], y[i]),
                            n_boot=BOOTSTRAP)


def _label(row: dict, differs: str) -> str:
    text = row["name"] if differs == "-" else f"{row['name']}: {differs.replace(',', ', ')}"
    lines = textwrap.wrap(text, LABEL_CHARS, break_on_hyphens=False)
    return "\n".join(lines[:2]) + ("…" if len(lines) > 2 else "")


def plot_comparison(rows: list[dict], out: Path) -> list[Panel]:
    """Write the PNG at ``out``; return what each pair of panels shows (top to bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple[str, str], list[dict]] = {}
    for r in sorted(rows, key=lambda r: (r.get("data_set", "?"), r["split"], r["RMSE"])):
        groups.setdefault((r.get("data_set", "?"), r["split"]), []).append(r)
    heights = [GROUP_HEIGHT_IN + RUN_HEIGHT_IN * max(len(g), MIN_RUNS_HIGH) for g in groups.values()]
    total = sum(heights) + TOP_IN + BOTTOM_IN
    fig, axes = plt.subplots(len(groups), 2, figsize=(WIDTH_IN, total), squeeze=False,
                             gridspec_kw={"height_ratios": heights, "width_ratios": [2, 1]})
    panels = []
    for (data_set, split), group, (ax_rmse, ax_ncc) in zip(groups, groups.values(), axes):
        ys = np.arange(len(group))[::-1]  # the best (lowest RMSE) at the top
        for y, r in zip(ys, group):
            low, high = _interval(r, rmse)
            ax_rmse.errorbar(r["RMSE"], y, xerr=[[r["RMSE"] - low], [high - r["RMSE"]]], fmt="D",
                             color="black", ms=6, capsize=3, zorder=3)
            for category, values in r["per_hearing_loss"].items():
                colour, marker = CATEGORY_STYLE.get(category, ("grey", "x"))
                ax_rmse.plot(values["RMSE"], y - 0.22, marker, color=colour, ms=6, alpha=0.9,
                             label=category)
            low, high = _interval(r, ncc)
            if np.isfinite(r["NCC"]):
                ax_ncc.errorbar(r["NCC"], y, xerr=[[r["NCC"] - low], [high - r["NCC"]]], fmt="D",
                                color="black", ms=6, capsize=3)
        names = [_label(r, differs) for r, differs in zip(group, distinguishing(group)[0])]
        synthetic = any(r.get("synthetic") for r in group)
        title = f"{data_set}, {split} split ({len(group)} run{'s' * (len(group) > 1)})"
        if synthetic:
            title += f" - {SYNTHETIC_NOTE}"
        ax_rmse.set_yticks(ys, names, fontsize=9)
        ax_rmse.set_title(title, fontsize=11, loc="left", color="darkred" if synthetic else "black")
        ax_rmse.set_xlabel("RMSE, points of 0..100 (lower is better)", fontsize=9)
        ax_ncc.set_yticks(ys, [""] * len(ys))
        ax_ncc.set_xlabel("NCC (higher is better)", fontsize=9)
        for ax in (ax_rmse, ax_ncc):
            pad = max(0, MIN_RUNS_HIGH - len(group)) / 2  # a few runs sit in the middle
            ax.set_ylim(-0.8 - pad, len(group) - 0.4 + pad)
            ax.grid(axis="x", alpha=0.3)
            ax.tick_params(axis="x", labelsize=9)
        panels.append(Panel(data_set, split, [r["name"] for r in group]))
    handles = {h.get_label(): h for ax in axes[:, 0] for h in ax.get_lines() if h.get_label() in CATEGORY_STYLE}
    if handles:
        fig.legend([handles[c] for c in CATEGORY_STYLE if c in handles],
                   [c for c in CATEGORY_STYLE if c in handles], loc="upper right", ncol=3, fontsize=9,
                   title="hearing loss", title_fontsize=9, frameon=False)
    fig.text(0.01, 0.005, "black: the run's RMSE or NCC with its 95% interval (bootstrap, prompts "
             "resampled); coloured: RMSE of each hearing-loss category", fontsize=9, va="bottom")
    fig.tight_layout(rect=(0, BOTTOM_IN / total, 1, 1 - TOP_IN / total))
    with atomic_path(Path(out)) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    plt.close(fig)
    return panels
