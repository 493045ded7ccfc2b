"""compute_csvs.py --plot: a figure that reads at its shipped size from 1 to 30 runs, one
pair of panels per data set and split."""

from __future__ import annotations

import numpy as np
from PIL import Image

from code.evaluation.comparison.compare import Truth, metrics_by_category, overall_metrics
from code.evaluation.comparison.plot import DPI, RUN_HEIGHT_IN, WIDTH_IN, plot_comparison

CATEGORIES = ("No Loss", "Mild", "Moderate")


def _rows(data_set: str, n_runs: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    truth = {f"{data_set}-{i}": Truth(float(rng.uniform(0, 100)), CATEGORIES[i % 3], f"line {i // 3}")
             for i in range(60)}
    rows = []
    for k in range(n_runs):
        predictions = {s: float(np.clip(t.value_0_100 + rng.normal(0, 10 + 3 * k), 0, 100)) for s, t in truth.items()}
        rows.append({"name": f"{data_set}-run{k:02d}-with-a-long-distinguishing-name", "model": "NLR1",
                     "data_set": data_set, "split": "valid", "predictions": predictions, "truth": truth,
                     "synthetic": data_set == "demo", **overall_metrics(predictions, truth),
                     "per_hearing_loss": metrics_by_category(predictions, truth)})
    return rows


def test_thirteen_runs_of_two_data_sets_read_at_their_size(tmp_path):
    rows = _rows("clip1", 10, 0) + _rows("demo", 3, 1)
    panels = plot_comparison(rows, tmp_path / "thirteen.png")
    width, height = Image.open(tmp_path / "thirteen.png").size
    assert width == WIDTH_IN * DPI  # no strip that grows sideways with the runs
    assert height >= 13 * RUN_HEIGHT_IN * DPI  # each run keeps its line height
    assert height <= 13 * RUN_HEIGHT_IN * DPI + 5 * DPI
    # no two data sets share a panel; every run is in its own data set's panel, once
    assert [(p.data_set, len(p.runs)) for p in panels] == [("clip1", 10), ("demo", 3)]
    by_name = {r["name"]: r["data_set"] for r in rows}
    assert all(by_name[run] == p.data_set for p in panels for run in p.runs)
    assert sorted(run for p in panels for run in p.runs) == sorted(by_name)
    # sorted best first within a panel
    rmse = {r["name"]: r["RMSE"] for r in rows}
    assert all([rmse[n] for n in p.runs] == sorted(rmse[n] for n in p.runs) for p in panels)


def test_one_run_is_a_small_figure_of_the_same_width(tmp_path):
    plot_comparison(_rows("demo", 1, 2), tmp_path / "one.png")
    width, height = Image.open(tmp_path / "one.png").size
    assert width == WIDTH_IN * DPI and height < 4 * DPI
