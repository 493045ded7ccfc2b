"""Whisper encoder embeddings: per signal and ear, the last encoder layer mean-pooled.

The input of the ``whisper-head`` predictor (the CLIP2 baseline's kind of
front end). Each ear (mono 16 kHz) is cut to Whisper's first 30 s window, as
``transcribe`` builds it, and encoded; the encoder's output ``[1500, D]`` (one
frame per 20 ms) is averaged over the frames that hold audio,
``ceil(samples / 320)`` capped at 1500, so the zero padding after a short clip
does not dilute it. Vectors are cached per (signal, audio content, ASR
settings) in an append-only JSONL file, one flushed line per signal, so an
interrupted run loses at most the signal it was writing.
"""

from __future__ import annotations

import base64
import logging
import math
from pathlib import Path

import numpy as np
from tqdm import tqdm

from code.data.audio import read_audio
from code.errors import DataError
from code.evaluation.asr import ASREngine, ASRSettings, make_engine, split_ears
from code.evaluation.features import FeatureTable
from code.io_utils import append_jsonl, file_digest, read_jsonl, repair_jsonl, settings_digest

logger = logging.getLogger(__name__)

EARS = ("left", "right")
ENCODER_HOP = 320  # 16 kHz samples per encoder frame (20 ms: mel hop 160, conv stride 2)
ENCODER_FRAMES = 1500  # encoder frames in Whisper's 30 s window
EMBEDDING_VERSION = "last-layer-mean-over-audio-frames:v1"  # change when the pooling changes
COLUMN_PREFIX = "enc"


def embedding_columns(dim: int) -> list[str]:
    """The feature names of ``dim``-wide embeddings: ``enc.left.0..dim-1`` then ``enc.right.*``."""
    return [f"{COLUMN_PREFIX}.{ear}.{i}" for ear in EARS for i in range(dim)]


def audio_frames(n_samples_16k: int) -> int:
    """Encoder frames that hold audio for a clip of ``n_samples_16k`` samples at 16 kHz (at least 1)."""
    return max(1, min(ENCODER_FRAMES, math.ceil(n_samples_16k / ENCODER_HOP)))


def embedding_key(settings: ASRSettings) -> str:
    """What the vectors depend on besides the audio: the model (by content for a path),
    engine, compute type, and the pooling."""
    return settings_digest({**settings.cache_key(), "embedding": EMBEDDING_VERSION})


def _faster_whisper_encode(model, ears: list[np.ndarray]) -> np.ndarray:
    """``[B, 1500, D]`` float32 encoder output of faster-whisper's ``WhisperModel``."""
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.transcribe import get_ctranslate2_storage

    extractor = model.feature_extractor
    windows = []
    for ear in ears:  # as generate_segments builds its first window
        features = extractor(ear)
        content_frames = features.shape[-1] - 1
        windows.append(pad_or_trim(features[:, :min(extractor.nb_max_frames, content_frames)]))
    batch = get_ctranslate2_storage(np.ascontiguousarray(np.stack(windows), dtype=np.float32))
    return np.asarray(np.array(model.model.encode(batch, to_cpu=True)), dtype=np.float32)


def _openai_whisper_encode(model, ears: list[np.ndarray]) -> np.ndarray:
    """``[B, 1500, D]`` float32 encoder output of an openai-whisper model."""
    import torch
    import whisper
    from whisper.audio import N_FRAMES, N_SAMPLES

    mels = []
    for ear in ears:  # as whisper.transcribe builds its first window
        mel = whisper.log_mel_spectrogram(ear, model.dims.n_mels, padding=N_SAMPLES)
        content_frames = mel.shape[-1] - N_FRAMES
        mels.append(whisper.pad_or_trim(mel[:, :min(N_FRAMES, content_frames)], N_FRAMES))
    batch = torch.stack(mels).to(model.device)
    with torch.no_grad():
        out = model.encoder(batch.to(next(model.encoder.parameters()).dtype))
    return out.float().cpu().numpy()


