"""A differentiable stand-in for HAAQI while training: how far an aid's output departs, band by
band and frame by frame, from the listener's NAL-R prescription of the same audio.

HAAQI as the report computes it (``code.evaluation.quality.aid_quality``) compares the output
with the unprocessed audio through the listener's NAL-R. ``spectral_departure`` compares the
same two signals in a cheap, differentiable way: both through one short-time Fourier transform
(2048-point Hann frames, hop 512), the power summed in ``N_BANDS`` log-spaced bands from 80 Hz
to 16 kHz (triangles, as HAAQI's 32 auditory bands cover that range), in dB with a floor
``FLOOR_DB`` below the reference's loudest band-frame (silence does not count), and the mean
squared difference in units of (10 dB)^2. 0 is the prescription itself; more is further from
it. ``benchmarks/quality_guard.py`` measures how well it ranks signals by HAAQI.
"""

from __future__ import annotations

import torch

N_FFT, HOP = 2048, 512
N_BANDS = 32
LOW_HZ, HIGH_HZ = 80.0, 16000.0
FLOOR_DB = 60.0  # band-frames more than this below the reference's loudest are at the floor


def band_matrix(sample_rate: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``[N_BANDS, N_FFT // 2 + 1]`` triangular weights in log frequency."""
    bins = torch.fft.rfftfreq(N_FFT, 1.0 / sample_rate, device=device).clamp(min=1.0).log2()
    edges = torch.linspace(torch.log2(torch.tensor(LOW_HZ)), torch.log2(torch.tensor(HIGH_HZ)), N_BANDS + 2,
                           device=device)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return torch.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)).clamp(min=0.0)


def band_levels_db(x: torch.Tensor, bands: torch.Tensor) -> torch.Tensor:
    """``[N, T]`` -> ``[N, N_BANDS, frames]``: band power in dB (re 1)."""
    window = torch.hann_window(N_FFT, device=x.device)
    spec = torch.stft(x.float(), N_FFT, HOP, window=window, center=True, pad_mode="constant",
                      return_complex=True)
    power = torch.einsum("kf,nft->nkt", bands, spec.real ** 2 + spec.imag ** 2)
    return 10 * torch.log10(power + 1e-12)


def spectral_departure(output: torch.Tensor, reference: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Mean squared band-level difference, in (10 dB)^2, of ``output`` from ``reference``
    (``[B, C, T]`` each; the reference is the unprocessed audio through the listener's NAL-R,
    without gradients): ``[B]``, averaged over channels, bands and frames."""
    batch, channels, n = output.shape
    bands = band_matrix(sample_rate, output.device)
    out_db = band_levels_db(output.reshape(batch * channels, n), bands)
    ref_db = band_levels_db(reference.reshape(batch * channels, n).to(output.device), bands)
    floor = ref_db.amax(dim=(1, 2), keepdim=True) - FLOOR_DB
    diff = (torch.maximum(out_db, floor) - torch.maximum(ref_db, floor)) / 10.0
    return (diff ** 2).mean(dim=(1, 2)).reshape(batch, channels).mean(dim=1)
