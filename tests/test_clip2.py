"""CLIP2 data: layouts and challenge detection, metadata-only roots, the
responses file, the phoneme target, and the audio-check cache and filter."""

from __future__ import annotations

import json
import logging
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from scripts.make_demo_clip2 import build, clip2_train, clip2_valid
from tests.conftest import DEMO_ROOT, ROOT, demo_records, make_clip_root

import code.data.audio as data_loading
from code.data.layout import locate_split, resolve_data_root
from code.data.metadata import target_0_1
from code.data.synthetic import labels_are_synthetic
from code.data.validation import validate_split
from code.errors import DataError

DEMO_CLIP2 = ROOT / "data" / "demo_clip2"


def make_clip2_root(tmp_path, split="train", n=3, *, mutate=None, mutate_responses=None,
                    audio=True):
    """A CLIP2 data root (the folder holding cadenza_data/) with ``n`` demo signals."""
    source = demo_records(split)[:n]
    base = tmp_path / "cadenza_data" / "clip2"
    (base / "metadata").mkdir(parents=True)
    if split == "train":
        records, responses = clip2_train(source)
        if mutate_responses:
            responses = mutate_responses(responses, records)
        (base / "metadata" / "train_responses.json").write_text(json.dumps(responses))
    else:
        records = clip2_valid(source)
    if mutate:
        records = mutate([dict(r) for r in records])
    (base / "metadata" / f"{split}_metadata.json").write_text(json.dumps(records))
    if audio:
        layout = locate_split(DEMO_ROOT, split, challenge="clip1")
        for r in source:
            for kind in ("signals", "unprocessed"):
                src = layout.audio_path(r["signal"], kind)
                (base / split / kind).mkdir(parents=True, exist_ok=True)
                shutil.copy(src, base / split / kind / src.name)
    return tmp_path, records


# --- layouts ------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["holder", "cadenza_data", "clip2"])
def test_clip2_root_found_from_any_of_three_folders(tmp_path, where, caplog):
    root, records = make_clip2_root(tmp_path)
    given = {"holder": root, "cadenza_data": root / "cadenza_data",
             "clip2": root / "cadenza_data" / "clip2"}[where]
    with caplog.at_level(logging.INFO):
        data = validate_split(given, "train", require_correctness=True)
    assert data.layout.challenge == "clip2"
    assert data.layout.audio_dir == root / "cadenza_data" / "clip2" / "train"
    assert [r["signal"] for r in data.records] == [r["signal"] for r in records]
    assert "CLIP2 layout" in caplog.text


@pytest.mark.parametrize("where", ["holder", "cadenza_data"])
def test_clip1_root_found_from_holder_or_cadenza_data(tmp_path, where):
    root = make_clip_root(tmp_path, "valid", demo_records("valid")[:2])
    given = root if where == "holder" else root / "cadenza_data"
    info = resolve_data_root(given)
    assert (info.challenge, info.base) == ("clip1", root / "cadenza_data")
    assert validate_split(given, "valid").layout.challenge == "clip1"
    assert locate_split(info, "valid") == locate_split(given, "valid")


def test_both_challenges_present_needs_a_choice(tmp_path):
    root, _ = make_clip2_root(tmp_path)
    make_clip_root(tmp_path, "train", demo_records("train")[:2])
    with pytest.raises(DataError, match="--challenge"):
        resolve_data_root(root)
    assert resolve_data_root(root, "clip1").base == root / "cadenza_data"
    assert resolve_data_root(root, "clip2").base == root / "cadenza_data" / "clip2"
    assert validate_split(root, "train", challenge="clip1").layout.challenge == "clip1"


def test_challenge_override_wins_over_the_layout(tmp_path):
    root = make_clip_root(tmp_path, "valid", demo_records("valid")[:2])
    assert resolve_data_root(root, "clip2").challenge == "clip2"


def test_unknown_challenge_is_refused(tmp_path):
    root, _ = make_clip2_root(tmp_path)
    with pytest.raises(DataError, match="clip3"):
        resolve_data_root(root, "clip3")


def test_missing_split_names_file_and_what_is_there(tmp_path):
    root, _ = make_clip2_root(tmp_path)
    with pytest.raises(DataError) as err:
        locate_split(root, "eval")
    assert "eval_metadata.json" in str(err.value) and "train_metadata.json" in str(err.value)


# --- metadata only ------------------------------------------------------------------------

