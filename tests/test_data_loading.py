"""Loading and checking CLIP splits: layouts, batches, and the bad-input matrix."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf
import torch

from code.data.audio import read_audio
from code.data.layout import locate_split
from code.data.validation import validate_split
from code.data_loading import CLIPDataset, make_dataloader
from code.errors import DataError
from tests.conftest import demo_records, make_clip_root


@pytest.mark.parametrize("layout", ["release", "audio"])
def test_both_layouts_load(tmp_path, layout):
    root = make_clip_root(tmp_path, "valid", demo_records("valid")[:2], layout=layout)
    data = validate_split(root, "valid")
    assert [r["signal"] for r in data.records] == [r["signal"] for r in demo_records("valid")[:2]]


def test_wav_files_accepted(tmp_path):
    records = demo_records("valid")[:1]
    root = make_clip_root(tmp_path, "valid", records)
    flac = root / "cadenza_data" / "valid" / "signals" / f"{records[0]['signal']}.flac"
    audio, rate = sf.read(flac)
    flac.unlink()
    sf.write(flac.with_suffix(".wav"), audio, rate)
    data = validate_split(root, "valid")
    assert data.layout.audio_path(records[0]["signal"]).suffix == ".wav"


def test_dataloader_batches_padded_stereo(demo_root):
    data = validate_split(demo_root, "valid", check_audio=False)
    loader = make_dataloader(CLIPDataset(data.layout, data.records, with_unprocessed=True),
                             batch_size=4)
    batch = next(iter(loader))
    assert batch["signals"].shape[:2] == (4, 2) and batch["signals"].dtype == torch.float32
    assert batch["signals"].shape[2] == int(batch["lengths"].max())
    assert batch["sample_rate"] == 44100
    assert [r["signal"] for r in batch["metadata"]] == [r["signal"] for r in data.records[:4]]
    first = read_audio(data.layout.audio_path(data.records[0]["signal"]))
    n = int(batch["lengths"][0])
    assert np.allclose(batch["signals"][0, :, :n].numpy(), first)
    assert torch.all(batch["signals"][0, :, n:] == 0)
    assert batch["unprocessed"].shape[0] == 4


def test_resamples_to_configured_rate(demo_root):
    path = demo_root / "cadenza_data" / "valid" / "signals" / f"{demo_records('valid')[0]['signal']}.flac"
    info = sf.info(path)
    audio = read_audio(path, 44100)
    assert info.samplerate == 16000
    assert audio.shape[0] == 2 and abs(audio.shape[1] - round(info.frames * 44100 / 16000)) <= 1


def test_mono_becomes_two_identical_channels(tmp_path, caplog):
    path = tmp_path / "mono.wav"
    sf.write(path, np.sin(np.arange(4410) / 5.0) * 0.1, 44100)
    with caplog.at_level(logging.WARNING):
        audio = read_audio(path)
    assert audio.shape == (2, 4410) and np.array_equal(audio[0], audio[1])
    assert "mono" in caplog.text


def _valid_root(tmp_path, mutate=None):
    records = demo_records("valid")[:3]
    if mutate:
        records = mutate([dict(r) for r in records])
    return make_clip_root(tmp_path, "valid", records), records


BAD_RECORDS = [
    ("missing signal", lambda rs: [{k: v for k, v in rs[0].items() if k != "signal"}] + rs[1:],
     "missing required field 'signal'"),
    ("missing prompt", lambda rs: [{k: v for k, v in rs[0].items() if k != "prompt"}] + rs[1:],
     "missing required field 'prompt'"),
    ("missing hearing_loss", lambda rs: [{k: v for k, v in rs[0].items() if k != "hearing_loss"}] + rs[1:],
     "missing required field 'hearing_loss'"),
    ("duplicate", lambda rs: rs + [dict(rs[0])], "duplicate signal ID"),
    ("unknown category", lambda rs: [{**rs[0], "hearing_loss": "Severe"}] + rs[1:],
     "unknown hearing_loss 'Severe'"),
    ("empty prompt", lambda rs: [{**rs[0], "prompt": "  "}] + rs[1:], "empty prompt"),
    ("correctness out of range", lambda rs: [{**rs[0], "correctness": 1.5}] + rs[1:],
     "correctness 1.5 is not a number in 0..1"),
    ("n_words not a number", lambda rs: [{**rs[0], "n_words": "x"}] + rs[1:],
     "n_words 'x' is not a positive integer"),
    ("n_words zero", lambda rs: [{**rs[0], "n_words": 0}] + rs[1:], "n_words 0 is not a positive integer"),
    ("n_words a bool", lambda rs: [{**rs[0], "n_words": True}] + rs[1:], "n_words True is not a positive integer"),
    ("n_words differs from the prompt", lambda rs: [{**rs[0], "n_words": len(rs[0]["prompt"].split()) + 1}] + rs[1:],
     "differs from the"),
    ("fma empty", lambda rs: [{**rs[0], "fma": ""}] + rs[1:], "fma (the track) '' is not"),
]


@pytest.mark.parametrize("name,mutate,expected", BAD_RECORDS, ids=[b[0] for b in BAD_RECORDS])
def test_bad_records_are_named(tmp_path, name, mutate, expected):
    root, records = _valid_root(tmp_path, mutate)
    with pytest.raises(DataError) as err:
        validate_split(root, "valid")
    assert expected in str(err.value)


def test_valid_split_needs_no_listener_fields(tmp_path):
    listener = {"fma", "original_response", "response", "words_correct", "correctness"}
    records = [{k: v for k, v in r.items() if k not in listener} for r in demo_records("valid")]
    data = validate_split(make_clip_root(tmp_path, "valid", records), "valid")
    assert "correctness" not in data.records[0] and len(data.records) == len(records)


def test_missing_correctness_in_ground_truth(tmp_path):
    records = [{k: v for k, v in r.items() if k != "correctness"} for r in demo_records("train")[:3]]
    root = make_clip_root(tmp_path, "train", records)
    with pytest.raises(DataError, match="missing 'correctness'"):
        validate_split(root, "train", require_correctness=True)


def _signal_file(root, records, i=0):
    return root / "cadenza_data" / "valid" / "signals" / f"{records[i]['signal']}.flac"


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _corrupt(path):
    path.write_bytes(b"RIFF not really audio" * 10)


def _nan(path):
    audio = np.zeros((4410, 2), dtype=np.float32)
    audio[100, 0] = np.nan
    path.unlink()
    sf.write(path.with_suffix(".wav"), audio, 44100, subtype="FLOAT")


def _three_channels(path):
    path.unlink()
    sf.write(path.with_suffix(".wav"), np.zeros((4410, 3)) + 0.1, 44100)


BAD_AUDIO = [
    ("missing", lambda p: p.unlink(), "audio file not found"),
    ("empty", lambda p: p.write_bytes(b""), "audio file is empty"),
    ("truncated", _truncate, "cannot decode"),
    ("corrupt", _corrupt, "cannot decode"),
    ("non-finite", _nan, "NaN or infinite"),
    ("three channels", _three_channels, "has 3 channels"),
]


@pytest.mark.parametrize("name,damage,expected", BAD_AUDIO, ids=[b[0] for b in BAD_AUDIO])
def test_bad_audio_is_named(tmp_path, name, damage, expected):
    root, records = _valid_root(tmp_path)
    damage(_signal_file(root, records))
    with pytest.raises(DataError) as err:
        validate_split(root, "valid")
    message = str(err.value)
    assert expected in message and records[0]["signal"] in message


def test_all_problems_reported_together(tmp_path):
    root, records = _valid_root(tmp_path, lambda rs: [{**rs[0], "hearing_loss": "x"}] + rs[1:])
    _signal_file(root, records, 1).unlink()
    with pytest.raises(DataError) as err:
        validate_split(root, "valid")
    assert "2 problem(s)" in str(err.value)
    assert records[0]["signal"] in str(err.value) and records[1]["signal"] in str(err.value)


def test_skip_invalid_keeps_the_rest(tmp_path):
    root, records = _valid_root(tmp_path)
    _signal_file(root, records, 1).unlink()
    data = validate_split(root, "valid", skip_invalid=True)
    assert [r["signal"] for r in data.records] == [records[0]["signal"], records[2]["signal"]]
    assert [p.signal for p in data.skipped] == [records[1]["signal"]]


def test_silence_is_flagged_not_rejected(tmp_path, caplog):
    root, records = _valid_root(tmp_path)
    path = _signal_file(root, records)
    path.unlink()
    sf.write(path, np.zeros((16000, 2)), 16000)
    with caplog.at_level(logging.WARNING):
        data = validate_split(root, "valid")
    assert len(data.records) == 3 and "silent" in caplog.text


def test_not_a_clip_root_says_what_was_looked_for(tmp_path):
    with pytest.raises(DataError) as err:
        locate_split(tmp_path, "valid")
    for looked in (tmp_path / "cadenza_data" / "clip2" / "metadata", tmp_path / "cadenza_data" / "metadata",
                   tmp_path / "clip2" / "metadata", tmp_path / "metadata"):
        assert f"{looked}/" in str(err.value)


@pytest.mark.parametrize("content,expected", [("{not json", "not valid JSON"), ('{"a": 1}', "JSON list")])
def test_bad_metadata_file_is_named(tmp_path, content, expected):
    root, _ = _valid_root(tmp_path)
    meta = root / "cadenza_data" / "metadata" / "valid_metadata.json"
    meta.write_text(content)
    with pytest.raises(DataError) as err:
        validate_split(root, "valid")
    assert expected in str(err.value) and "valid_metadata.json" in str(err.value)


def test_skip_invalid_drops_a_record_with_a_non_string_id(tmp_path):
    root, records = _valid_root(tmp_path, lambda rs: [{**rs[0], "signal": 123}] + rs[1:])
    data = validate_split(root, "valid", skip_invalid=True)
    assert [r["signal"] for r in data.records] == [r["signal"] for r in records[1:]]
    assert "123" in {p.signal for p in data.skipped}
