"""``LyricAid``, a hearing aid trained end to end for lyrics (``python main.py --model LyricAid
--train``), and ``LyricAidLevelOnly``, its level-only control."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from code.models.audiograms import AUDIOGRAM_FREQUENCIES
from code.models.prescriptions import NALR, NLR1
from code.models.tensors import inside_mask
from code.models.weights import trained_weights_path, weights_stem, weights_to_load

logger = logging.getLogger(__name__)

LYRICAID_BANDS_HZ: tuple[float, ...] = (250.0, 500.0, 1000.0, 1500.0, 2000.0, 3000.0, 4000.0, 6000.0, 8000.0)
LEVEL_CAP_DB = 1.0  # LyricAid's output RMS per signal is at most NLR1's plus this (dB)
PEAK_LIMIT = 0.999  # and its peak at most this (no clipping)
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
        inside = inside_mask(signal_tensor)
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
