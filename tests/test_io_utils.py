"""Crash-safe output: torn JSONL lines are dropped, atomic writes leave no partial file."""

from __future__ import annotations

import json

import pytest

from code.io_utils import append_jsonl, read_jsonl, repair_jsonl, write_text_atomic


def test_torn_last_line_is_dropped_and_repaired(tmp_path):
    path = tmp_path / "scores.jsonl"
    append_jsonl(path, {"signal": "a", "score": 0.5})
    append_jsonl(path, {"signal": "b", "score": 1.0})
    with path.open("a") as f:
        f.write('{"signal": "c", "sco')  # killed mid-write
    assert [r["signal"] for r in read_jsonl(path)] == ["a", "b"]
    repair_jsonl(path)
    append_jsonl(path, {"signal": "c", "score": 0.0})
    assert [r["signal"] for r in read_jsonl(path)] == ["a", "b", "c"]


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "out.csv"
    write_text_atomic(path, "old\n")

    class Boom(Exception):
        pass

    from code.io_utils import atomic_path
    with pytest.raises(Boom):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise Boom
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