@pytest.mark.parametrize("challenge", ["clip1", "clip2"])
def test_metadata_only_root(tmp_path, challenge):
    if challenge == "clip2":
        root, records = make_clip2_root(tmp_path, audio=False)
    else:
        records = demo_records("train")[:3]
        meta = tmp_path / "cadenza_data" / "metadata"
        meta.mkdir(parents=True)
        (meta / "train_metadata.json").write_text(json.dumps(records))
        root = tmp_path
    assert sorted(p.name for p in root.rglob("*") if p.is_dir()) == sorted(
        ["cadenza_data", "metadata"] + (["clip2"] if challenge == "clip2" else []))
    data = validate_split(root, "train", check_audio=False, require_correctness=True)
    assert [r["signal"] for r in data.records] == [r["signal"] for r in records]
    assert locate_split(root, "train", need_audio=False).challenge == challenge
    with pytest.raises(DataError, match="no audio folder"):
        locate_split(root, "train")
    with pytest.raises(DataError, match="no audio folder"):
        validate_split(root, "train")


# --- CLIP2 metadata and responses ------------------------------------------------------------

def _first(rs, **changes):
    return [{**rs[0], **changes}] + rs[1:]


def _resp(change):
    """Mutate the first signal's first response."""
    def mutate(responses, records):
        first = records[0]["signal"]
        responses[first] = [change(dict(responses[first][0]))] + responses[first][1:]
        return responses
    return mutate


def _drop(key):
    return _resp(lambda r: {k: v for k, v in r.items() if k != key})


BAD_CLIP2 = [
    ("phoneme out of range", dict(mutate=lambda rs: _first(rs, phoneme_correctness=1.5)),
     "phoneme_correctness 1.5 is not a number in 0..1", 0),
    ("phoneme not a number", dict(mutate=lambda rs: _first(rs, phoneme_correctness="high")),
     "phoneme_correctness 'high' is not a number in 0..1", 0),
    ("unknown signal in responses",
     dict(mutate_responses=lambda rs, recs: {**rs, "feedfeedfeedfeedfeedfeed": rs[recs[0]["signal"]]}),
     "has responses in train_responses.json but is not in the metadata", "feedfeedfeedfeedfeedfeed"),
    ("signal without responses",
     dict(mutate_responses=lambda rs, recs: {k: v for k, v in rs.items() if k != recs[1]["signal"]}),
     "no listener responses in train_responses.json", 1),
    ("responses not a list",
     dict(mutate_responses=lambda rs, recs: {**rs, recs[0]["signal"]: {"hits": 1}}),
     "must be a non-empty list", 0),
    ("empty responses", dict(mutate_responses=lambda rs, recs: {**rs, recs[0]["signal"]: []}),
     "must be a non-empty list", 0),
    ("response not an object",
     dict(mutate_responses=lambda rs, recs: {**rs, recs[0]["signal"]: ["text"]}),
     "response #0 in train_responses.json is not an object", 0),
    ("missing hits", dict(mutate_responses=_drop("hits")), "lacks 'hits'", 0),
    ("missing response_id", dict(mutate_responses=_drop("response_id")), "lacks 'response_id'", 0),
    ("negative hits", dict(mutate_responses=_resp(lambda r: {**r, "hits": -1})),
     "hits -1 is not a count >= 0", 0),
    ("fractional phoneme hits", dict(mutate_responses=_resp(lambda r: {**r, "phoneme_hits": 2.5})),
     "phoneme_hits 2.5 is not a count >= 0", 0),
    ("response correctness out of range",
     dict(mutate_responses=_resp(lambda r: {**r, "correctness": 2.0, "phoneme_correctness": -0.1})),
     "correctness 2.0 is not a number in 0..1", 0),
    ("response text not a string", dict(mutate_responses=_resp(lambda r: {**r, "response": 7})),
     "response 7 is not a string", 0),
    ("duplicate response id",
     dict(mutate_responses=lambda rs, recs: {**rs, recs[0]["signal"]: rs[recs[0]["signal"]] * 2}),
     "duplicate response_id 'Score1'", 0),
    ("label disagrees with responses",
     dict(mutate=lambda rs: _first(rs, correctness=round(1 - rs[0]["correctness"], 3) or 0.5)),
     "differs from the mean of its responses", 0),
]


@pytest.mark.parametrize("name,kwargs,expected,who", BAD_CLIP2, ids=[b[0] for b in BAD_CLIP2])
def test_bad_clip2_metadata_is_named(tmp_path, name, kwargs, expected, who):
    root, records = make_clip2_root(tmp_path, **kwargs)
    signal = who if isinstance(who, str) else records[who]["signal"]
    with pytest.raises(DataError) as err:
        validate_split(root, "train", check_audio=False)
    line = next((l for l in str(err.value).splitlines() if expected in l), "")
    assert f"signal {signal}" in line, str(err.value)


