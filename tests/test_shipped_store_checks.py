"""Values from a data set's shipped store are values from elsewhere: each is checked (shape and
range) when read, a bad one is refused and computed afresh, the log counts what came from the
data set apart, and ``--no-trust-shipped-store`` reads none of them. (That the demo's own
shipped values stay current and are used: tests/test_shipped_store.py.)"""

from __future__ import annotations

import json
import logging
import math
import shutil

import pytest

from code.data.validation import validate_split
from code.evaluation.cache import Store
from code.evaluation.features import extract
from code.evaluation.features.registry import pair_feature_values, store_ranges
from code.evaluation.shipped_values import shipped_value_problem
from tests.conftest import DEMO_ROOT, demo_records, make_clip_root, run_main

EAR = {"text": "la la", "avg_logprob": -0.3, "no_speech_prob": 0.1}

# (id, kind, value, what the problem says; None: the value is used)
VALUES = [
    ("HAAQI in range", "haaqi", {"features": {"haaqi.left": 0.9, "haaqi.right": None}}, None),
    ("HAAQI 7.5", "haaqi", {"features": {"haaqi.left": 7.5, "haaqi.right": 7.5}}, "haaqi.left 7.5 is outside 0..1"),
    ("HAAQI negative", "haaqi", {"features": {"haaqi.left": -0.1}}, "outside 0..1"),
    ("HAAQI text", "haaqi", {"features": {"haaqi.left": "0.5"}}, "haaqi.left is '0.5', not a number"),
    ("HAAQI NaN", "haaqi", {"features": {"haaqi.left": math.nan}}, "not a number"),
    ("HAAQI without features", "haaqi", {"haaqi": 0.5}, "no 'features' object"),
    ("STOI in range", "intrusive", {"features": {"stoi.left": 0.9, "estoi.left": -0.05}}, None),
    ("STOI 2", "intrusive", {"features": {"stoi.left": 2}}, "stoi.left 2 is outside -1..1"),
    ("unknown measure", "intrusive", {"features": {"pesq.left": 2.0}}, "unknown measure 'pesq.left'"),
    ("HASPI 1.5", "haspi", {"features": {"haspi.left": 1.5}}, "outside 0..1"),
    ("score in range", "score", {"ear_correctness": [0.0, 1.0]}, None),
    ("score 1.5", "score", {"ear_correctness": [1.5, 0.2]}, "words correct 1.5 is outside 0..1"),
    ("score null", "score", {"ear_correctness": [None, 0.2]}, "words correct is None, not a number"),
    ("one ear's score", "score", {"ear_correctness": [0.5]}, "not a list of 2 scores"),
    ("transcript", "transcript", {"ears": [EAR, {**EAR, "avg_logprob": None}]}, None),
    ("transcript of one ear", "transcript", {"ears": [EAR]}, "not a list of 2 transcripts"),
    ("transcript text a number", "transcript", {"ears": [EAR, {**EAR, "text": 5}]}, "text is 5, not text"),
    ("no-speech probability 3", "transcript", {"ears": [EAR, {**EAR, "no_speech_prob": 3}]}, "outside 0..1"),
    ("positive log probability", "transcript", {"ears": [EAR, {**EAR, "avg_logprob": 2}]}, "outside -inf..0"),
    ("embedding", "embedding", {"dim": 4, "left": "AAAA", "right": "AAAA"}, None),
    ("embedding of width 0", "embedding", {"dim": 0, "left": "", "right": ""}, "not a positive width"),
    ("a file digest", "file-digest", {"digest": "0" * 16}, "not taken from a data set's store"),
]


@pytest.mark.parametrize("case,kind,value,expected", VALUES, ids=[v[0] for v in VALUES])
def test_a_shipped_value_is_checked(case, kind, value, expected):
    problem = shipped_value_problem(kind, value, store_ranges())
    assert (problem is None) if expected is None else (expected in (problem or "")), problem


def _items(root, n=2):
    split = validate_split(root, "valid", check_audio=False)
    return [(r["signal"], split.layout.audio_path(r["signal"], "signals"),
             split.layout.audio_path(r["signal"], "unprocessed")) for r in split.records[:n]], split


def _stoi(items, store):
    return pair_feature_values("stoi", {"max_lag_s": 0.05}, items, store=store, sample_rate=44100,
                               recompute=False)


def _same(a, b) -> bool:
    """The same STOI values, to rounding (a recomputation may differ in the last bit)."""
    return a.keys() == b.keys() and all(a[s] == pytest.approx(b[s], abs=1e-12) for s in a)


