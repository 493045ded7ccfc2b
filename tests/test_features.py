"""Feature files: reading, joining on signal, checking, writing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from code.errors import DataError
from code.evaluation.table import (FeatureTable, check_same_features, read_feature_file,
                                      read_feature_files, write_features_jsonl)


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_official_shape_one_column_in_the_order_of_the_split(tmp_path):
    f = _write(tmp_path / "w.jsonl", [{"signal": s, "whisper.mixture": v}
                                      for s, v in [("a", 0.1), ("b", 0.2), ("c", 0.3), ("extra", 0.9)]])
    table, problems = read_feature_files([f], ["c", "a", "b"])
    assert problems == [] and table.signals == ["c", "a", "b"] and table.names == ["whisper.mixture"]
    assert table.column("whisper.mixture").tolist() == [0.3, 0.1, 0.2]


def test_files_are_joined_on_signal(tmp_path):
    w = _write(tmp_path / "w.jsonl", [{"signal": "a", "whisper.mixture": 0.5}, {"signal": "b", "whisper.mixture": 0.7}])
    s = _write(tmp_path / "s.jsonl", [{"signal": "b", "stoi": 0.2}, {"signal": "a", "stoi": 0.4}])
    table, _ = read_feature_files([w, s], ["a", "b"])
    assert table.names == ["whisper.mixture", "stoi"]
    assert table.values.tolist() == [[0.5, 0.4], [0.7, 0.2]]


def test_cache_lines_keep_numeric_columns_only(tmp_path):
    rows = [{"signal": "a", "split": "train", "asr": "abc", "transcripts": ["x", "y"],
             "ear_correctness": [0.5, 0.25], "score": 0.5, "flag": True},
            {"signal": "b", "split": "train", "asr": "abc", "transcripts": ["", ""],
             "ear_correctness": [0.0, 0.0], "score": 0.0, "flag": False}]
    names, values = read_feature_file(_write(tmp_path / "cache.jsonl", rows))
    assert names == ["score"] and values == {"a": {"score": 0.5}, "b": {"score": 0.0}}


def test_last_line_of_a_repeated_signal_wins(tmp_path):
    f = _write(tmp_path / "c.jsonl", [{"signal": "a", "score": 0.1}, {"signal": "a", "score": 0.9}])
    assert read_feature_file(f)[1] == {"a": {"score": 0.9}}


def test_missing_signal_is_named_with_the_file(tmp_path):
    w = _write(tmp_path / "w.jsonl", [{"signal": "a", "x": 0.5}])
    s = _write(tmp_path / "s.jsonl", [{"signal": "a", "y": 0.5}, {"signal": "b", "y": 0.1}])
    with pytest.raises(DataError, match=r"w\.jsonl.*1 signal.*: b"):
        read_feature_files([s, w], ["a", "b"])
    table, problems = read_feature_files([s, w], ["a", "b"], skip_invalid=True)
    assert table.signals == ["a"] and table.values.tolist() == [[0.5, 0.5]]
    assert [(p.signal, p.path) for p in problems] == [("b", str(w))]


@pytest.mark.parametrize("rows, message", [
    ([{"signal": "a", "x": 1.0, "y": 2.0}, {"signal": "b", "x": 1.0}], r"signal b .*\['y'\]"),
    ([{"signal": "a", "x": 1.0}, {"signal": "b", "x": "n/a"}], r"signal b .*\['x'\]"),
    ([{"signal": "a", "x": float("inf")}], r"signal a: x is inf"),
    ([{"signal": "a", "x": None}], "null on every line"),
    ([{"signal": "a", "text": "hello"}], "no numeric column"),
    ([{"x": 1.0}], "record 1: needs a string 'signal'"),
    ([], "holds no records"),
])
def test_bad_files_are_refused_with_the_file_named(tmp_path, rows, message):
    f = _write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=message) as e:
        read_feature_files([f], ["a"])
    assert "bad.jsonl" in str(e.value)


def test_a_column_in_two_files_is_refused(tmp_path):
    a = _write(tmp_path / "a.jsonl", [{"signal": "s", "score": 0.1}])
    b = _write(tmp_path / "b.jsonl", [{"signal": "s", "score": 0.2}])
    with pytest.raises(DataError, match="'score' is in both"):
        read_feature_files([a, b], ["s"])


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="feature file not found: .*nope.jsonl"):
        read_feature_files([tmp_path / "nope.jsonl"], ["a"])


def test_check_same_features_reorders_or_lists_both():
    fit = FeatureTable(["a"], ["x", "y"], np.array([[1.0, 2.0]]))
    other = FeatureTable(["b", "c"], ["y", "x"], np.array([[20.0, 10.0], [40.0, 30.0]]))
    same = check_same_features(fit, other)
    assert same.names == ["x", "y"] and same.values.tolist() == [[10.0, 20.0], [30.0, 40.0]]
    with pytest.raises(DataError, match=r"fit has \['x', 'y'\], predicted has \['x', 'z'\]"):
        check_same_features(fit, FeatureTable(["b"], ["x", "z"], np.array([[1.0, 2.0]])))


def test_select_names_missing_signals():
    table = FeatureTable(["a", "b"], ["x"], np.array([[1.0], [2.0]]))
    assert table.select(["b", "a"]).values[:, 0].tolist() == [2.0, 1.0]
    with pytest.raises(DataError, match="1 signal.*: zz"):
        table.select(["a", "zz"])


def test_written_features_read_back(tmp_path):
    rows = [{"signal": "a", "asr.tiny.en.left": 0.5, "stoi.left": 0.7, "note": "x"},
            {"signal": "b", "asr.tiny.en.left": 1.0, "stoi.left": 0.2, "note": "y"}]
    path = tmp_path / "out" / "features.train.abc.jsonl"
    write_features_jsonl(path, rows)
    assert list(json.loads(path.read_text().splitlines()[0]))[0] == "signal"
    table, _ = read_feature_files([path], ["b", "a"])
    assert table.names == ["asr.tiny.en.left", "stoi.left"]
    assert table.values.tolist() == [[1.0, 0.2], [0.5, 0.7]]


@pytest.mark.parametrize("rows, message", [
    ([{"signal": "a", "x": float("inf")}], r"signal a: features \['x'\] are not finite"),
    ([{"signal": "a", "x": 1.0}, {"signal": "a", "x": 2.0}], "appears twice"),
    ([{"x": 1.0}], "needs a string 'signal'"),
])
def test_writing_refuses_bad_rows(tmp_path, rows, message):
    with pytest.raises(ValueError, match=message):
        write_features_jsonl(tmp_path / "f.jsonl", rows)
    assert not (tmp_path / "f.jsonl").exists()


def test_null_is_a_missing_value_counted_in_the_log(tmp_path, caplog):
    f = _write(tmp_path / "gaps.jsonl", [{"signal": "a", "pesq.left": None, "stoi": 0.5},
                                         {"signal": "b", "pesq.left": 2.5, "stoi": float("nan")},
                                         {"signal": "c", "pesq.left": None, "stoi": 0.1}])
    with caplog.at_level("INFO", logger="code.evaluation.table"):
        table, problems = read_feature_files([f], ["a", "b", "c"])
    assert problems == [] and table.names == ["pesq.left", "stoi"]
    assert np.isnan(table.values[[0, 2], 0]).all() and table.values[1, 0] == 2.5
    assert np.isnan(table.values[1, 1]) and table.values[0, 1] == 0.5
    assert "3 missing value(s): pesq.left 2, stoi 1" in caplog.text


def test_missing_values_are_written_as_null_and_read_back(tmp_path):
    path = tmp_path / "f.jsonl"
    write_features_jsonl(path, [{"signal": "a", "x": float("nan"), "y": None, "z": 1.0},
                                {"signal": "b", "x": 0.5, "y": 2.0, "z": 3.0}])
    assert json.loads(path.read_text().splitlines()[0]) == {"signal": "a", "x": None, "y": None, "z": 1.0}
    table, _ = read_feature_files([path], ["a", "b"])
    assert np.isnan(table.values[0, :2]).all() and table.values[1].tolist() == [0.5, 2.0, 3.0]


@pytest.mark.parametrize("values", [np.zeros((3, 2)), np.zeros(6), np.zeros((2, 3, 1)), np.zeros((2, 2))])
def test_table_checks_its_shape_instead_of_reshaping(values):
    """2 signals x 3 features: a transposed [3, 2] array must not be silently scrambled."""
    with pytest.raises(ValueError, match=r"expected \(2, 3\)"):
        FeatureTable(["a", "b"], ["x", "y", "z"], values)
    assert FeatureTable(["a", "b"], ["x", "y", "z"], np.zeros((2, 3))).values.shape == (2, 3)
    assert FeatureTable([], ["x"], np.array([])).values.shape == (0, 1)
