"""compute_csvs.py: CSV shapes, the CLIP1 metrics, and bad files reported while others run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import kendalltau, pearsonr

import compute_csvs

from code.evaluation.comparison.metrics import SubmissionError, clip_metrics, read_submission


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
    with pytest.raises(SubmissionError, match=reason):
        read_submission(path)


def _write(path, rows, header=True):
    path.write_text(("signal_ID,intelligibility_score\n" if header else "")
                    + "".join(f"{s},{v}\n" for s, v in rows))
    return path


@pytest.fixture
def data_root(tmp_path):
    """A metadata-only data root: labelled train (12 records, 4 prompts), unlabelled eval."""
    meta = tmp_path / "root" / "cadenza_data" / "metadata"
    meta.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train = [{"signal": f"t{i}", "prompt": f"prompt {i % 4}", "hearing_loss": ["No Loss", "Mild", "Moderate"][i % 3],
              "correctness": float(rng.uniform())} for i in range(12)]
    evals = [{"signal": f"e{i}", "prompt": "a b", "hearing_loss": "Mild"} for i in range(3)]
    (meta / "train_metadata.json").write_text(json.dumps(train))
    (meta / "eval_metadata.json").write_text(json.dumps(evals))
    return tmp_path / "root", train


def test_one_row_per_model_with_paired_difference(tmp_path, data_root, capsys):
    root, train = data_root
    results = tmp_path / "results"
    results.mkdir()
    truth = {r["signal"]: 100 * r["correctness"] for r in train}
    good = [(s, min(100, max(0, v + 5))) for s, v in truth.items()]
    flat = [(s, 50) for s in truth]
    _write(results / "submission_NLR1_train.csv", good)
    _write(results / "evalai_NLR1_train.csv", good, header=False)  # the leaderboard copy
    _write(results / "submission_identity_train.csv", flat)
    _write(results / "evalai_identity_train.csv", flat, header=False)
    _write(results / "submission_NLR1_eval.csv", [("e0", 10), ("e1", 20), ("e2", 30)])
    (results / "hearing_aid_report_train_signals.csv").write_text(
        "model,hearing_loss,n,mean_intelligibility\nNLR1,Mild,4,50.0\n")
    out = tmp_path / "figures.json"
    plot = tmp_path / "cmp.png"
    code = compute_csvs.main([str(results), "--data-root", str(root), "--json", str(out),
                              "--plot", str(plot)])
    assert code == 0
    text = capsys.readouterr().out
    table = [line for line in text.split("paired with")[0].splitlines()
             if line.startswith(("NLR1 ", "identity "))]
    assert [line.split()[0] for line in table] == ["NLR1", "identity"]  # one row each, best first
    assert "report" not in text and "evalai" not in text
    assert "eval have none" in text  # unlabelled split: one short line
    figures = json.loads(out.read_text())
    assert [r["name"] for r in figures["rows"]] == ["NLR1", "identity"]
    (diff,) = figures["paired"]
    assert diff["baseline"] == "identity" and diff["n"] == 12
    rmse_nlr1 = figures["rows"][0]["RMSE"]
    rmse_identity = figures["rows"][1]["RMSE"]
    assert diff["dRMSE"] == pytest.approx(rmse_nlr1 - rmse_identity)
    low, high = diff["dRMSE_ci95"]
    assert low <= diff["dRMSE"] <= high and high < 0  # clearly better than a flat 50
    assert plot.stat().st_size > 1000


def test_nothing_comparable_exits_nonzero_and_says_what_to_run(tmp_path, data_root, caplog):
    root, _ = data_root
    _write(tmp_path / "submission_NLR1_eval.csv", [("e0", 10), ("e1", 20), ("e2", 30)])
    assert compute_csvs.main([str(tmp_path), "--data-root", str(root)]) == 1
    assert "python main.py --split train" in caplog.text


def test_zero_to_one_scale_is_warned_and_coverage_counted(tmp_path, data_root, caplog, capsys):
    root, train = data_root
    _write(tmp_path / "submission_m_train.csv", [(r["signal"], 0.5) for r in train[:10]])
    assert compute_csvs.main([str(tmp_path), "--data-root", str(root), "--baseline", ""]) == 0
    assert "0..1 scale" in caplog.text
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("m ")][0]
    assert row.split()[7:9] == ["10", "2"]  # n=10 compared, 2 labelled signals lacking


def test_ground_truth_file_overrides(tmp_path, truth_file, capsys):
    _write(tmp_path / "a.csv", [(f"s{i}", v) for i, v in enumerate([5, 20, 50, 70, 95, 60])])
    (tmp_path / "bad.csv").write_text("s1,101\n")
    assert compute_csvs.main([str(tmp_path), "--ground-truth", str(truth_file)]) == 0
    out = capsys.readouterr().out
    assert "a.csv" in out and "bad.csv: not comparable" in out and "outside 0..100" in out


def test_ids_absent_from_truth_are_counted(tmp_path, truth_file):
    from code.evaluation.comparison.compare import load_labels, overall_metrics

    labels, _ = load_labels({"train": truth_file})
    figures = overall_metrics({"s0": 10.0, "s1": 20.0, "not_in_truth": 30.0}, labels["train"])
    assert (figures["n"], figures["absent_from_truth"], figures["truth_not_predicted"]) == (2, 1, 4)


def test_upload_copies_are_never_listed_as_models(tmp_path):
    """Organisers' files and leaderboard or evalai copies in a folder are copies of some run
    (even a stale one from another run): never a model. Named as a file, one is compared."""
    from code.evaluation.comparison.compare import find_submissions

    rows = [("s0", 10), ("s1", 20)]
    _write(tmp_path / "submission_NLR1_valid.csv", rows)
    _write(tmp_path / "ICASSP2026_valid_T001.csv", rows, header=False)  # the official-name copy
    stale = _write(tmp_path / "ICASSP2027_valid_T001.csv", [("s0", 10), ("s1", 21)], header=False)
    _write(tmp_path / "ICASSP2027_valid_T001_leaderboard.csv", [("s0", 1), ("s1", 2)], header=False)
    _write(tmp_path / "evalai_old_valid.csv", [("s0", 3), ("s1", 2)], header=False)
    assert [s.name for s in find_submissions([tmp_path])] == ["NLR1"]
    assert [s.name for s in find_submissions([tmp_path, stale])] == ["NLR1", "ICASSP2027_valid_T001.csv"]


def test_long_model_names_keep_the_table_aligned():
    rows = [{"model": name, "data_set": "demo", "split": "valid", "input": "unprocessed", "predictor": "logistic",
             "fit": "train", "other": other, "n": 24, "truth_not_predicted": 0, "RMSE": rmse, "Std": 6.3,
             "NCC": 0.65, "KT": 0.5, "per_hearing_loss": {}}
            for name, other, rmse in (("NLR1", [], 30.0), ("LyricAidLevelOnly", ["asr=whisper-base-859a8a"], 31.0))]
    from code.evaluation.comparison.text import format_table

    header, *lines = format_table(rows).splitlines()
    lines = lines[:2]  # the rows; notes follow them
    assert {line.index(" demo ") + 1 for line in lines} == {header.index(" data ") + 1}
    rmse_end = header.index(" RMSE ") + len(" RMSE")  # right-aligned numbers end under the header's end
    assert {line[:rmse_end].split()[-1] for line in lines} == {"30.00", "31.00"}


def test_a_named_csv_that_is_not_a_submission_says_what_its_header_is(tmp_path, truth_file, caplog, capsys):
    path = tmp_path / "submission_X_valid.csv"
    path.write_text("model,hearing_loss,n\nNLR1,Mild,4\n")
    assert compute_csvs.main([str(path), "--ground-truth", str(truth_file)]) == 2
    text = caplog.text + capsys.readouterr().out
    assert f"{path}: not a submission CSV: its first row is 'model,hearing_loss,n'" in text
    assert "expected the header signal_ID,intelligibility_score" in text
    assert "no submission CSVs found" not in text


def test_one_row_says_why_its_correlations_are_nan(tmp_path, truth_file, capsys):
    _write(tmp_path / "one.csv", [("s1", 30)])
    assert compute_csvs.main([str(tmp_path / "one.csv"), "--ground-truth", str(truth_file)]) == 0
    out = capsys.readouterr().out
    assert "(NCC and KT of one.csv on given are nan: it covers one signal: correlations need two or more)" in out
