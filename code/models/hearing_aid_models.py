"""Hearing-aid (enhancement) models.

The model contract: a model is called with a batch of stereo audio
``signal_tensor`` (torch float32 ``[B, 2, T]``; items shorter than ``T`` are
zero-padded after their end) and ``audiogram_levels`` (torch float32
``[B, F]``, each item's listener audiogram in dB HL at the run's audiogram
frequencies, by default ``AUDIOGRAM_FREQUENCIES``), and returns a tensor of
the same shape, time-aligned with the input. A model is a plain function or a
``torch.nn.Module`` (or any class with ``__call__``). Models are looked up by
name in ``MODELS``: to add one, register the class or function with one line.
A registered class is built with ``sample_rate=`` and ``audiogram_frequencies=``
(and the run's ``results_dir=`` and ``tag=``, where trained weights are found) when
its constructor takes them; ``settings()``, when a model has it, returns
what determines its output besides its code (for cache keys).

``NLR1`` is the NAL-R prescription followed by a compressor, computed with
pyclarity's ``NALR`` filter design and the same compressor as pyclarity's
``Compressor`` (re-implemented as a compiled loop: identical arithmetic, far
faster; tests compare the two). ``NALR`` is NAL-R alone as a torch module (a
grouped convolution, one FIR per item; runs on the GPU when there is one).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import logging
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import numba
import numpy as np
import scipy.signal
import torch
from clarity.enhancer.nalr import NALR as PyClarityNALR
from clarity.utils.audiogram import (
    AUDIOGRAM_MILD,
    AUDIOGRAM_MODERATE,
    AUDIOGRAM_REF,
    Audiogram,
)

from code.io_utils import file_digest
from code.resources import available_cpus

logger = logging.getLogger(__name__)

# The CLIP metadata gives only a hearing-loss category per listener. These are
# the audiograms used for each category by default (pyclarity's reference and
# preset audiograms, 125 Hz..16 kHz, dB HL); main.py can override the table.
DEFAULT_AUDIOGRAMS: dict[str, Audiogram] = {
    "No Loss": AUDIOGRAM_REF,
    "Mild": AUDIOGRAM_MILD,
    "Moderate": AUDIOGRAM_MODERATE,
}
AUDIOGRAM_FREQUENCIES: tuple[float, ...] = tuple(float(f) for f in AUDIOGRAM_REF.frequencies)

COMPRESSOR_EPS = 1e-8  # pyclarity's Compressor adds this inside the RMS square root


class EnhancementModel(Protocol):
    """What every model is: audio ``[B, 2, T]`` + levels ``[B, F]`` -> audio ``[B, 2, T]``."""

    def __call__(self, signal_tensor: torch.Tensor, audiogram_levels: torch.Tensor) -> torch.Tensor: ...


def audiogram_from_levels(levels: list[float], frequencies: list[float]) -> Audiogram:
    """Build an Audiogram from plain lists (for config files and the command line)."""
    return Audiogram(levels=np.asarray(levels, dtype=float),
                     frequencies=np.asarray(frequencies, dtype=float))


def audiogram_to_dict(audiogram: Audiogram) -> dict:
    """Plain-list form of an Audiogram, for saved configs and cache keys."""
    return {"levels": [float(x) for x in audiogram.levels],
            "frequencies": [float(x) for x in audiogram.frequencies]}


def common_frequencies(audiograms: dict[str, Audiogram]) -> tuple[float, ...]:
    """The audiogram frequencies (Hz) every entry of the table shares.

    Raises:
        ValueError: naming the categories, when the table mixes frequency sets
            (give every category the same frequencies).
    """
    sets = {category: tuple(float(f) for f in a.frequencies) for category, a in audiograms.items()}
    distinct = set(sets.values())
    if len(distinct) != 1:
        listing = "; ".join(f"{c}: {list(f)}" for c, f in sets.items())
        raise ValueError("the audiogram table mixes frequency sets; models get one level per "
                         f"frequency for every item, so give every category the same frequencies ({listing})")
    return distinct.pop()


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu", torch.float32).numpy()


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


def _level_rows(audiogram_levels: torch.Tensor, batch: int, n_freq: int) -> list[tuple[float, ...]]:
    levels = _to_numpy(torch.as_tensor(audiogram_levels)).astype(np.float64)
    if levels.shape != (batch, n_freq):
        raise ValueError(f"audiogram_levels has shape {levels.shape}; expected ({batch}, {n_freq}): "
                         "one level per audiogram frequency for each item")
    return [tuple(row) for row in levels]


@numba.njit(cache=True, nogil=True)
def _end(audio: np.ndarray) -> int:
    """One past the last non-zero sample over all channels (0 for silence); scans
    back from the end, so it costs only the padding's length."""
    for t in range(audio.shape[1] - 1, -1, -1):
        for ch in range(audio.shape[0]):
            if audio[ch, t] != 0:
                return t + 1
    return 0


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
        end = _end(audio)
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
        audio = _to_numpy(signal_tensor)
        rows = _level_rows(audiogram_levels, audio.shape[0], len(self.audiogram_frequencies))
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
        rows = _level_rows(audiogram_levels, batch, len(self.audiogram_frequencies))
        weight = torch.stack([self._fir(row) for row in rows])  # [B, K]
        weight = weight.repeat_interleave(channels, dim=0)[:, None, :].to(signal_tensor.device)
        taps = weight.shape[-1]
        full = torch.nn.functional.conv1d(signal_tensor.reshape(1, batch * channels, n).float(),
                                          weight, padding=taps - 1, groups=batch * channels)
        delay = self.nfir // 2
        return full[0, :, delay: delay + n].reshape(batch, channels, n)


