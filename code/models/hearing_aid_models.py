"""Hearing-aid (enhancement) models.

Every model has the same shape: it is called with the stereo audio the
listener would hear (float32 ``[2, samples]``) and the listener's audiogram,
and returns processed audio of exactly the same shape, time-aligned with the
input. Models are looked up by name in ``MODELS``; to add one, write a class
(or a function) with that call signature and add one line to ``MODELS``.

``NLR1`` is the NAL-R prescription followed by a compressor, computed with
pyclarity's ``NALR`` filter design and the same compressor as pyclarity's
``Compressor`` (re-implemented as a compiled loop: identical arithmetic, about
two orders of magnitude faster; tests compare the two).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numba
import numpy as np
import scipy.signal
from clarity.enhancer.nalr import NALR
from clarity.utils.audiogram import (
    AUDIOGRAM_MILD,
    AUDIOGRAM_MODERATE,
    AUDIOGRAM_REF,
    Audiogram,
)

logger = logging.getLogger(__name__)

# The CLIP metadata gives only a hearing-loss category per listener. These are
# the audiograms used for each category by default (pyclarity's reference and
# preset audiograms, 125 Hz..16 kHz, dB HL); main.py can override the table.
DEFAULT_AUDIOGRAMS: dict[str, Audiogram] = {
    "No Loss": AUDIOGRAM_REF,
    "Mild": AUDIOGRAM_MILD,
    "Moderate": AUDIOGRAM_MODERATE,
}

COMPRESSOR_EPS = 1e-8  # pyclarity's Compressor adds this inside the RMS square root


class EnhancementModel(Protocol):
    """What every model is: audio ``[2, T]`` + audiogram -> audio ``[2, T]``."""

    def __call__(self, audio: np.ndarray, audiogram: Audiogram) -> np.ndarray: ...


def audiogram_from_levels(levels: list[float], frequencies: list[float]) -> Audiogram:
    """Build an Audiogram from plain lists (for config files and the command line)."""
    return Audiogram(levels=np.asarray(levels, dtype=float),
                     frequencies=np.asarray(frequencies, dtype=float))


def audiogram_to_dict(audiogram: Audiogram) -> dict:
    """Plain-list form of an Audiogram, for saved configs and cache keys."""
    return {"levels": [float(x) for x in audiogram.levels],
            "frequencies": [float(x) for x in audiogram.frequencies]}


@numba.njit(cache=True)
def _compress(signal: np.ndarray, win_len: int, eps: float, threshold: float,
              attenuation: float, attack: float, release: float,
              makeup_gain: float) -> np.ndarray:
    """pyclarity ``Compressor.process`` in one pass.

    The RMS is taken over the last ``win_len`` samples (zeros before the
    start) as a running sum instead of a full convolution; the gain follows
    the same per-sample recursion.
    """
    n = signal.shape[0]
    out = np.empty(n)
    acc = 0.0
    curr = 1.0
    for i in range(n):
        acc += signal[i] * signal[i]
        if i >= win_len:
            acc -= signal[i - win_len] * signal[i - win_len]
        r = np.sqrt(max(acc, 0.0) / win_len + eps)
        if r > threshold:
            target = r * attenuation + (1.0 - attenuation) * threshold
            curr = curr * (1.0 - attack) + target * attack
        else:
            curr = release + curr * (1.0 - release)
        out[i] = signal[i] * curr * makeup_gain
    return out


@dataclass(frozen=True)
class CompressorSettings:
    """pyclarity ``Compressor`` parameters (defaults: the Clarity/Cadenza baselines)."""

    threshold: float = 0.35
    attenuation: float = 0.1
    attack: float = 50.0  # ms
    release: float = 1000.0  # ms
    rms_buffer_size: float = 0.064  # s
    makeup_gain: float = 1.0

    def compress(self, signal: np.ndarray, sample_rate: float) -> np.ndarray:
        """Compress a 1-D float64 signal exactly as pyclarity's ``Compressor.process``."""
        win_len = int(self.rms_buffer_size * sample_rate)
        attack = (1.0 / (self.attack / 1000.0)) / sample_rate
        release = (1.0 / (self.release / 1000.0)) / sample_rate
        signal = np.ascontiguousarray(signal, dtype=np.float64)
        return _compress(signal, win_len, COMPRESSOR_EPS, self.threshold,
                         self.attenuation, attack, release, self.makeup_gain)


@dataclass
class NLR1:
    """NAL-R prescription (pyclarity ``NALR``) then a compressor, per ear.

    The NAL-R FIR is linear-phase with a delay of ``nfir // 2`` samples; the
    output is shifted back by exactly that, so it has the input's length and
    timing.
    """

    sample_rate: int = 44100
    nfir: int = 220
    compressor: CompressorSettings = field(default_factory=CompressorSettings)
    _filters: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def settings(self) -> dict:
        return {"sample_rate": self.sample_rate, "nfir": self.nfir,
                "compressor": dataclasses.asdict(self.compressor)}

    def nalr_filter(self, audiogram: Audiogram) -> np.ndarray:
        """The NAL-R FIR for ``audiogram``, designed once and then reused."""
        key = (tuple(np.asarray(audiogram.levels, float)),
               tuple(np.asarray(audiogram.frequencies, float)))
        if key not in self._filters:
            fir, _ = NALR(self.nfir, self.sample_rate).build(audiogram)
            self._filters[key] = fir
        return self._filters[key]

    def __call__(self, audio: np.ndarray, audiogram: Audiogram) -> np.ndarray:
        fir = self.nalr_filter(audiogram)
        delay = self.nfir // 2
        n = audio.shape[-1]
        # Overlap-add FFT convolution equals np.convolve(x, fir) to float precision.
        amplified = scipy.signal.oaconvolve(
            np.asarray(audio, dtype=np.float32), fir.astype(np.float32)[None, :], axes=-1)
        out = np.empty(audio.shape, dtype=np.float32)
        for ch in range(audio.shape[0]):
            compressed = self.compressor.compress(amplified[ch], self.sample_rate)
            out[ch] = compressed[delay: delay + n]
        return out


@dataclass
class Identity:
    """Returns its input unchanged (the 'no hearing aid' reference)."""

    sample_rate: int = 44100

    def settings(self) -> dict:
        return {}

    def __call__(self, audio: np.ndarray, audiogram: Audiogram) -> np.ndarray:
        return np.asarray(audio, dtype=np.float32)


# name -> factory taking the sample rate as keyword. Add your model here.
MODELS: dict[str, Callable[..., EnhancementModel]] = {
    "identity": Identity,
    "NLR1": NLR1,
}


def make_model(name: str, *, sample_rate: int = 44100) -> EnhancementModel:
    """Build the model registered as ``name``.

    Raises:
        ValueError: listing the registered names, for an unknown ``name``.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered models: {sorted(MODELS)}")
    return MODELS[name](sample_rate=sample_rate)


def model_settings(model: EnhancementModel) -> dict:
    """What determines a model's output, for cache keys and saved configs."""
    settings = getattr(model, "settings", None)
    return settings() if callable(settings) else {"callable": repr(model)}
