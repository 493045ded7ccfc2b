"""Batched first windows for both Whisper engines, finished by each engine's own ``transcribe``.

Whisper transcribes an ear window by window (30 s each); the clips here are
shorter than one window, so the first window is nearly all the work. For a
batch of ears, the first window of every ear is encoded and greedily decoded
in one call; then the engine's own ``transcribe`` runs on each ear with a
stand-in model whose first decoding call returns that ear's batched result
(every other call, and everything else, is the real model). Segmenting,
timestamps, the no-speech skip, later windows and the text therefore come from
the engine's own code, exactly as ear-by-ear transcription makes them.

What batching can change is floating-point rounding: a batched decoder's matrix
products round differently from single ones (the batched encoders here give the
same bits), so confidences move in about the sixth significant digit; the
tokens, and so the text, have been identical on every ear tested
(``tests/test_asr_batching.py``). A batch of one is bit-identical to plain
transcription.

Arrays: each ear is mono 16 kHz float32 ``[T]``.
"""

from __future__ import annotations

import copy
import logging

import numpy as np

from code.evaluation.asr.settings import OFFICIAL_DECODING

logger = logging.getLogger(__name__)

# faster-whisper's transcribe options: the official greedy decoding (one temperature, no
# beam, no sampling) and no voice-activity filter, so every window is decoded.
FASTER_WHISPER_DECODING = {"language": OFFICIAL_DECODING["language"],
                           "temperature": OFFICIAL_DECODING["temperature"],
                           "beam_size": 1, "best_of": 1, "vad_filter": False}
# A short silent ear: transcribed only to learn which prompt and options faster-whisper
# passes to its first decoding call (``_first_call``).
_PROBE_EAR = np.zeros(1600, dtype=np.float32)


class _StandIn:
    """Stands in for a model inside an engine's ``transcribe``: the method ``name``
    answers its first call that ``takes(*args, **kwargs)`` accepts with ``result``;
    later calls, and every other attribute, are the real model's."""

    def __init__(self, model, name: str, takes, result) -> None:
        self._model, self._name, self._takes, self._result = model, name, takes, result
        self._used = False

    def __getattr__(self, name):
        real = getattr(self._model, name)
        if name != self._name:
            return real

        def method(*args, **kwargs):
            if not self._used and self._takes(*args, **kwargs):
                self._used = True
                return self._result
            return real(*args, **kwargs)

        return method


# --- faster-whisper ---------------------------------------------------------------------

class _Probed(Exception):
    """Raised at the probe's first decoding call, carrying its prompts and options."""


class _StopAtDecode:
    """Stands in for CTranslate2's Whisper inside the probe: stops at ``generate``."""

    def __init__(self, model) -> None:
        self._model = model

    def __getattr__(self, name):
        return getattr(self._model, name)

    def generate(self, features, prompts, **options):
        raise _Probed(prompts, options)


def faster_whisper_windows(model, ears: list[np.ndarray]) -> np.ndarray:
    """``[B, n_mels, 3000]`` float32: the log-mel features of every ear's first 30 s
    window, built as faster-whisper's ``generate_segments`` builds it (the features of
    the whole ear, the first ``nb_max_frames`` of its content, zero-padded)."""
    from faster_whisper.audio import pad_or_trim

    extractor = model.feature_extractor
    windows = []
    for ear in ears:
        features = extractor(ear)
        content_frames = features.shape[-1] - 1  # generate_segments' count (the last frame is padding)
        windows.append(pad_or_trim(features[:, :min(extractor.nb_max_frames, content_frames)]))
    return np.ascontiguousarray(np.stack(windows), dtype=np.float32)


def _first_call(model) -> tuple[list, dict]:
    """The prompts and options faster-whisper's ``transcribe`` passes to CTranslate2's
    ``generate`` for a first window, read off a probe (not restated from its code).

    The probe transcribes a short silent ear with ``encode`` answering nothing and a
    decoder that stops at its first call, so nothing is computed. With the options here
    a first window's prompt is the start-of-transcript sequence whatever the ear holds
    (no earlier text, prefix or hot words), so one probe serves every ear; each ear's
    stand-in checks that its own first call asks for the same.
    """
    probe = copy.copy(model)  # a shallow copy: the same CTranslate2 model, extractor and tokenizer
    probe.encode = lambda features: None
    probe.model = _StopAtDecode(model.model)
    try:
        list(probe.transcribe(_PROBE_EAR, **FASTER_WHISPER_DECODING)[0])
    except _Probed as probed:
        prompts, options = probed.args
        return prompts, options
    raise AssertionError("faster-whisper's transcribe made no decoding call for the probe")


