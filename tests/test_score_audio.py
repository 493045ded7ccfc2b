"""Stage 2 scoring logic: better ear, cache keys (audio, ASR settings, prompt), re-scoring.

The engine here is a stand-in that returns fixed transcripts per ear: what is
under test is the scoring and caching around it (the official scorer is real).
"""

from __future__ import annotations

import numpy as np
import soundfile as sf

from code.evaluation.asr.engines import Transcript
from code.evaluation.asr.settings import ASRSettings
from code.evaluation.cache import Store
from code.evaluation.features.extract import ScoreItem, asr_features, score_audio

LEFT_LEVEL, RIGHT_LEVEL = 0.01, 0.1  # the ears of a test file differ in level (20 dB)


class ScriptedEngine:
    """The left ear hears ``left``, the right ear ``right``: told apart by the audio
    itself (the quieter ear is the left), not by position in the batch, so a swap of
    the ears anywhere between the file and the record shows. Counts the ears it
    transcribed."""

    def __init__(self, left: str, right: str) -> None:
        self.texts = (left, right)
        self.calls = 0

    def transcribe(self, ears):
        self.calls += len(ears)
        out = []
        for ear in ears:
            side = int(np.std(ear) > np.sqrt(LEFT_LEVEL * RIGHT_LEVEL))
            out.append(Transcript(self.texts[side], -0.1 * (side + 1), 0.01 * (side + 1)))
        return out


def _item(tmp_path, name="s1", prompt="the cat sat on the mat", seed=0):
    path = tmp_path / f"{name}.wav"
    rng = np.random.default_rng(seed)
    sf.write(path, (rng.normal(0, 1, (4410, 2)) * [LEFT_LEVEL, RIGHT_LEVEL]).astype(np.float32), 44100)
    return ScoreItem(name, prompt, path)


def _score(items, cache, engine, **kw):
    return score_audio(items, settings=ASRSettings(batch_size=2), store=Store(cache), split="valid",
                       engine=engine, **kw)


def test_better_ear_is_the_max_of_both_ears(tmp_path):
    cache = tmp_path / "store"
    for left, right in (("the cat", "the cat sat on the mat"), ("the cat sat on the mat", "the cat")):
        engine = ScriptedEngine(left, right)
        record = _score([_item(tmp_path)], cache, engine, recompute=True)["s1"]
        expected = [1.0 if t == "the cat sat on the mat" else 2 / 6 for t in (left, right)]
        assert record["ear_correctness"] == expected and record["transcripts"] == [left, right]
        assert record["score"] == 1.0
        features = asr_features({"s1": record}, "tiny.en")["s1"]
        assert features["asr.tiny.en.better_ear"] == 1.0
        assert features["asr.tiny.en.words_heard"] == 6.0  # counted in the better ear
        assert [features["asr.tiny.en.left"], features["asr.tiny.en.right"]] == expected
        assert [features["asr.tiny.en.logprob_left"], features["asr.tiny.en.logprob_right"]] == [-0.1, -0.2]


def test_ear_order_holds_across_a_batch(tmp_path):
    """Several signals in one engine call (batch_size 2 -> 1 signal per batch here, then 4 ears
    per call with batch_size 4): every record keeps left as left."""
    items = [_item(tmp_path, name=f"s{i}", seed=i) for i in range(3)]
    engine = ScriptedEngine("the cat", "the cat sat on the mat")
    for batch_size in (2, 4):
        records = score_audio(items, settings=ASRSettings(batch_size=batch_size), store=Store(tmp_path / "store"),
                              split="valid", engine=engine, recompute=True)
        assert [records[f"s{i}"]["ear_correctness"] for i in range(3)] == [[2 / 6, 1.0]] * 3


def test_empty_transcript_has_missing_confidence_never_zero(tmp_path):
    """Nothing decoded: the confidence is missing (null in the record, NaN as a feature), also
    for a record of an older cache that stored 0.0 / 1.0 for it."""
    import json
    import math

    from code.evaluation.asr.engines import segment_confidence

    assert all(math.isnan(v) for v in segment_confidence([]))
    engine = ScriptedEngine("", "the cat sat on the mat")
    engine.transcribe = lambda ears: [Transcript(""), Transcript("the cat sat on the mat", -0.3, 0.02)]
    record = _score([_item(tmp_path)], tmp_path / "store", engine)["s1"]
    assert record["confidence"][0] == {"avg_logprob": None, "no_speech_prob": None}
    json.dumps(record, allow_nan=False)  # storable as standard JSON
    old = {**record, "confidence": [{"avg_logprob": 0.0, "no_speech_prob": 1.0},
                                    {"avg_logprob": -0.3, "no_speech_prob": 0.02}]}
    for r in (record, old):
        features = asr_features({"s1": r}, "tiny.en")["s1"]
        assert math.isnan(features["asr.tiny.en.logprob_left"]) and math.isnan(features["asr.tiny.en.no_speech_left"])
        assert math.isnan(features["asr.tiny.en.compression_ratio_left"])
        assert features["asr.tiny.en.logprob_right"] == -0.3 and features["asr.tiny.en.no_speech_right"] == 0.02