def _seeded_root(tmp_path, tamper):
    """A data root shipping the STOI values of its first 2 signals, each passed through ``tamper``."""
    root = make_clip_root(tmp_path / "data", "valid", demo_records("valid")[:2])
    items, split = _items(root)
    shipped = root / "cadenza_data" / extract.SHIPPED_STORE
    truth = _stoi(items, Store(shipped))  # made as a data set's maker would
    for path in (shipped / "intrusive").glob("*/*.json"):
        path.write_text(json.dumps(tamper(json.loads(path.read_text()))))
    return items, split, truth


def test_good_shipped_values_are_used_and_counted_apart(tmp_path, caplog):
    items, split, truth = _seeded_root(tmp_path, lambda v: v)
    with caplog.at_level(logging.INFO):
        values = _stoi(items, extract.stage2_store(tmp_path / "results", split))
    assert _same(values, truth)
    assert "0 signal(s) to compute, 2 reused (2 from the data set's store)" in caplog.text


def test_out_of_range_shipped_values_are_refused_and_recomputed(tmp_path, caplog):
    items, split, truth = _seeded_root(tmp_path, lambda v: {"features": {k: 7.5 for k in v["features"]}})
    with caplog.at_level(logging.INFO):
        values = _stoi(items, extract.stage2_store(tmp_path / "results", split))
    assert _same(values, truth)  # computed afresh, not 7.5
    assert "2 signal(s) to compute, 0 reused" in caplog.text
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once per kind, not once per value
    assert "holds 'intrusive' values that cannot be right" in warnings[0]
    assert "is outside -1..1" in warnings[0] and "--no-trust-shipped-store" in warnings[0]
    again = Store(tmp_path / "results" / ".cache")  # the recomputed values went to the results store
    assert _same(_stoi(items, again), truth)


def test_no_trust_reads_nothing_from_the_data_set(tmp_path, caplog):
    items, split, truth = _seeded_root(tmp_path, lambda v: {"features": {k: 0.123 for k in v["features"]}})
    with caplog.at_level(logging.INFO):
        trusted = _stoi(items, extract.stage2_store(tmp_path / "r1", split))
        untrusted = _stoi(items, extract.stage2_store(tmp_path / "r2", split, trust_shipped=False))
    assert {v["stoi.left"] for v in trusted.values()} == {0.123}  # in range: used (so the option matters)
    assert _same(untrusted, truth)
    assert "(--no-trust-shipped-store): every value is computed here" in caplog.text


def test_file_digests_never_come_from_the_data_set(tmp_path):
    from code.keys import key_of

    audio = tmp_path / "a.wav"
    audio.write_bytes(b"abc")
    seed = tmp_path / "seed"
    stat = audio.resolve().stat()
    key = key_of("file-digest", path=str(audio.resolve()), size=stat.st_size, mtime_ns=stat.st_mtime_ns)
    Store(seed).put("file-digest", key, {"digest": "forged"})
    assert Store(tmp_path / "results", seeds=(seed,)).digest(audio) != "forged"


@pytest.mark.slow
def test_a_run_on_a_data_set_shipping_made_up_stoi_recomputes_it(tmp_path, caplog, capsys):
    """main.py on a data set whose shipped store says every STOI is 7.5 (its transcripts are the
    demo's, so nothing is transcribed): the log names the refusal, the features are real."""
    train, valid = demo_records("train"), demo_records("valid")
    keep = sorted({r["prompt"] for r in train})[:4]
    data = make_clip_root(tmp_path / "demo", "train", [r for r in train if r["prompt"] in keep])
    make_clip_root(data, "valid", [r for r in valid if r["prompt"] in sorted({v["prompt"] for v in valid})[:2]])
    shipped = data / "cadenza_data" / extract.SHIPPED_STORE
    shutil.copytree(DEMO_ROOT / "cadenza_data" / extract.SHIPPED_STORE, shipped)
    for path in (shipped / "intrusive").glob("*/*.json"):
        path.write_text(json.dumps({"features": {k: 7.5 for k in json.loads(path.read_text())["features"]}}))
    results = tmp_path / "results"
    code, text = run_main(["--data-root", data, "--results-dir", results, "--jobs", "1"], caplog, capsys)
    assert code == 0, text[-3000:]
    assert "holds 'intrusive' values that cannot be right" in text and "stoi.left 7.5 is outside -1..1" in text
    assert "from the data set's store" in text and "0 signal(s) to transcribe" in text
    features = [json.loads(line) for p in results.glob("NLR1/features.valid.*.jsonl") for line in p.open()]
    assert features and all(-1 <= f["stoi.left"] <= 1 for f in features)
