"""The prescriptions: ``NLR1`` (NAL-R then a compressor, per ear) and ``NALR`` (NAL-R alone,
as a batched torch convolution).

``NLR1`` uses pyclarity's ``NALR`` filter design and the same compressor as pyclarity's
``Compressor`` (re-implemented as a compiled loop: identical arithmetic, far faster; tests
compare the two). ``NALR`` runs on the GPU when there is one.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numba
import numpy as np
import scipy.signal
import torch
from clarity.enhancer.nalr import NALR as PyClarityNALR
from clarity.utils.audiogram import Audiogram

from code.models.audiograms import AUDIOGRAM_FREQUENCIES
from code.models.tensors import level_rows, signal_end, to_numpy
from code.resources import available_cpus

COMPRESSOR_EPS = 1e-8  # pyclarity's Compressor adds this inside the RMS square root


@numba.njit(cache=True, nogil=True)
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


def _nalr_fir(levels: tuple[float, ...], frequencies: tuple[float, ...], nfir: int,
              sample_rate: int) -> np.ndarray:
    audiogram = Audiogram(levels=np.asarray(levels), frequencies=np.asarray(frequencies))
    fir, _ = PyClarityNALR(nfir, sample_rate).build(audiogram)
    return np.asarray(fir, dtype=np.float64)


@dataclass
class NLR1:
    """NAL-R prescription (pyclarity ``NALR``) then a compressor, per ear.

    The NAL-R FIR is linear-phase with a delay of ``nfir // 2`` samples; the
    output is shifted back by exactly that, so it has the input's length and
    timing. Each item is processed up to its last non-zero sample (the output
    after that is the filter's tail, then exact zeros), so zero padding never
    changes an item's output: it is bit-identical alone or in any batch.
    Items run in parallel threads (the FFT and the compiled loop release the GIL).
    """

    sample_rate: int = 44100
    nfir: int = 220
    compressor: CompressorSettings = field(default_factory=CompressorSettings)
    audiogram_frequencies: tuple[float, ...] = AUDIOGRAM_FREQUENCIES
    _filters: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def settings(self) -> dict:
        return {"sample_rate": self.sample_rate, "nfir": self.nfir,
                "compressor": dataclasses.asdict(self.compressor),
                "audiogram_frequencies": [float(f) for f in self.audiogram_frequencies]}

    def nalr_filter(self, levels: tuple[float, ...]) -> np.ndarray:
        """The NAL-R FIR for one audiogram's levels, designed once and then reused."""
        if levels not in self._filters:
            self._filters[levels] = _nalr_fir(levels, tuple(self.audiogram_frequencies),
                                              self.nfir, self.sample_rate)
        return self._filters[levels]

    def process(self, audio: np.ndarray, fir: np.ndarray) -> np.ndarray:
        """One item: float32 ``[2, T]`` -> float32 ``[2, T]``."""
        delay = self.nfir // 2
        n = audio.shape[-1]
        out = np.zeros(audio.shape, dtype=np.float32)
        end = signal_end(audio)
        if end == 0:
            return out
        # Overlap-add FFT convolution equals np.convolve(x, fir) to float precision.
        amplified = scipy.signal.oaconvolve(
            np.ascontiguousarray(audio[:, :end], dtype=np.float32),
            fir.astype(np.float32)[None, :], axes=-1)
        keep = min(n, amplified.shape[-1] - delay)
        for ch in range(audio.shape[0]):
            compressed = self.compressor.compress(amplified[ch], self.sample_rate)
            out[ch, :keep] = compressed[delay: delay + keep]
        return out

    def __call__(self, signal_tensor: torch.Tensor, audiogram_levels: torch.Tensor) -> torch.Tensor:
        audio = to_numpy(signal_tensor)
        rows = level_rows(audiogram_levels, audio.shape[0], len(self.audiogram_frequencies))
        firs = [self.nalr_filter(row) for row in rows]
        threads = min(len(rows), available_cpus())
        if threads > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                out = list(pool.map(self.process, audio, firs))
        else:
            out = [self.process(a, f) for a, f in zip(audio, firs)]
        return torch.from_numpy(np.stack(out)).to(signal_tensor.device)


class NALR(torch.nn.Module):
    """NAL-R alone (pyclarity's filter design), as a batched torch convolution.

    Each item's FIR, designed from its audiogram, filters both of its channels
    in one grouped ``conv1d`` over the batch; the filter's ``nfir // 2`` delay
    is removed, so the output is time-aligned with the input.
    """

    def __init__(self, sample_rate: int = 44100, nfir: int = 220,
                 audiogram_frequencies: tuple[float, ...] = AUDIOGRAM_FREQUENCIES) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.nfir = nfir
        self.audiogram_frequencies = tuple(float(f) for f in audiogram_frequencies)
        self._filters: dict[tuple[float, ...], torch.Tensor] = {}

    def settings(self) -> dict:
        return {"sample_rate": self.sample_rate, "nfir": self.nfir,
                "audiogram_frequencies": list(self.audiogram_frequencies)}

    def _fir(self, levels: tuple[float, ...]) -> torch.Tensor:
        if levels not in self._filters:
            fir = _nalr_fir(levels, self.audiogram_frequencies, self.nfir, self.sample_rate)
            self._filters[levels] = torch.from_numpy(fir[::-1].copy()).float()  # conv1d correlates
        return self._filters[levels]

    def forward(self, signal_tensor: torch.Tensor, audiogram_levels: torch.Tensor) -> torch.Tensor:
        batch, channels, n = signal_tensor.shape
        rows = level_rows(audiogram_levels, batch, len(self.audiogram_frequencies))
        weight = torch.stack([self._fir(row) for row in rows])  # [B, K]
        weight = weight.repeat_interleave(channels, dim=0)[:, None, :].to(signal_tensor.device)
        taps = weight.shape[-1]
        full = torch.nn.functional.conv1d(signal_tensor.reshape(1, batch * channels, n).float(),
                                          weight, padding=taps - 1, groups=batch * channels)
        delay = self.nfir // 2
        return full[0, :, delay: delay + n].reshape(batch, channels, n)