def encode_ears(engine: ASREngine, ears: list[np.ndarray]) -> np.ndarray:
    """Mean-pooled last-layer encoder output of each mono 16 kHz ear: ``[len(ears), D]`` float32.

    Raises:
        TypeError: for an engine that is neither of ``code.evaluation.asr``'s two.
    """
    from code.evaluation.asr import FasterWhisperEngine, OpenAIWhisperEngine

    if isinstance(engine, FasterWhisperEngine):
        encoded = _faster_whisper_encode(engine.model, ears)
    elif isinstance(engine, OpenAIWhisperEngine):
        encoded = _openai_whisper_encode(engine.model, ears)
    else:
        raise TypeError(f"cannot take encoder output from engine {type(engine).__name__}")
    assert encoded.shape[:2] == (len(ears), ENCODER_FRAMES), f"encoder output {encoded.shape}"
    return np.stack([encoded[i, :audio_frames(len(ear))].mean(axis=0) for i, ear in enumerate(ears)])


def _pack(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def _unpack(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


def _load_cache(cache_file: Path, key: str) -> dict[tuple[str, str], dict]:
    repair_jsonl(cache_file)  # a torn last line is dropped, so the next append starts clean
    return {(r.get("signal"), r.get("audio")): r for r in read_jsonl(cache_file)
            if r.get("embedding") == key and all(e in r for e in EARS)}


def encoder_embeddings(items: list[tuple[str, Path]], *, settings: ASRSettings, cache_file: Path,
                       sample_rate: int = 44100, recompute: bool = False,
                       desc: str = "Stage 2: Whisper encoder") -> FeatureTable:
    """Per signal, both ears' mean-pooled last-layer Whisper encoder output.

    Args:
        items: ``(signal, audio file)`` pairs; stereo files (a mono file is used for both ears).
        settings: which Whisper (engine, model, compute type, device, batch size).
        cache_file: the JSONL cache; entries are keyed by signal, the audio file's content
            and ``embedding_key(settings)``, and several settings may share one file.
        sample_rate: the rate audio is read at before the ears are resampled to 16 kHz
            (the pipeline's ``--sample-rate``; the same path as transcription).
        recompute: encode every signal again (new entries are appended; the last wins).

    Returns:
        A ``FeatureTable`` in the order of ``items`` with columns
        ``enc.left.0..D-1, enc.right.0..D-1`` (``embedding_columns(D)``).

    Raises:
        DataError: naming the signal, for a missing audio file (before any encoding), or for
            a cached vector whose width differs from the others.
        ASRError: when the model cannot be loaded.
    """
    cache_file = Path(cache_file)
    key = embedding_key(settings)
    digests = []
    for signal, path in items:
        if not Path(path).is_file():
            raise DataError(f"signal {signal}: audio to encode not found: {path}")
        digests.append(file_digest(path))
    cache = {} if recompute else _load_cache(cache_file, key)
    vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    todo = []
    for (signal, path), digest in zip(items, digests):
        cached = cache.get((signal, digest))
        if cached is None:
            todo.append((signal, Path(path), digest))
        else:
            vectors[signal] = (_unpack(cached["left"]), _unpack(cached["right"]))
    why = "--recompute" if recompute else "cached by audio content and ASR settings"
    logger.info("%s: %d signal(s) to encode, %d reused (%s); cache %s", desc, len(todo),
                len(vectors), why, cache_file)
    if todo:
        engine = make_engine(settings)
        batch = max(1, settings.batch_size // 2)  # two ears per signal
        with tqdm(total=len(todo), desc=desc, unit="signal") as bar:
            for start in range(0, len(todo), batch):
                chunk = todo[start: start + batch]
                ears = [ear for _, path, _ in chunk for ear in split_ears(read_audio(path, sample_rate),
                                                                          sample_rate)]
                pooled = encode_ears(engine, ears)
                for j, (signal, _, digest) in enumerate(chunk):
                    left, right = pooled[2 * j], pooled[2 * j + 1]
                    append_jsonl(cache_file, {"signal": signal, "audio": digest, "embedding": key,
                                              "dim": int(left.size), "left": _pack(left),
                                              "right": _pack(right)})
                    vectors[signal] = (left, right)
                    bar.update()
    signals = [signal for signal, _ in items]
    widths = {signal: v[0].size for signal, v in vectors.items()}
    dim = widths[signals[0]] if signals else 0
    odd = [s for s in signals if widths[s] != dim or vectors[s][1].size != dim]
    if odd:
        raise DataError(f"{cache_file}: embeddings of {len(odd)} signal(s) (e.g. {odd[0]}) are not "
                        f"{dim} wide; delete the file or pass --recompute")
    values = np.array([np.concatenate(vectors[s]) for s in signals], dtype=float).reshape(len(signals), 2 * dim)
    return FeatureTable(signals, embedding_columns(dim), values)