def test_skip_invalid_drops_a_record_with_bad_responses(tmp_path):
    root, records = make_clip2_root(tmp_path, mutate_responses=_drop("hits"))
    data = validate_split(root, "train", check_audio=False, skip_invalid=True)
    assert [r["signal"] for r in data.records] == [r["signal"] for r in records[1:]]


@pytest.mark.parametrize("content,expected", [("{not json", "not valid JSON"),
                                              ("[1, 2]", "must hold a JSON object")])
def test_bad_responses_file_is_named(tmp_path, content, expected):
    root, _ = make_clip2_root(tmp_path)
    path = root / "cadenza_data" / "clip2" / "metadata" / "train_responses.json"
    path.write_text(content)
    with pytest.raises(DataError) as err:
        validate_split(root, "train", check_audio=False, skip_invalid=True)
    assert expected in str(err.value) and "train_responses.json" in str(err.value)


def test_clip2_valid_split_has_no_labels(tmp_path):
    root, records = make_clip2_root(tmp_path, "valid")
    data = validate_split(root, "valid", input_kinds=("signals", "unprocessed"))
    assert len(data.records) == len(records) and "correctness" not in data.records[0]


# --- targets ----------------------------------------------------------------------------------

def test_phoneme_target_reads_clip2_metadata(tmp_path):
    root, records = make_clip2_root(tmp_path)
    data = validate_split(root, "train", check_audio=False, require_correctness=True,
                          target="phoneme_correctness")
    values = [target_0_1(r, "phoneme_correctness") for r in data.records]
    assert values == [r["phoneme_correctness"] for r in records]
    assert [target_0_1(r) for r in data.records] == [r["correctness"] for r in records]
    assert values != [target_0_1(r) for r in data.records]


def test_phoneme_target_on_clip1_is_a_clear_error(tmp_path):
    root = make_clip_root(tmp_path, "train", demo_records("train")[:3])
    with pytest.raises(DataError, match="only CLIP2 training metadata has it"):
        validate_split(root, "train", require_correctness=True, target="phoneme_correctness",
                       check_audio=False)
    with pytest.raises(DataError, match=demo_records("train")[0]["signal"]):
        target_0_1(demo_records("train")[0], "phoneme_correctness")


def test_phoneme_target_missing_in_one_record_is_named(tmp_path):
    root, records = make_clip2_root(
        tmp_path, mutate=lambda rs: [{k: v for k, v in rs[0].items() if k != "phoneme_correctness"}]
        + rs[1:])
    with pytest.raises(DataError) as err:
        validate_split(root, "train", require_correctness=True, target="phoneme_correctness",
                       check_audio=False)
    assert f"signal {records[0]['signal']}: missing 'phoneme_correctness'" in str(err.value)


def test_unknown_target_is_refused(tmp_path):
    root, records = make_clip2_root(tmp_path)
    with pytest.raises(DataError, match="target must be one of"):
        validate_split(root, "train", target="words", check_audio=False)
    with pytest.raises(DataError, match="target must be one of"):
        target_0_1(records[0], "words")


# --- signal IDs -----------------------------------------------------------------------------

@pytest.mark.parametrize("bad_id,expected", [("", "empty signal ID"), ("   ", "empty signal ID"),
                                             ("../x", "not a plain file name")])
def test_bad_signal_id_reported_and_skipped(tmp_path, bad_id, expected):
    records = [dict(r) for r in demo_records("valid")[:3]]
    records[1]["signal"] = bad_id
    root = make_clip_root(tmp_path, "valid", records)
    with pytest.raises(DataError, match=expected):
        validate_split(root, "valid")
    data = validate_split(root, "valid", skip_invalid=True)
    assert [r["signal"] for r in data.records] == [records[0]["signal"], records[2]["signal"]]
    assert len(data.skipped) == 1 and expected in data.skipped[0].reason


# --- audio checks: filter and cache -----------------------------------------------------------

def _count_decodes(monkeypatch) -> list:
    calls = []
    real = data_loading.sf.read

    def counting(path, *args, **kwargs):
        calls.append(str(path))
        return real(path, *args, **kwargs)
    monkeypatch.setattr(data_loading.sf, "read", counting)
    return calls


