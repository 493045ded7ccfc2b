"""Stage 2 scoring logic: better ear, cache keys (audio, ASR settings, prompt), re-scoring.

The engine here is a stand-in that returns fixed transcripts per ear: what is
under test is the scoring and caching around it (the official scorer is real).
"""

from __future__ import annotations

import numpy as np
import soundfile as sf

from code.evaluation.asr import ASRSettings, Transcript
from code.evaluation.evaluation_helper import ScoreItem, asr_features, score_audio
from code.io_utils import read_jsonl


class ScriptedEngine:
    """Left ear hears ``left``, right ear hears ``right``; counts the ears it transcribed."""

    def __init__(self, left: str, right: str) -> None:
        self.texts = (left, right)
        self.calls = 0

    def transcribe(self, ears):
        self.calls += len(ears)
        return [Transcript(self.texts[i % 2], -0.1 * (i % 2 + 1), 0.01) for i in range(len(ears))]


def _item(tmp_path, name="s1", prompt="the cat sat on the mat", seed=0):
    path = tmp_path / f"{name}.wav"
    rng = np.random.default_rng(seed)
    sf.write(path, rng.normal(0, 0.01, (4410, 2)).astype(np.float32), 44100)
    return ScoreItem(name, prompt, path)


def _score(items, cache, engine, **kw):
    return score_audio(items, settings=ASRSettings(batch_size=2), cache_file=cache, split="valid",
                       engine=engine, **kw)


def test_better_ear_is_the_max_of_both_ears(tmp_path):
    cache = tmp_path / "scores.jsonl"
    for left, right in (("the cat", "the cat sat on the mat"), ("the cat sat on the mat", "the cat")):
        engine = ScriptedEngine(left, right)
        record = _score([_item(tmp_path)], cache, engine, recompute=True)["s1"]
        assert sorted(record["ear_correctness"]) == [2 / 6, 1.0]
        assert record["score"] == 1.0
        features = asr_features({"s1": record}, "tiny.en")["s1"]
        assert features["asr.tiny.en.better_ear"] == 1.0
        assert features["asr.tiny.en.words_heard"] == 6.0  # counted in the better ear
        assert {features["asr.tiny.en.left"], features["asr.tiny.en.right"]} == {2 / 6, 1.0}


def test_changed_prompt_is_rescored_from_stored_transcripts(tmp_path):
    cache = tmp_path / "scores.jsonl"
    engine = ScriptedEngine("the cat sat", "the cat sat")
    first = _score([_item(tmp_path, prompt="the cat sat")], cache, engine)["s1"]
    assert first["score"] == 1.0 and engine.calls == 2
    again = _score([_item(tmp_path, prompt="a dog ran far away")], cache, engine)["s1"]
    assert engine.calls == 2  # not transcribed again
    assert again["score"] == 0.0 and again["transcripts"] == first["transcripts"]
    back = _score([_item(tmp_path, prompt="the cat sat")], cache, engine)["s1"]
    assert back["score"] == 1.0 and engine.calls == 2
    assert len(read_jsonl(cache)) == 3  # each scoring recorded, the newest wins


def test_changed_audio_or_recompute_transcribes_again(tmp_path):
    cache = tmp_path / "scores.jsonl"
    engine = ScriptedEngine("the cat", "the cat")
    _score([_item(tmp_path, seed=0)], cache, engine)
    _score([_item(tmp_path, seed=0)], cache, engine)
    assert engine.calls == 2
    _score([_item(tmp_path, seed=1)], cache, engine)  # same signal, other audio content
    assert engine.calls == 4
    _score([_item(tmp_path, seed=1)], cache, engine, recompute=True)
    assert engine.calls == 6
