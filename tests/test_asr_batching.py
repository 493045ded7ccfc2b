"""Batched transcription equals ear-by-ear transcription, for both engines.

Each engine's ``transcribe`` at batch sizes 1, 2 and 8 is compared, ear by ear and in
order, with the engine's plain transcription (faster-whisper's ``WhisperModel.transcribe``,
``whisper.transcribe``): the same text, and the same confidences within ``CONFIDENCE_TOL``
(a batched decoder's matrix products round differently in float32, about 1e-6 here).

The ears: demo speech (left ears, then right ears, so a swap within a batch changes the
order), digital silence (Whisper hears nothing), a demo clip tiled to 40 s (its transcript
loops, and a second 30 s window is decoded) and an ear shorter than one mel frame. Seven
ears, so a batch of 2 leaves one over. With all seven in one batch, the segments (timestamps,
text, tokens) are compared too.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from tests.conftest import DEMO_ROOT, demo_records

from code.data.audio import read_audio
from code.evaluation.asr.batching import faster_whisper_transcribe, openai_transcribe
from code.evaluation.asr.engines import is_repetition_loop, make_engine, split_ears
from code.evaluation.asr.settings import ASRSettings

CHECKPOINT = os.environ.get("CLIP_OPENAI_CHECKPOINT")
BATCH_SIZES = (1, 2, 8)
CONFIDENCE_TOL = 1e-4  # absolute, on avg_logprob and no_speech_prob
LOOP_TILES = 16  # the second demo signal's left ear tiled: 40 s of "your light and your light ..."

pytestmark = pytest.mark.slow  # real Whisper inference, about two minutes for both engines


def _demo_ears(signal: str) -> list[np.ndarray]:
    # as code/evaluation/features/extract.py reads a signal: 44.1 kHz, then 16 kHz ears
    return split_ears(read_audio(DEMO_ROOT / "cadenza_data" / "train" / "signals" / f"{signal}.flac", 44100), 44100)


@pytest.fixture(scope="module")
def ears() -> dict[str, np.ndarray]:
    signals = sorted(r["signal"] for r in demo_records("train"))
    first, second, third = (_demo_ears(s) for s in signals[:3])  # the second is heard as nothing
    return {"speech 1 left": first[0], "speech 3 left": third[0],
            "speech 1 right": first[1], "speech 3 right": third[1],
            "silence": np.zeros(3 * 16000, dtype=np.float32),
            "loop": np.tile(second[0], LOOP_TILES),
            "shorter than a frame": np.zeros(100, dtype=np.float32)}


def _faster_segments(segments) -> list[tuple]:
    return [(s.start, s.end, s.text, tuple(s.tokens)) for s in segments]


def _openai_segments(result: dict) -> list[tuple]:
    return [(s["start"], s["end"], s["text"], tuple(s["tokens"])) for s in result["segments"]]


def _faster_plain(model, ear: np.ndarray) -> tuple[tuple[str, float, float], list[tuple]]:
    segments = list(model.transcribe(ear, language="en", temperature=0.0, beam_size=1, best_of=1,
                                     vad_filter=False)[0])
    return _summary([(s.text, s.avg_logprob, s.no_speech_prob) for s in segments]), _faster_segments(segments)


def _openai_plain(model, ear: np.ndarray) -> tuple[tuple[str, float, float], list[tuple]]:
    import whisper

    result = whisper.transcribe(model, ear, language="en", temperature=0.0, fp16=False)
    return (_summary([(s["text"], s["avg_logprob"], s["no_speech_prob"]) for s in result["segments"]]),
            _openai_segments(result))


def _faster_batch_segments(model, ears: list[np.ndarray]) -> list[list[tuple]]:
    return [_faster_segments(segments) for segments in faster_whisper_transcribe(model, ears)]


def _openai_batch_segments(model, ears: list[np.ndarray]) -> list[list[tuple]]:
    return [_openai_segments(result) for result in openai_transcribe(model, ears)]


def _summary(segments: list[tuple[str, float, float]]) -> tuple[str, float, float]:
    """(text, mean avg_logprob, first no_speech_prob), as a Transcript holds them; NaN when empty."""
    if not segments:
        return "", math.nan, math.nan
    return ("".join(s[0] for s in segments), float(np.mean([s[1] for s in segments])), segments[0][2])


def _check_batched_equal_plain(engine_of, plain_of, batch_segments_of, ears: dict[str, np.ndarray]) -> None:
    names, arrays = list(ears), list(ears.values())
    engine = engine_of(BATCH_SIZES[0])
    plain, plain_segments = zip(*(plain_of(engine.model, ear) for ear in arrays))
    texts = dict(zip(names, (p[0] for p in plain)))
    # the set is what it claims to be: speech that differs from its neighbours (so a swap
    # within a batch shows), nothing heard, a loop that runs into a second 30 s window
    speech = [texts[n] for n in names if n.startswith("speech")]
    assert all(a and b and a != b for a, b in zip(speech, speech[1:])), texts
    assert texts["silence"] == "" and texts["shorter than a frame"] == ""
    assert is_repetition_loop(texts["loop"]), texts["loop"]
    assert max(start for start, *_ in plain_segments[names.index("loop")]) >= 30.0
    for batch_size in BATCH_SIZES:
        batched = engine_of(batch_size).transcribe(arrays)
        assert [t.text for t in batched] == [p[0] for p in plain], f"batch {batch_size}"
        for name, t, (_, logprob, no_speech) in zip(names, batched, plain):
            for got, want in ((t.avg_logprob, logprob), (t.no_speech_prob, no_speech)):
                assert (math.isnan(got) and math.isnan(want)) or abs(got - want) <= CONFIDENCE_TOL, \
                    f"batch {batch_size}, {name}: {t} against plain {logprob}, {no_speech}"
    # all the ears in one batch: the same segments (timestamps, text, tokens) as ear by ear
    assert batch_segments_of(engine.model, arrays) == list(plain_segments)


def test_faster_whisper_batches_equal_ear_by_ear(ears):
    _check_batched_equal_plain(lambda b: make_engine(ASRSettings(batch_size=b)), _faster_plain,
                               _faster_batch_segments, ears)


@pytest.mark.skipif(not CHECKPOINT, reason="set CLIP_OPENAI_CHECKPOINT to an openai-whisper .pt file")
def test_openai_whisper_batches_equal_ear_by_ear(ears):
    _check_batched_equal_plain(
        lambda b: make_engine(ASRSettings(engine="openai-whisper", model=CHECKPOINT, batch_size=b)),
        _openai_plain, _openai_batch_segments, ears)
