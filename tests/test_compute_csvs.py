"""compute_csvs.py: CSV shapes, the CLIP1 metrics, and bad files reported while others run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import kendalltau, pearsonr

import compute_csvs
from code.evaluation.metrics import clip_metrics, compare, read_submission


@pytest.fixture
def truth_file(tmp_path):
    records = [{"signal": f"s{i}", "prompt": "a b c", "hearing_loss": ["No Loss", "Mild", "Moderate"][i % 3],
                "correctness": c} for i, c in enumerate([0.0, 0.25, 0.5, 0.75, 1.0, 0.6])]
    path = tmp_path / "train_metadata.json"
    path.write_text(json.dumps(records))
    return path


def test_metrics_match_hand_computation():
    p = np.array([10.0, 40.0, 55.0, 80.0])
    y = np.array([0.0, 50.0, 50.0, 100.0])
    m = clip_metrics(p, y)
    assert m["RMSE"] == pytest.approx(math.sqrt((100 + 100 + 25 + 400) / 4))
    assert m["Std"] == pytest.approx(np.std(p - y) / 2)
    assert m["NCC"] == pytest.approx(pearsonr(p, y)[0])
    assert m["KT"] == pytest.approx(kendalltau(p, y)[0])


@pytest.mark.parametrize("header", ["signal_ID,intelligibility_score\n", "signal_id,score\n", ""])
def test_header_variants(tmp_path, header):
    path = tmp_path / "sub.csv"
    path.write_text(header + "s1,10.5\ns2,90\n")
    assert read_submission(path) == {"s1": 10.5, "s2": 90.0}


@pytest.mark.parametrize("body,reason", [
    ("s1,10\ns1,20\n", "duplicate signal ID s1"),
    ("s1,abc\n", "not a number"),
    ("s1,nan\n", "not finite"),
    ("s1,120\n", "outside 0..100"),
    ("", "no rows"),
])
def test_bad_submissions_named(tmp_path, body, reason):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    result = compare(path, {"s1": (10.0, "Mild")})
    assert reason in result.error


def test_table_json_and_plot(tmp_path, truth_file, capsys):
    good = tmp_path / "good.csv"
    good.write_text("signal_ID,intelligibility_score\n" + "".join(
        f"s{i},{v}\n" for i, v in enumerate([5, 20, 50, 70, 95, 60])))
    worse = tmp_path / "worse.csv"
    worse.write_text("".join(f"s{i},50\n" for i in range(6)) + "unknown,10\n")
    nomatch = tmp_path / "nomatch.csv"
    nomatch.write_text("x1,10\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("s1,101\n")
    out = tmp_path / "scores.json"
    code = compute_csvs.main([str(tmp_path), "--ground-truth", str(truth_file), "--json", str(out), "--plot"])
    assert code == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].startswith(str(good)) and table[2].startswith(str(worse))  # best RMSE first
    assert "SKIPPED" in "\n".join(table) and "nomatch.csv" in "\n".join(table)
    figures = json.loads(out.read_text())
    assert figures[str(good)]["n"] == 6 and figures[str(worse)]["n"] == 6
    assert set(figures[str(good)]["per_hearing_loss"]) == {"No Loss", "Mild", "Moderate"}
    assert "error" in figures[str(bad)]
    assert good.with_suffix(".png").stat().st_size > 1000


def test_ids_absent_from_truth_are_counted(tmp_path, truth_file):
    path = tmp_path / "partial.csv"
    path.write_text("s0,10\ns1,20\nnot_in_truth,30\n")
    result = compare(path, compute_csvs.load_truth(truth_file))
    assert result.n == 2 and result.unmatched == 1
