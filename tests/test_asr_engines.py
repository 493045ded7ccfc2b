"""Both Whisper engines transcribe real demo audio offline."""

from __future__ import annotations

import os

import pytest

from tests.conftest import DEMO_ROOT, demo_records

from code.data.audio import read_audio
from code.evaluation.asr.engines import ASRError, make_engine, split_ears
from code.evaluation.asr.scoring import LyricScorer
from code.evaluation.asr.settings import ASRSettings

CHECKPOINT = os.environ.get("CLIP_OPENAI_CHECKPOINT")
# CI sets CLIP_REQUIRE_OPENAI_CHECKPOINT=1: there a missing checkpoint fails instead of skipping.
if os.environ.get("CLIP_REQUIRE_OPENAI_CHECKPOINT") == "1" and not (CHECKPOINT and os.path.isfile(CHECKPOINT)):
    raise RuntimeError(f"CLIP_REQUIRE_OPENAI_CHECKPOINT=1 but CLIP_OPENAI_CHECKPOINT={CHECKPOINT!r} "
                       "is not a file: the openai-whisper tests cannot run")


def _first_no_loss():
    no_loss = [r for r in demo_records("train") if r["hearing_loss"] == "No Loss"]
    record = max(no_loss, key=lambda r: r["correctness"])  # the clearest voice in the demo
    audio = read_audio(DEMO_ROOT / "cadenza_data" / "train" / "signals" / f"{record['signal']}.flac")
    return record, split_ears(audio, 44100)


def _differing_ears(n_signals: int = 3) -> list:
    """Ears of demo signals from different prompts and categories (they transcribe differently),
    ordered so that the two ears of every (left, right) pair come from different signals: all
    the left ears, then all the right ears. A left/right swap inside a pair then changes the
    transcripts' order (``_swap_pairs``), which the ordered comparisons below catch."""
    records = demo_records("train")
    picked = [next(r for r in records if r["hearing_loss"] == c) for c in ("No Loss", "Mild", "Moderate")]
    pairs = [split_ears(read_audio(DEMO_ROOT / "cadenza_data" / "train" / "signals" / f"{r['signal']}.flac"), 44100)
             for r in picked[:n_signals]]
    return [pair[0] for pair in pairs] + [pair[1] for pair in pairs]


def _swap_pairs(texts: list) -> list:
    """The transcripts as an engine that swapped left and right in every pair would return them."""
    return [texts[i ^ 1] if (i ^ 1) < len(texts) else texts[i] for i in range(len(texts))]


@pytest.mark.slow
def test_faster_whisper_bundled_tiny_en():
    record, ears = _first_no_loss()
    texts = make_engine(ASRSettings()).transcribe(ears)
    assert len(texts) == 2
    assert LyricScorer().score(record["prompt"], texts[0].text).correctness >= 0.7


@pytest.mark.slow
def test_faster_whisper_batched_first_windows_equal_plain_transcribe():
    """Batched encoding must give each ear its own result (not a neighbour's)."""
    from faster_whisper import WhisperModel

    ears = _differing_ears()
    engine = make_engine(ASRSettings(batch_size=8))
    batched = [t.text for t in engine.transcribe(ears)]
    plain_model = engine.model
    plain = ["".join(seg.text for seg in plain_model.transcribe(
        ear, language="en", temperature=0.0, beam_size=1, best_of=1, vad_filter=False)[0]) for ear in ears]
    assert isinstance(plain_model, WhisperModel)
    assert batched == plain  # in order: ear i's transcript at position i
    assert len(set(plain)) >= 3 and _swap_pairs(plain) != plain  # a left/right swap would fail the line above


@pytest.mark.slow
@pytest.mark.skipif(not CHECKPOINT, reason="set CLIP_OPENAI_CHECKPOINT to an openai-whisper .pt file")
def test_openai_whisper_checkpoint_agrees_with_faster_whisper():
    record, ears = _first_no_loss()
    ours = make_engine(ASRSettings(engine="openai-whisper", model=CHECKPOINT)).transcribe(ears)
    theirs = make_engine(ASRSettings(compute_type="float32")).transcribe(ears)
    scorer = LyricScorer()
    assert [scorer.normalise(t.text) for t in ours] == [scorer.normalise(t.text) for t in theirs]


@pytest.mark.slow
@pytest.mark.skipif(not CHECKPOINT, reason="set CLIP_OPENAI_CHECKPOINT to an openai-whisper .pt file")
def test_openai_whisper_batched_decoding_equals_plain_transcribe():
    """The batched first window must reproduce ``whisper.transcribe`` ear by ear."""
    import whisper

    ears = _differing_ears()
    engine = make_engine(ASRSettings(engine="openai-whisper", model=CHECKPOINT, batch_size=8))
    batched = [t.text for t in engine.transcribe(ears)]
    plain = [whisper.transcribe(engine.model, ear, language="en", temperature=0.0, fp16=False)["text"]
             for ear in ears]
    assert batched == plain  # in order: ear i's transcript at position i
    assert len(set(plain)) >= 3 and _swap_pairs(plain) != plain  # a left/right swap would fail the line above


def test_missing_model_names_it(tmp_path):
    with pytest.raises(ASRError, match="nonexistent.pt"):
        make_engine(ASRSettings(engine="openai-whisper", model=str(tmp_path / "nonexistent.pt")))