LYRICAID_BANDS_HZ: tuple[float, ...] = (250.0, 500.0, 1000.0, 1500.0, 2000.0, 3000.0, 4000.0, 6000.0, 8000.0)
LEVEL_CAP_DB = 1.0  # LyricAid's output RMS per signal is at most NLR1's plus this (dB)
PEAK_LIMIT = 0.999  # and its peak at most this (no clipping)
TRAINED_WEIGHTS = "_training/{name}.pt"  # where a results folder keeps a trained model's weights


def weights_stem(model) -> str:
    """The stem of ``model``'s (an instance's or a class's) weights file: its ``weights_name``
    when set, else its class's name."""
    cls = model if inspect.isclass(model) else type(model)
    return getattr(cls, "weights_name", None) or cls.__name__


def trained_weights_path(results_dir: Path | str, name: str, *, tag: str = "") -> Path:
    """Where ``results_dir`` keeps the weights of model class ``name`` trained by a run
    tagged ``tag`` (``--tag``): ``_training/<name>[-<tag>].pt``, so tagged trainings
    never overwrite each other."""
    return Path(results_dir) / TRAINED_WEIGHTS.format(name=f"{name}-{tag}" if tag else name)


def weights_to_load(results_dir: Path | str, name: str, *, tag: str = "") -> Path | None:
    """The weights a run tagged ``tag`` uses: its own (``<name>-<tag>.pt``) when that tag
    was trained, else the untagged ones (so ``--tag`` can still keep other settings apart),
    else None."""
    own, untagged = trained_weights_path(results_dir, name, tag=tag), trained_weights_path(results_dir, name)
    for path in (own, untagged):
        if path.exists():
            return path
    return None


