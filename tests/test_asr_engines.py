"""Both Whisper engines transcribe real demo audio offline."""

from __future__ import annotations

import os

import pytest

from code.data_loading import read_audio
from code.evaluation.asr import ASRError, ASRSettings, make_engine, split_ears
from code.evaluation.scoring import LyricScorer
from tests.conftest import DEMO_ROOT, demo_records

CHECKPOINT = os.environ.get("CLIP_OPENAI_CHECKPOINT")


def _first_no_loss():
    record = next(r for r in demo_records("train") if r["hearing_loss"] == "No Loss")
    audio = read_audio(DEMO_ROOT / "cadenza_data" / "train" / "signals" / f"{record['signal']}.flac")
    return record, split_ears(audio, 44100)


@pytest.mark.slow
def test_faster_whisper_bundled_tiny_en():
    record, ears = _first_no_loss()
    texts = make_engine(ASRSettings()).transcribe(ears)
    assert len(texts) == 2
    assert LyricScorer().score(record["prompt"], texts[0]).correctness >= 0.7


@pytest.mark.slow
@pytest.mark.skipif(not CHECKPOINT, reason="set CLIP_OPENAI_CHECKPOINT to an openai-whisper .pt file")
def test_openai_whisper_checkpoint_agrees_with_faster_whisper():
    record, ears = _first_no_loss()
    ours = make_engine(ASRSettings(engine="openai-whisper", model=CHECKPOINT)).transcribe(ears)
    theirs = make_engine(ASRSettings(compute_type="float32")).transcribe(ears)
    scorer = LyricScorer()
    assert [scorer.normalise(t) for t in ours] == [scorer.normalise(t) for t in theirs]


def test_missing_model_names_it(tmp_path):
    with pytest.raises(ASRError, match="nonexistent.pt"):
        make_engine(ASRSettings(engine="openai-whisper", model=str(tmp_path / "nonexistent.pt")))
