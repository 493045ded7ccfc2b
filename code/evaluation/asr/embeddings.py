"""Whisper encoder embeddings: per signal and ear, the last encoder layer mean-pooled.

The input of the ``whisper-head`` predictor (the CLIP2 baseline's kind of
front end). Each ear (mono 16 kHz) is cut to Whisper's first 30 s window, as
``transcribe`` builds it, and encoded; the encoder's output ``[1500, D]`` (one
frame per 20 ms) is averaged over the frames that hold audio,
``ceil(samples / 320)`` capped at 1500, so the zero padding after a short clip
does not dilute it. Vectors are kept in the results folder's store
(``code/evaluation/cache.py``) under the audio's content, the ASR settings and
the code that computes them, one value per signal as it is encoded, so an
interrupted run loses at most the batch it was encoding.
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
from code.evaluation.asr.engines import ASREngine, make_engine, split_ears
from code.evaluation.asr.settings import ENGINE_PACKAGES, ASRSettings
from code.evaluation.cache import Store
from code.evaluation.table import FeatureTable
from code.keys import code_digest, key_of

logger = logging.getLogger(__name__)

EARS = ("left", "right")
ENCODER_HOP = 320  # 16 kHz samples per encoder frame (20 ms: mel hop 160, conv stride 2)
ENCODER_FRAMES = 1500  # encoder frames in Whisper's 30 s window
COLUMN_PREFIX = "enc"


def embedding_columns(dim: int) -> list[str]:
    """The feature names of ``dim``-wide embeddings: ``enc.left.0..dim-1`` then ``enc.right.*``."""
    return [f"{COLUMN_PREFIX}.{ear}.{i}" for ear in EARS for i in range(dim)]


def audio_frames(n_samples_16k: int) -> int:
    """Encoder frames that hold audio for a clip of ``n_samples_16k`` samples at 16 kHz (at least 1)."""
    return max(1, min(ENCODER_FRAMES, math.ceil(n_samples_16k / ENCODER_HOP)))


def embedding_key(audio_digest: str, settings: ASRSettings, sample_rate: int) -> str:
    """The store key of one audio file's vectors: its content, the model (by content
    for a path), engine and compute type, the rate it is read at, and the code."""
    return key_of("embedding", audio=audio_digest, asr=settings.cache_key(), sample_rate=sample_rate,
                  code=code_digest(*EMBEDDING_CODE, packages=ENGINE_PACKAGES[settings.engine]))


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
        TypeError: for an engine that is neither of ``code.evaluation.asr.engines``'s two.
    """
    from code.evaluation.asr.engines import FasterWhisperEngine, OpenAIWhisperEngine

    if isinstance(engine, FasterWhisperEngine):
        encoded = engine.first_window_encodings(ears)
    elif isinstance(engine, OpenAIWhisperEngine):
        encoded = _openai_whisper_encode(engine.model, ears)
    else:
        raise TypeError(f"cannot take encoder output from engine {type(engine).__name__}")
    assert encoded.shape[:2] == (len(ears), ENCODER_FRAMES), f"encoder output {encoded.shape}"
    return np.stack([encoded[i, :audio_frames(len(ear))].mean(axis=0) for i, ear in enumerate(ears)])


# The code that makes the stored vectors (code.keys.code_digest covers these and what they
# call), taken when the module is imported.
EMBEDDING_CODE = (encode_ears, make_engine, split_ears, read_audio)


def _pack(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def _unpack(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


def encoder_embeddings(items: list[tuple[str, Path]], *, settings: ASRSettings, store: Store,
                       sample_rate: int = 44100, recompute: bool = False,
                       desc: str = "Stage 2: Whisper encoder") -> FeatureTable:
    """Per signal, both ears' mean-pooled last-layer Whisper encoder output.

    Args:
        items: ``(signal, audio file)`` pairs; stereo files (a mono file is used for both ears).
        settings: which Whisper (engine, model, compute type, device, batch size).
        store: the results folder's store; vectors are kept under ``embedding_key``
            (the audio's content, not the signal ID: identical audio is encoded once).
        sample_rate: the rate audio is read at before the ears are resampled to 16 kHz
            (the pipeline's ``--sample-rate``; the same path as transcription).
        recompute: encode every signal again (the stored vectors are replaced).

    Returns:
        A ``FeatureTable`` in the order of ``items`` with columns
        ``enc.left.0..D-1, enc.right.0..D-1`` (``embedding_columns(D)``).

    Raises:
        DataError: naming the signal, for a missing audio file (before any encoding), or for
            a cached vector whose width differs from the others.
        ASRError: when the model cannot be loaded.
    """
    keys = []
    for signal, path in items:
        if not Path(path).is_file():
            raise DataError(f"signal {signal}: audio to encode not found: {path}")
        keys.append(embedding_key(store.digest(path), settings, sample_rate))
    vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    todo: dict[str, list[tuple[str, Path]]] = {}  # key -> signals with that audio
    for (signal, path), key in zip(items, keys):
        cached = None if recompute or key in todo else store.get("embedding", key)
        if cached is None or not all(e in cached for e in EARS):
            todo.setdefault(key, []).append((signal, Path(path)))
        else:
            vectors[signal] = (_unpack(cached["left"]), _unpack(cached["right"]))
    why = "--recompute" if recompute else "stored by audio content, ASR settings and code"
    logger.info("%s: %d signal(s) to encode, %d reused (%s)", desc, len(todo), len(vectors), why)
    if todo:
        engine = make_engine(settings)
        batch = max(1, settings.batch_size // 2)  # two ears per signal
        groups = list(todo.items())
        with tqdm(total=len(groups), desc=desc, unit="signal") as bar:
            for start in range(0, len(groups), batch):
                chunk = groups[start: start + batch]
                ears = [ear for _, members in chunk
                        for ear in split_ears(read_audio(members[0][1], sample_rate), sample_rate)]
                pooled = encode_ears(engine, ears)
                for j, (key, members) in enumerate(chunk):
                    left, right = pooled[2 * j], pooled[2 * j + 1]
                    store.put("embedding", key, {"dim": int(left.size), "left": _pack(left),
                                                 "right": _pack(right)})
                    for signal, _ in members:
                        vectors[signal] = (left, right)
                    bar.update()
    signals = [signal for signal, _ in items]
    widths = {signal: v[0].size for signal, v in vectors.items()}
    dim = widths[signals[0]] if signals else 0
    odd = [s for s in signals if widths[s] != dim or vectors[s][1].size != dim]
    if odd:
        raise DataError(f"{store.root}: embeddings of {len(odd)} signal(s) (e.g. {odd[0]}) are not "
                        f"{dim} wide; pass --recompute 2")
    values = np.array([np.concatenate(vectors[s]) for s in signals], dtype=float).reshape(len(signals), 2 * dim)
    return FeatureTable(signals, embedding_columns(dim), values)