def faster_whisper_transcribe(model, ears: list[np.ndarray]) -> list[list]:
    """Each ear's faster-whisper segments, the first windows encoded and decoded in one batch.

    ``model`` is a ``faster_whisper.WhisperModel``; the batch's encoder output stays on
    its device. Each ear is then transcribed by ``model.transcribe`` on a shallow copy of
    the model: its first ``encode`` (checked to be of this ear's first window) returns a
    placeholder, and its CTranslate2 decoder answers the call that receives the
    placeholder (checked to ask for the batch's prompt and options) with the ear's
    batched result. An ear with no audio frames makes neither call.

    Returns:
        One list of ``faster_whisper.transcribe.Segment`` per ear, in order.
    """
    from faster_whisper.transcribe import get_ctranslate2_storage

    prompts, options = _first_call(model)
    windows = faster_whisper_windows(model, ears)
    encoded = model.model.encode(get_ctranslate2_storage(windows), to_cpu=False)
    results = model.model.generate(encoded, prompts * len(ears), **options)
    logger.debug("faster-whisper: first windows of %d ears decoded in one batch", len(ears))
    out = []
    for ear, window, result in zip(ears, windows, results, strict=True):
        placeholder = object()  # stands for this ear's first-window encoder output
        pending = [placeholder]

        def encode(features, window=window, pending=pending):
            if not pending:  # later windows: the real encoder
                return model.encode(features)
            assert np.array_equal(features, window), "faster-whisper's first window is not the batch's"
            return pending.pop()

        def first_window(features, ear_prompts, placeholder=placeholder, **ear_options):
            if features is not placeholder:
                return False
            assert (ear_prompts, ear_options) == (prompts, options), (
                f"faster-whisper decodes a first window with {ear_prompts}, {ear_options}; "
                f"the batch with {prompts}, {options}")
            return True

        view = copy.copy(model)
        view.encode = encode
        view.model = _StandIn(model.model, "generate", first_window, [result])
        out.append(list(view.transcribe(ear, **FASTER_WHISPER_DECODING)[0]))
    return out


# --- openai-whisper ---------------------------------------------------------------------

def openai_first_windows(model, ears: list[np.ndarray]):
    """``[B, n_mels, 3000]`` float32 tensor on ``model.device``: every ear's first 30 s
    window of log-mel features, as ``whisper.transcribe`` builds it."""
    import torch
    import whisper
    from whisper.audio import N_FRAMES, N_SAMPLES

    windows = []
    for ear in ears:
        mel = whisper.log_mel_spectrogram(ear, model.dims.n_mels, padding=N_SAMPLES)
        content_frames = mel.shape[-1] - N_FRAMES  # transcribe's count (the rest is padding)
        windows.append(whisper.pad_or_trim(mel[:, :min(N_FRAMES, content_frames)], N_FRAMES))
    return torch.stack(windows).to(model.device, torch.float32)


def openai_transcribe(model, ears: list[np.ndarray]) -> list[dict]:
    """Each ear's ``whisper.transcribe`` result (official options), the first windows
    decoded in one batched ``whisper.decode`` call on ``model.device``.

    ``whisper.transcribe`` then runs on each ear with a stand-in model whose ``decode``
    answers the first call for this ear's first window (the same features, no prompt,
    the batch's options) with the ear's batched result.

    Returns:
        One ``whisper.transcribe`` result dict (``text``, ``segments``, ...) per ear, in order.
    """
    import torch
    import whisper

    options = whisper.DecodingOptions(prompt=[], **OFFICIAL_DECODING)
    windows = openai_first_windows(model, ears)
    results = whisper.decode(model, windows, options)
    logger.debug("openai-whisper: first windows of %d ears decoded in one batch", len(ears))
    out = []
    for ear, window, result in zip(ears, windows, results, strict=True):
        def first_window(segment, ear_options, window=window):
            if ear_options != options:  # a later window (it has a prompt) or other options
                return False
            assert torch.equal(segment, window), "whisper.transcribe's first window is not the batch's"
            return True

        out.append(whisper.transcribe(_StandIn(model, "decode", first_window, result), ear,
                                      **OFFICIAL_DECODING))
    return out
