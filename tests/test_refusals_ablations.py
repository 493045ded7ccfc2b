"""benchmarks/ablations.py under bad input: a clear message naming the file, split or option
(exit status 2), never a traceback, and never exit 0 for a table of skipped rows or of NaN
intervals. Demo labels are SYNTHETIC: these cases test mechanics only."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.ablations import main
from tests.conftest import demo_records, make_clip_root


def _scores(path, records, seed=0):
    rng = np.random.default_rng(seed)
    rows = [{"signal": r["signal"], "asr.m.better_ear": float(rng.uniform()), "stoi.left": float(rng.uniform())}
            for r in records]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _root(tmp_path, records=None):
    root = make_clip_root(tmp_path / "data", "train", records or demo_records("train"))
    valid = root / "cadenza_data" / "metadata" / "valid_metadata.json"
    valid.write_text(json.dumps(demo_records("valid")))
    return root


def _no_labels(tmp_path):
    records = [{k: v for k, v in r.items() if k != "correctness"} for r in demo_records("train")]
    return ["--data-root", _root(tmp_path, records), "--train-scores", _scores(tmp_path / "t.jsonl", records)]


def _missing_root(tmp_path):
    return ["--data-root", tmp_path / "nowhere", "--train-scores", _scores(tmp_path / "t.jsonl", demo_records("train"))]


def _missing_file(tmp_path):
    return ["--data-root", _root(tmp_path), "--train-scores", tmp_path / "absent.jsonl"]


def _empty_file(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    return ["--data-root", _root(tmp_path), "--train-scores", tmp_path / "empty.jsonl"]


def _bad_file(tmp_path):
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    return ["--data-root", _root(tmp_path), "--train-scores", tmp_path / "bad.jsonl"]


def _bad_fit_split(tmp_path):
    return ["--data-root", _root(tmp_path), "--fit-split", "tran",
            "--train-scores", _scores(tmp_path / "t.jsonl", demo_records("train"))]


def _other_split(tmp_path):
    return ["--data-root", _root(tmp_path), "--train-scores", _scores(tmp_path / "v.jsonl", demo_records("valid"))]


def _other_split_measured(tmp_path):
    return ["--data-root", _root(tmp_path), "--train-scores", _scores(tmp_path / "t.jsonl", demo_records("train")),
            "--split", "valid", "--scores", _scores(tmp_path / "x.jsonl", demo_records("train"))]


def _good(tmp_path):
    return ["--data-root", _root(tmp_path), "--train-scores", _scores(tmp_path / "t.jsonl", demo_records("train")),
            "--predictor-options", json.dumps({"max_iter": 10})]


def _all_skipped(tmp_path):
    return [*_good(tmp_path)[:4], "--predictor", "logistic", "--feature", "no.such.column"]


# (id, arguments made in tmp_path, what the message says)
CASES = [
    ("no labels", _no_labels, "missing 'correctness'"),
    ("missing data root", _missing_root, "metadata file not found"),
    ("missing feature file", _missing_file, "feature file not found"),
    ("empty feature file", _empty_file, "holds no records"),
    ("feature file not JSON", _bad_file, "bad.jsonl"),
    ("unknown fit split", _bad_fit_split, "invalid choice: 'tran'"),
    ("scores of another split", _other_split, "has no line for"),
    ("measured split's scores of another split", _other_split_measured, "has no line for"),
    ("no bootstrap resamples", lambda p: [*_good(p), "--n-boot", "0"], "--n-boot must be at least"),
    ("one fold", lambda p: [*_good(p), "--folds", "1"], "--folds must be at least 2"),
    ("predictor options not JSON", lambda p: [*_good(p)[:4], "--predictor-options", "{x"],
     "--predictor-options: not a JSON object"),
    ("every row skipped", _all_skipped, "every row was skipped"),
]


@pytest.mark.parametrize("case,make,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_to_the_ablations_is_refused_without_traceback(tmp_path, capsys, case, make, expected):
    argv = [str(a) for a in make(tmp_path)]
    try:
        code = main([*argv, "--n-boot", "5"] if "--n-boot" not in argv else argv)
    except SystemExit as e:  # argparse's refusal
        code = e.code
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == 2, text[-2000:]
    assert expected in captured.err, text[-2000:]
    assert "Traceback" not in text


def test_a_good_command_still_prints_its_table(tmp_path, capsys):
    assert main([str(a) for a in _good(tmp_path)] + ["--n-boot", "5"]) == 0
    out = capsys.readouterr().out
    assert "| none |" in out and "nan" not in out.lower()