def test_repetition_loops_are_flagged_per_ear_and_counted(tmp_path, caplog):
    loop = " ".join(["I will be the one"] * 45)
    engine = ScriptedEngine("the cat sat on the mat", loop)
    record = _score([_item(tmp_path)], tmp_path / "store", engine)["s1"]
    with caplog.at_level("INFO", logger="code.evaluation.features.extract"):
        features = asr_features({"s1": record}, "tiny.en")["s1"]
    assert features["asr.tiny.en.repetition_left"] == 0.0 and features["asr.tiny.en.repetition_right"] == 1.0
    assert features["asr.tiny.en.compression_ratio_left"] < 2.4 < features["asr.tiny.en.compression_ratio_right"]
    assert "1 flagged as a repetition loop" in caplog.text and "0 of 2 ears heard nothing" in caplog.text


def test_changed_prompt_is_rescored_from_stored_transcripts(tmp_path):
    cache = tmp_path / "store"
    engine = ScriptedEngine("the cat sat", "the cat sat")
    first = _score([_item(tmp_path, prompt="the cat sat")], cache, engine)["s1"]
    assert first["score"] == 1.0 and engine.calls == 2
    again = _score([_item(tmp_path, prompt="a dog ran far away")], cache, engine)["s1"]
    assert engine.calls == 2  # not transcribed again
    assert again["score"] == 0.0 and again["transcripts"] == first["transcripts"]
    back = _score([_item(tmp_path, prompt="the cat sat")], cache, engine)["s1"]
    assert back["score"] == 1.0 and engine.calls == 2
    assert Store(cache).count("transcript") == 1 and Store(cache).count("score") == 2  # one per prompt


def test_changed_audio_or_recompute_transcribes_again(tmp_path):
    cache = tmp_path / "store"
    engine = ScriptedEngine("the cat", "the cat")
    _score([_item(tmp_path, seed=0)], cache, engine)
    _score([_item(tmp_path, seed=0)], cache, engine)
    assert engine.calls == 2
    _score([_item(tmp_path, seed=1)], cache, engine)  # same signal, other audio content
    assert engine.calls == 4
    _score([_item(tmp_path, seed=1)], cache, engine, recompute=True)
    assert engine.calls == 6


def test_identical_audio_is_transcribed_once_whatever_its_id_or_folder(tmp_path):
    """The store names transcripts by the audio's content: the same bytes under another
    signal ID, in another folder (another model, tag or data root), reuse them."""
    cache = tmp_path / "store"
    engine = ScriptedEngine("the cat sat", "the cat")
    first = _item(tmp_path, name="s1", prompt="the cat sat")
    _score([first], cache, engine)
    assert engine.calls == 2
    elsewhere = tmp_path / "other_root"
    elsewhere.mkdir()
    copies = []
    for name in ("s7", "s8"):
        path = elsewhere / f"{name}.wav"
        path.write_bytes(first.path.read_bytes())
        copies.append(ScoreItem(name, "the cat sat", path))
    records = _score(copies, cache, engine)
    assert engine.calls == 2  # nothing transcribed again
    assert [records[n]["score"] for n in ("s7", "s8")] == [1.0, 1.0]
    fresh = tmp_path / "fresh_store"
    _score(copies, fresh, engine)
    assert engine.calls == 4  # two signals of one audio in one call: transcribed once


def test_a_damaged_store_entry_is_computed_again(tmp_path):
    cache = tmp_path / "store"
    engine = ScriptedEngine("the cat", "the cat")
    _score([_item(tmp_path)], cache, engine)
    for entry in (cache / "transcript").glob("*/*.json"):
        entry.write_text('{"ears": [{"te')  # torn
    record = _score([_item(tmp_path)], cache, engine)["s1"]
    assert engine.calls == 4 and record["transcripts"] == ["the cat", "the cat"]