def test_records_filter_limits_audio_checks(tmp_path):
    root, records = make_clip2_root(tmp_path, "valid")
    broken = root / "cadenza_data" / "clip2" / "valid" / "signals"
    (broken / f"{records[1]['signal']}.flac").write_bytes(b"not audio")
    data = validate_split(root, "valid", records_filter=lambda rs: rs[::2])
    assert [r["signal"] for r in data.records] == [r["signal"] for r in records[::2]]
    with pytest.raises(DataError, match=records[1]["signal"]):
        validate_split(root, "valid", records_filter=lambda rs: rs[1:2])


def test_cache_skips_unchanged_files_and_rechecks_changed_ones(tmp_path, monkeypatch):
    root, records = make_clip2_root(tmp_path, "valid")
    cache = tmp_path / "results" / ".audio_checks.json"
    kinds = ("signals", "unprocessed")
    calls = _count_decodes(monkeypatch)
    validate_split(root, "valid", input_kinds=kinds, check_cache=cache)
    assert len(calls) == 2 * len(records) and cache.is_file()
    calls.clear()
    validate_split(root, "valid", input_kinds=kinds, check_cache=cache)
    assert calls == []
    # A changed file (new size and mtime) is decoded again and its problem reported.
    path = root / "cadenza_data" / "clip2" / "valid" / "signals" / f"{records[2]['signal']}.flac"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError) as err:
        validate_split(root, "valid", input_kinds=kinds, check_cache=cache)
    assert calls == [str(path)] and records[2]["signal"] in str(err.value)
    assert "cannot decode" in str(err.value)


def test_failed_checks_are_never_cached(tmp_path):
    root, records = make_clip2_root(tmp_path, "valid", n=1)
    cache = tmp_path / ".audio_checks.json"
    validate_split(root, "valid", check_cache=cache)
    path = root / "cadenza_data" / "clip2" / "valid" / "signals" / f"{records[0]['signal']}.flac"
    stat = path.stat()
    audio, rate = sf.read(path)
    audio[:] = np.nan
    path.unlink()
    sf.write(path.with_suffix(".wav"), audio.astype(np.float32), rate, subtype="FLOAT")
    with pytest.raises(DataError, match="NaN or infinite"):
        validate_split(root, "valid", check_cache=cache)
    os.utime(path.with_suffix(".wav"), ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(DataError, match="NaN or infinite"):  # same mtime: still checked
        validate_split(root, "valid", check_cache=cache)


def test_unreadable_cache_is_rebuilt(tmp_path, caplog):
    root, records = make_clip2_root(tmp_path, "valid", n=2)
    cache = tmp_path / ".audio_checks.json"
    cache.write_text("{torn")
    with caplog.at_level(logging.WARNING):
        validate_split(root, "valid", check_cache=cache)
    assert "unreadable audio-check cache" in caplog.text
    assert len(json.loads(cache.read_text())["files"]) == len(records)


def test_silence_note_survives_the_cache(tmp_path, caplog):
    root, records = make_clip2_root(tmp_path, "valid", n=1)
    path = root / "cadenza_data" / "clip2" / "valid" / "signals" / f"{records[0]['signal']}.flac"
    sf.write(path, np.zeros((16000, 2)), 16000)
    cache = tmp_path / ".audio_checks.json"
    validate_split(root, "valid", check_cache=cache)
    with caplog.at_level(logging.WARNING):
        data = validate_split(root, "valid", check_cache=cache)
    assert "silent" in caplog.text and len(data.notes) == 1


# --- the shipped CLIP2 demo -------------------------------------------------------------------

def test_shipped_clip2_demo_is_valid():
    for split in ("train", "valid"):
        data = validate_split(DEMO_CLIP2, split, input_kinds=("signals", "unprocessed"),
                              require_correctness=split == "train")
        meta = DEMO_CLIP2 / "cadenza_data" / "clip2" / "metadata" / f"{split}_metadata.json"
        assert data.layout.challenge == "clip2"
        assert len(data.records) == len(json.loads(meta.read_text())) > 0
    train = validate_split(DEMO_CLIP2, "train", check_audio=False)
    assert all("fma" not in r and "response" not in r for r in train.records)
    assert len({r["prompt"] for r in train.records}) >= 5  # five calibration folds by prompt


def test_demo_builder_output_validates(tmp_path):
    size = build(DEMO_ROOT, tmp_path)
    assert size == sum(p.stat().st_size for p in tmp_path.rglob("*.flac"))
    data = validate_split(tmp_path, "train", require_correctness=True, target="phoneme_correctness",
                          check_audio=False)
    assert data.layout.challenge == "clip2" and data.records
    assert "SYNTHETIC" in (tmp_path / "README.md").read_text()
    assert labels_are_synthetic(tmp_path / "cadenza_data" / "clip2" / "metadata")  # declared by the data set