class LyricAid(torch.nn.Module):
    """NAL-R, then audiogram-conditioned band gains and compression, under NLR1's level + 1 dB.

    A hearing aid's own structure, per ear: NAL-R (pyclarity's design, as ``NALR``), then a
    short-time Fourier filterbank (1024-point Hann frames, hop 256) whose bands, centred at
    ``LYRICAID_BANDS_HZ`` (triangles in log frequency), each get a gain in dB
    ``G_k + s_k * (mean level_k - level_k(t))``: a static gain ``G_k`` and a compression slope
    ``s_k`` around the band's energy-weighted mean level (``s_k > 0`` lifts soft frames and
    lowers loud ones, within +-20 dB). ``G`` and ``s`` are linear in the audiogram
    (``levels / 100``, no bias: a 0 dB HL audiogram gets no change); the learnable weights start
    at zero, so an untrained LyricAid is NAL-R, i.e. NLR1's prescription (NLR1's compressor
    does not act at the demo's levels). Finally a level cap, part of the model: each signal's
    output (both ears) is scaled down to at most NLR1's RMS plus ``LEVEL_CAP_DB`` and a peak
    of ``PEAK_LIMIT``, so training cannot buy audibility with level.

    Weights: ``results_dir`` (offered by ``make_model``, with the run's ``tag``) holds the
    trained weights at ``trained_weights_path`` (written by ``python main.py --model LyricAid
    --train [--tag T]``; ``weights_to_load`` says which file a run uses, and the log names
    it); without them the model is untrained (the prescription) and says so. The weights are
    its Stage-1 key (it has no ``settings()``), so trained weights make Stage 1 redo its audio.
    """

    weights_name: str | None = None  # the weights file's name (None: the class's name)

    def __init__(self, sample_rate: int = 44100,
                 audiogram_frequencies: tuple[float, ...] = AUDIOGRAM_FREQUENCIES, *,
                 results_dir: Path | str | None = None, tag: str = "") -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.nalr = NALR(sample_rate, audiogram_frequencies=audiogram_frequencies)
        self.reference = NLR1(sample_rate=sample_rate, audiogram_frequencies=tuple(audiogram_frequencies))
        n_freq, n_bands = len(audiogram_frequencies), len(LYRICAID_BANDS_HZ)
        self.gain = torch.nn.Linear(n_freq, n_bands, bias=False)  # dB / 10 per (dB HL / 100)
        self.slope = torch.nn.Linear(n_freq, n_bands, bias=False)
        torch.nn.init.zeros_(self.gain.weight)
        torch.nn.init.zeros_(self.slope.weight)
        self.n_fft, self.hop = 1024, 256
        bins = torch.fft.rfftfreq(self.n_fft, 1.0 / sample_rate).clamp(min=1.0).log2()
        centres = torch.tensor(LYRICAID_BANDS_HZ).log2()
        weights = torch.zeros(n_bands, bins.shape[0])  # triangles; a partition of unity over bins
        for k in range(n_bands):
            lo = centres[k - 1] if k > 0 else None
            hi = centres[k + 1] if k + 1 < n_bands else None
            up = torch.ones_like(bins) if lo is None else ((bins - lo) / (centres[k] - lo)).clamp(0, 1)
            down = torch.ones_like(bins) if hi is None else ((hi - bins) / (hi - centres[k])).clamp(0, 1)
            weights[k] = torch.where(bins <= centres[k], up, down)
        self.register_buffer("bands", weights, persistent=False)
        self.trained = False
        if results_dir is not None:
            stem = weights_stem(self)
            path = weights_to_load(results_dir, stem, tag=tag)
            if path is not None:
                self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
                self.trained = True
                logger.info("%s: weights %s", type(self).__name__, path)
            else:
                logger.warning("%s finds no trained %s weights at %s: %s runs untrained (NAL-R, the "
                               "prescription); train them with --model %s --train%s", type(self).__name__, stem,
                               trained_weights_path(results_dir, stem, tag=tag), stem, stem,
                               f" --tag {tag}" if tag else "")

    def band_controls(self, audiogram_levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each item's band gains (dB) and compression slopes, ``[B, K]`` each."""
        a = audiogram_levels.float() / 100.0
        return 10.0 * self.gain(a), 0.5 * torch.tanh(self.slope(a))

    def forward(self, signal_tensor: torch.Tensor, audiogram_levels: torch.Tensor) -> torch.Tensor:
        return self.with_reference(signal_tensor, audiogram_levels)[0]

    def with_reference(self, signal_tensor: torch.Tensor,
                       audiogram_levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The aid's output and NLR1's on the same input (its level reference), ``[B, C, T]`` each."""
        batch, channels, n = signal_tensor.shape
        inside = _inside(signal_tensor)
        y = self.nalr(signal_tensor, audiogram_levels) * inside  # [B, C, T], nothing after each end
        gain_db, slope = self.band_controls(audiogram_levels.to(y.device))
        window = torch.hann_window(self.n_fft, device=y.device)
        # n_fft zeros after the end: every frame touching the item exists, whatever the padding.
        padded = torch.nn.functional.pad(y.reshape(batch * channels, n), (0, self.n_fft))
        spec = torch.stft(padded, self.n_fft, self.hop, window=window,
                          center=True, pad_mode="constant", return_complex=True)  # [BC, F, frames]
        bands = self.bands.to(y.device)
        power = torch.einsum("kf,bft->bkt", bands, spec.real ** 2 + spec.imag ** 2)
        level = 10 * torch.log10(power + 1e-20)
        mean_level = (power * level).sum(-1, keepdim=True) / power.sum(-1, keepdim=True).clamp(min=1e-30)
        gain_db = gain_db.repeat_interleave(channels, 0)[:, :, None]
        slope = slope.repeat_interleave(channels, 0)[:, :, None]
        band_db = (gain_db + slope * (mean_level - level)).clamp(-20.0, 20.0)  # [BC, K, frames]
        bin_gain = 10 ** (torch.einsum("kf,bkt->bft", bands, band_db) / 20)
        out = torch.istft(spec * bin_gain, self.n_fft, self.hop, window=window, center=True,
                          length=n + self.n_fft)[:, :n].reshape(batch, channels, n) * inside
        with torch.no_grad():
            reference = self.reference(signal_tensor, audiogram_levels).to(y.device) * inside
        return _peak_limited(_scaled_to(out, reference, LEVEL_CAP_DB, at_most=True)), reference


class LyricAidLevelOnly(LyricAid):
    """A control for ``LyricAid``: NLR1's output scaled, per signal, to the level of trained
    LyricAid's output (RMS over both ears; same peak limit), and nothing else.

    Judged beside ``NLR1`` and ``LyricAid`` (``--models NLR1,LyricAidLevelOnly,LyricAid``),
    its change against NLR1 is what LyricAid's level alone buys (within its cap of NLR1 +
    ``LEVEL_CAP_DB``); LyricAid's change beyond it is what its learned shaping adds. It loads
    LyricAid's weights (``weights_name``) and has nothing of its own to train.
    """

    weights_name = "LyricAid"

    def __init__(self, sample_rate: int = 44100,
                 audiogram_frequencies: tuple[float, ...] = AUDIOGRAM_FREQUENCIES, *,
                 results_dir: Path | str | None = None, tag: str = "") -> None:
        super().__init__(sample_rate, audiogram_frequencies, results_dir=results_dir, tag=tag)
        for parameter in self.parameters():
            parameter.requires_grad_(False)

    def forward(self, signal_tensor: torch.Tensor, audiogram_levels: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            aid, reference = self.with_reference(signal_tensor, audiogram_levels)
            return _peak_limited(_scaled_to(reference, aid, 0.0, at_most=False))


def _inside(signal_tensor: torch.Tensor) -> torch.Tensor:
    """``[B, 1, T]``: True up to each item's end (``_end``), False in its zero padding."""
    n = signal_tensor.shape[-1]
    ends = torch.tensor([_end(a) for a in _to_numpy(signal_tensor)], device=signal_tensor.device)
    return (torch.arange(n, device=signal_tensor.device)[None, :] < ends[:, None])[:, None, :]


def _scaled_to(x: torch.Tensor, reference: torch.Tensor, offset_db: float, *, at_most: bool) -> torch.Tensor:
    """Each item of ``x`` ``[B, C, T]`` scaled to ``reference``'s RMS (both ears) plus
    ``offset_db``; with ``at_most``, only ever scaled down (a cap)."""
    energy = x.double().pow(2).sum(dim=(1, 2)).clamp(min=1e-30)
    ref_energy = reference.detach().double().pow(2).sum(dim=(1, 2))
    gain = 10 ** (offset_db / 20) * (ref_energy / energy).sqrt()
    if at_most:
        gain = gain.clamp(max=1.0)
    return x * gain.to(x.dtype)[:, None, None]


def _peak_limited(x: torch.Tensor) -> torch.Tensor:
    """Each item of ``x`` scaled down, when needed, to a peak of ``PEAK_LIMIT`` (no clipping)."""
    peak = x.detach().abs().amax(dim=(1, 2)).clamp(min=1e-30)
    return x * (PEAK_LIMIT / peak).clamp(max=1.0)[:, None, None]


def identity(signal_tensor: torch.Tensor, audiogram_levels: torch.Tensor) -> torch.Tensor:
    """Returns its input unchanged (the 'no hearing aid' reference)."""
    return signal_tensor


# name -> a model class (built per run) or a model function. Add your model here.
MODELS: dict[str, Callable] = {
    "identity": identity,
    "NLR1": NLR1,
    "NALR": NALR,
    "LyricAid": LyricAid,
    "LyricAidLevelOnly": LyricAidLevelOnly,
}


def _is_factory(entry) -> bool:
    """Classes (and ``functools.partial`` of classes) are built; anything else is the model."""
    target = entry.func if isinstance(entry, functools.partial) else entry
    return inspect.isclass(target)


def make_model(name: str, *, sample_rate: int = 44100,
               audiogram_frequencies: tuple[float, ...] = AUDIOGRAM_FREQUENCIES,
               results_dir: Path | None = None, tag: str = "") -> EnhancementModel:
    """Build the model registered as ``name``.

    A registered class is instantiated, given ``sample_rate`` and
    ``audiogram_frequencies`` (and the run's ``results_dir``, where trained weights are
    kept, and ``tag``, which names them) for those of them its constructor takes; a
    registered function is the model itself.

    Raises:
        ValueError: listing the registered names, for an unknown ``name``.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered models: {sorted(MODELS)}")
    entry = MODELS[name]
    if not _is_factory(entry):
        return entry
    offered = {"sample_rate": sample_rate, "audiogram_frequencies": tuple(audiogram_frequencies),
               "results_dir": results_dir, "tag": tag}
    try:
        params = inspect.signature(entry).parameters
    except (TypeError, ValueError):
        params = {}
    return entry(**{k: v for k, v in offered.items() if k in params})


def training_record(weights: Path) -> dict:
    """The record written beside trained ``weights`` (``<stem>.json``: key, options, curve,
    ...); empty when it is missing or unreadable."""
    record = Path(weights).with_suffix(".json")
    try:
        return json.loads(record.read_text(encoding="utf-8")) if record.exists() else {}
    except ValueError:
        return {}


def trained_weights_used(results_dir: Path | str, name: str, *, tag: str = "") -> dict | None:
    """For a submission's provenance: the trained weights file that the registered model
    ``name`` loads in a run tagged ``tag`` (``weights_to_load``), with its digest and its
    training record (key, options, best epoch); None for a model that loads no weights."""
    entry = MODELS.get(name)
    target = entry.func if isinstance(entry, functools.partial) else entry
    if not (inspect.isclass(target) and issubclass(target, torch.nn.Module)
            and "results_dir" in inspect.signature(target).parameters):
        return None
    path = weights_to_load(results_dir, weights_stem(target), tag=tag)
    if path is None:
        return None
    training = training_record(path)
    return {"file": str(path), "digest": file_digest(path),
            "training": {k: training.get(k) for k in ("key", "settings", "best_epoch")}}


def _weights_digest(module: torch.nn.Module) -> str:
    h = hashlib.blake2b(digest_size=8)
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()


def model_settings(model: EnhancementModel) -> dict:
    """What determines a model's output besides its code, for cache keys and saved configs.

    A model's ``settings()`` when it has one; otherwise its qualified name (a
    plain function's ``repr`` holds a memory address, which would never match
    again), plus a digest of its weights for a ``torch.nn.Module``.
    """
    settings = getattr(model, "settings", None)
    if callable(settings):
        return settings()
    target = model if inspect.isfunction(model) or inspect.isclass(model) else type(model)
    described = {"callable": f"{target.__module__}.{target.__qualname__}"}
    if isinstance(model, torch.nn.Module):
        described["weights"] = _weights_digest(model)
    return described


PROJECT_PACKAGE = "code"  # modules of this project: code.*


def _module_of(obj) -> types.ModuleType | None:
    if isinstance(obj, types.ModuleType):
        return obj
    name = getattr(obj, "__module__", None)
    return sys.modules.get(name) if isinstance(name, str) else None


def _is_project_module(module: types.ModuleType) -> bool:
    return module.__name__.startswith(PROJECT_PACKAGE + ".")


def _code_modules(obj) -> list[types.ModuleType]:
    """The module defining ``obj``, plus every project module reachable from it."""
    start = _module_of(obj)
    if start is None:
        return []
    seen = {start.__name__: start}
    todo = [start]
    while todo:
        module = todo.pop()
        for value in list(vars(module).values()):
            found = _module_of(value)
            if found is not None and _is_project_module(found) and found.__name__ not in seen:
                seen[found.__name__] = found
                todo.append(found)
    return [seen[name] for name in sorted(seen)]


def _code_object_bytes(code: types.CodeType) -> bytes:
    parts = [code.co_code, repr(code.co_names).encode()]
    for const in code.co_consts:
        parts.append(_code_object_bytes(const) if isinstance(const, types.CodeType)
                     else repr(const).encode())
    return b"\0".join(parts)


def _own_code(obj) -> bytes:
    try:
        return inspect.getsource(obj).encode("utf-8")
    except (OSError, TypeError):  # defined without a source file (exec, a REPL)
        pass
    functions = [obj] if inspect.isfunction(obj) else [
        v for v in vars(obj).values() if inspect.isfunction(v)] if inspect.isclass(obj) else []
    return b"".join(_code_object_bytes(f.__code__) for f in functions) or repr(obj).encode()


def model_code_digest(factory) -> str:
    """Hash of the code behind a registered model, for cache keys.

    Rule: the source of the registered class or function itself, plus the full
    source files of the module that defines it and of every project module
    (``code.*``) reachable from that module's globals, transitively (imported
    modules, or classes and functions imported from them). Editing any of those
    files changes the digest, so Stage 1 recomputes; other packages (pyclarity,
    torch) are not hashed.
    """
    target = factory.func if isinstance(factory, functools.partial) else factory
    h = hashlib.blake2b(digest_size=8)
    h.update(_own_code(target))
    for module in _code_modules(target):
        h.update(module.__name__.encode())
        try:
            source = inspect.getsourcefile(module)
        except TypeError:
            source = None
        if source:
            with open(source, "rb") as f:
                h.update(f.read())
    return h.hexdigest()
