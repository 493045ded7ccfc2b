"""The project's fast MSBG (and so pyclarity's ``Ear.process``) in torch: batched,
on CPU or CUDA, differentiable with respect to its input.

Same stages as ``code.hearing_loss.fast.simulate_ear`` and the same filters (the
``EarDesign`` of ``code.hearing_loss.design``): level calibration, outer/middle-ear
FIR, temporal smearing, the gammatone cochlea with recruitment, and the way
back to free field. What changes is how the recursive (IIR) filters are
computed: each one is applied as an FFT convolution with its impulse
response, computed once per design with scipy in float64 and cut where the
rest of it holds less than ``IR_TOLERANCE`` of its absolute sum. ``filtfilt``'s
initial conditions (``lfilter_zi`` scaled by the first input sample) add a
known transient, the filter's zero-input response from ``lfilter_zi``, computed
and cut the same way. Everything is differentiable: the level gain follows
the input (only the choice of active frames is a step, with no gradient), as
do the smearing, the envelopes (``abs``) and the recruitment (clipping has no
gradient where it clips).

Only the cochlea (the costly part) may run in float32 (``cochlea_dtype``);
by default all runs in float64, whatever the input's dtype (see
``TorchEar.forward`` for why). Outputs agree with ``simulate_ear`` to about
1e-11 in float64 on full-scale audio (tests/test_msbg_torch.py,
benchmarks/msbg_torch.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.fft
import scipy.signal
import torch
import torch.nn.functional as F

from code.hearing_loss.design import ENVELOPE_PADLEN, MSBG_SAMPLE_RATE, EarDesign
from code.hearing_loss.fast import FFT_SIZE, FRAME_SIZE, MIN_SAMPLES, RMS_REL_DB, SHIFT, WIN_SECS
from code.hearing_loss.kernels import ENV_FLOOR
from code.resources import torch_device

IR_TOLERANCE = 1e-15  # an impulse response is cut where its tail's absolute sum falls below this share
BAND_CHUNK = 6  # gammatone bands filtered at once (memory: a few [ears, chunk, T] tensors)
_IR_MAX = 1 << 16  # impulse responses are computed this long, then cut (none needs half of it)

__all__ = ["TorchEar", "simulate_torch", "simulate_numpy", "torch_ear"]


class TorchEar(torch.nn.Module):
    """``simulate_ear`` for one design, on ``[..., T]`` tensors (float32 or float64).

    The filters are buffers in float64; ``forward`` runs on its input's device
    (buffers are moved on use, so moving the module is optional), in float64
    unless asked to run the cochlea in float32, and returns its input's dtype.
    """

    def __init__(self, design: EarDesign):
        super().__init__()
        self.design = design
        self.register_buffer("fir_in", torch.from_numpy(design.fir_in.copy()))
        self.register_buffer("fir_out", torch.from_numpy(design.fir_out.copy()))
        self.register_buffer("f_smear", None if design.f_smear is None
                             else torch.from_numpy(np.ascontiguousarray(design.f_smear.T)))
        # Bands in groups that either all have the high-pass or all lack it.
        self.chunks: list[tuple[list[int], bool]] = []
        for hp in (False, True):
            bands = [k for k in range(design.gt_b.shape[0]) if bool(design.use_hp[k]) == hp]
            self.chunks += [(bands[i:i + BAND_CHUNK], hp) for i in range(0, len(bands), BAND_CHUNK)]
        gt = [_impulse_response(design.gt_b[k], design.gt_a[k], stages=4) for k in range(len(design.gt_b))]
        hp = [_impulse_response(design.hp_b[k], design.hp_a[k]) if design.use_hp[k] else np.zeros(1)
              for k in range(len(design.gt_b))]
        env = [_impulse_response(design.env_b[k], design.env_a[k]) for k in range(len(design.gt_b))]
        transient = [_zero_input_response(design.env_b[k], design.env_a[k], design.env_zi[k])
                     for k in range(len(design.gt_b))]
        self.register_buffer("h_gt", _stack(gt))
        self.register_buffer("h_hp", _stack(hp))
        self.register_buffer("h_env", _stack(env))
        self.register_buffer("env_transient", _stack(transient))
        self.register_buffer("env_max", torch.from_numpy(design.env_max.astype(np.float64)))
        self.register_buffer("exponent", torch.from_numpy(design.exponent.astype(np.float64)))
        self.delays = [int(d) for d in design.delays]
        self.recombination_gain = float(design.recombination_gain)

    def forward(self, x: torch.Tensor, *, cochlea_dtype: torch.dtype | None = torch.float64) -> torch.Tensor:
        """Simulated ears for ears ``x`` (float ``[..., T]``, ``T >= MIN_SAMPLES``), same shape and dtype.

        The stages up to smearing always run in float64: smearing takes square roots
        of smeared powers that can be near zero, so float32 rounding anywhere before
        it grows to errors of about 1e-3 at full scale. The cochlea and the way back
        run in ``cochlea_dtype`` (None: ``x``'s dtype). Float64 is the default:
        recruitment raises each band's envelope, clipped at a floor of 1e-9, to a
        power below 1, so where the (elliptic, overshooting) envelope filter dips
        near that floor inside a loud band the output is ill-conditioned; in float32
        it was 1.1e-4 off at full scale on one of six demo signals (3e-6 elsewhere).

        Digitally silent ears come back silent (MSBG's level is undefined there).

        Raises:
            ValueError: when ``x`` is not floating point or is shorter than ``MIN_SAMPLES``.
        """
        if not x.is_floating_point() or x.ndim < 1 or x.shape[-1] < MIN_SAMPLES:
            raise ValueError(f"MSBG needs float ears [..., T] with T >= {MIN_SAMPLES}, "
                             f"got {x.dtype} of shape {tuple(x.shape)}")
        lead, n, dtype = x.shape[:-1], x.shape[-1], x.dtype
        x = x.reshape(-1, n).to(torch.float64)
        x = x * _level_gain(x)[:, None]
        x = _fir(self.fir_in.to(x.device), x, n)
        if self.f_smear is not None:
            x = _smear(x, self.f_smear.to(x.device))
        x = self._cochlea(x.to(cochlea_dtype or dtype)) * self.recombination_gain
        return _fir(self._buf(self.fir_out, x), x[:, :n], n).reshape(*lead, n).to(dtype)

    def _cochlea(self, x: torch.Tensor) -> torch.Tensor:
        """Sum over bands of the recruited gammatone outputs of ``x`` ``[E, L]``."""
        length = x.shape[-1]
        pad = ENVELOPE_PADLEN
        ext_len = length + 2 * pad
        longest = max(self.h_gt.shape[-1], self.h_hp.shape[-1], self.h_env.shape[-1])
        n_fft = scipy.fft.next_fast_len(ext_len + longest, real=True)
        spectrum = torch.fft.rfft(x, n_fft)[:, None, :]
        transient = self._buf(self.env_transient, x)
        transient = F.pad(transient, (0, max(0, ext_len - transient.shape[-1])))[:, :ext_len]
        total = torch.zeros_like(x)
        for bands, hp in self.chunks:
            idx = torch.tensor(bands, device=x.device)
            h_gt = torch.fft.rfft(self._buf(self.h_gt, x)[idx], n_fft)
            y = torch.fft.irfft(spectrum * h_gt, n_fft)[..., :length]  # [E, C, L]
            # Time advance by each band's delay, zeros after the end.
            y = torch.stack([F.pad(y[:, j, d:], (0, d)) for j, d in
                             enumerate(self.delays[k] for k in bands)], dim=1)
            if hp:
                h_hp = torch.fft.rfft(self._buf(self.h_hp, x)[idx], n_fft)
                y = torch.fft.irfft(torch.fft.rfft(y, n_fft) * h_hp, n_fft)[..., :length]
            # filtfilt of the rectified band: odd extension, lfilter_zi initial states.
            e = y.abs()
            ext = torch.cat([2 * e[..., :1] - e[..., 1:pad + 1].flip(-1), e,
                             2 * e[..., -1:] - e[..., -pad - 1:-1].flip(-1)], dim=-1)
            h_env = torch.fft.rfft(self._buf(self.h_env, x)[idx], n_fft)
            zi_response = transient[idx]
            fwd = torch.fft.irfft(torch.fft.rfft(ext, n_fft) * h_env, n_fft)[..., :ext_len]
            fwd = fwd + ext[..., :1] * zi_response
            bwd = torch.fft.irfft(torch.fft.rfft(fwd.flip(-1), n_fft) * h_env, n_fft)[..., :ext_len]
            bwd = bwd + fwd[..., -1:] * zi_response
            env = bwd.flip(-1)[..., pad:pad + length]
            # Recruitment: expand the band by its clipped envelope.
            env_max = self._buf(self.env_max, x)[idx][:, None]
            exponent = self._buf(self.exponent, x)[idx][:, None]
            ratio = (torch.minimum(env, env_max).clamp(min=ENV_FLOOR) / env_max) ** exponent
            total = total + (y * ratio).sum(dim=1)
        return total

    @staticmethod
    def _buf(buffer: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return buffer.to(device=like.device, dtype=like.dtype)


def torch_ear(design: EarDesign) -> TorchEar:
    """The ``TorchEar`` of ``design`` (built once per design object, last 16 kept)."""
    key = id(design)
    if key not in _EARS or _EARS[key][0] is not design:
        while len(_EARS) >= 16:
            _EARS.pop(next(iter(_EARS)))
        _EARS[key] = (design, TorchEar(design))
    return _EARS[key][1]


_EARS: dict[int, tuple[EarDesign, TorchEar]] = {}


def simulate_torch(x: torch.Tensor, designs: Sequence[EarDesign | None], *,
                   lengths: Sequence[int] | None = None,
                   cochlea_dtype: torch.dtype | None = torch.float64) -> torch.Tensor:
    """Both ears of each item through its listener's MSBG.

    Parameters:
        x: float ``[B, 2, T]`` (float32 or float64, any device); may require grad.
        designs: one ``EarDesign`` per item (``ear_design(audiogram)``), or None
            for an item passed through unchanged (no hearing loss).
        lengths: each item's length (zero-padded after it); None: all ``T``.
            Each item is simulated at its own length, as ``simulate_ear`` would.
        cochlea_dtype: what the cochlea computes in (``TorchEar.forward``); None: ``x``'s.

    Returns:
        ``[B, 2, T]`` in ``x``'s dtype and device, zero after each item's length.

    Raises:
        ValueError: when ``designs`` or ``lengths`` do not have one entry per item,
            or a length is outside ``MIN_SAMPLES..T``.
    """
    batch, t = x.shape[0], x.shape[-1]
    lengths = [t] * batch if lengths is None else [int(n) for n in lengths]
    if len(designs) != batch or len(lengths) != batch:
        raise ValueError(f"{batch} items but {len(designs)} designs and {len(lengths)} lengths")
    if any(not MIN_SAMPLES <= n <= t for n in lengths):
        raise ValueError(f"item lengths must lie in {MIN_SAMPLES}..{t}, got {lengths}")
    groups: dict[tuple[int, int], list[int]] = {}
    for b, (design, n) in enumerate(zip(designs, lengths)):
        if design is not None:
            groups.setdefault((id(design), n), []).append(b)
    rows = list(x.unbind(0))
    for (_, n), items in groups.items():
        ear = torch_ear(designs[items[0]])
        heard = ear(torch.stack([x[b, ..., :n] for b in items]), cochlea_dtype=cochlea_dtype)
        for b, h in zip(items, heard):
            rows[b] = F.pad(h, (0, t - n))
    return torch.stack(rows)


def simulate_numpy(audio: np.ndarray, design: EarDesign, *, device: str | None = None) -> np.ndarray:
    """Stereo audio (float ``[C, T]``) through ``design``'s MSBG in torch (float32 in and out).

    Runs on ``device`` (None: CUDA when available, else the CPU); returns float32 ``[C, T]``.
    """
    device = torch_device(device)
    with torch.no_grad():
        x = torch.as_tensor(np.asarray(audio, dtype=np.float32), device=device)
        return torch_ear(design)(x).cpu().numpy()


def _level_gain(x: torch.Tensor) -> torch.Tensor:
    """``msbg_fast._level_gain`` per row of ``x`` ``[E, n]`` (float64): the RMS of the
    frames within 12 dB of the overall RMS set to the overall RMS. The gain follows
    the input; which frames are active is a step (no gradient). Silent rows get 1."""
    n = x.shape[-1]
    win = round(WIN_SECS * MSBG_SAMPLE_RATE)
    power = (x**2).mean(dim=-1)
    silent = power == 0
    power = torch.where(silent, torch.ones_like(power), power)
    frame_power = (x[:, : (n // win) * win].reshape(x.shape[0], -1, win) ** 2).sum(dim=-1) / win
    with torch.no_grad():
        threshold_db = (20 * torch.log10(torch.sqrt(power)) + RMS_REL_DB).clamp(min=-80.0)
        non_zero = 10 ** ((threshold_db - 30) / 10)
        active = 10 * torch.log10(non_zero[:, None] + frame_power) >= threshold_db[:, None]
    active_power = (frame_power * active).sum(dim=-1) / active.sum(dim=-1).clamp(min=1)
    active_power = torch.where(silent, torch.ones_like(active_power), active_power)
    return torch.sqrt(power / active_power)


def _fir(b: torch.Tensor, x: torch.Tensor, n: int) -> torch.Tensor:
    """First ``n`` samples of ``lfilter(b, 1, x)`` per row, by FFT convolution."""
    n_fft = scipy.fft.next_fast_len(n + b.shape[-1] - 1, real=True)
    return torch.fft.irfft(torch.fft.rfft(x[..., :n], n_fft) * torch.fft.rfft(b, n_fft), n_fft)[..., :n]


def _smear(x: torch.Tensor, f_smear_t: torch.Tensor) -> torch.Tensor:
    """``msbg_fast.smear`` per row of ``x`` ``[E, n]`` (``f_smear_t`` is ``f_smear.T``,
    same dtype), with its framing quirks; output ``[E, 64 * (ceil(n / 64) + 3)]``."""
    rows, n = x.shape
    n_frames = math.ceil(n / SHIFT)
    overlaps = FRAME_SIZE // SHIFT
    stream_len = SHIFT * (n_frames - 1) + FRAME_SIZE
    rest = x[:, SHIFT:][:, : stream_len - FRAME_SIZE]
    stream = torch.cat([x[:, :FRAME_SIZE], rest], dim=-1)
    stream = F.pad(stream, (0, stream_len - stream.shape[-1]))
    i = torch.arange(1, FRAME_SIZE + 1, dtype=torch.float64, device=x.device)
    window = ((0.5 - 0.5 * torch.cos(2 * math.pi * (i - 0.5) / FRAME_SIZE)) / math.sqrt(1.5)).to(x.dtype)
    frames = stream.unfold(-1, FRAME_SIZE, SHIFT)  # [E, n_frames, 256]
    spectrum = torch.fft.rfft(frames * window, FFT_SIZE)  # [E, n_frames, 257]
    kept = spectrum[..., :-1]
    re, im = kept.real, kept.imag
    smeared = (re**2 + im**2) @ f_smear_t
    mag = torch.sqrt(re**2 + im**2)
    mag = torch.where(mag == 0, torch.ones_like(mag), mag)
    root = torch.sqrt(smeared.abs().clamp(min=torch.finfo(x.dtype).tiny))
    positive = smeared >= 0
    # sqrt(smeared + 0j) with the old phase: a negative value turns the phase by 90 degrees.
    new_re = torch.where(positive, root * re / mag, -(root * im / mag))
    new_im = torch.where(positive, root * im / mag, root * re / mag)
    new_im = torch.cat([torch.zeros_like(new_im[..., :1]), new_im[..., 1:]], dim=-1)  # irfft ignores it
    new = torch.complex(F.pad(new_re, (0, 1)), F.pad(new_im, (0, 1)))  # Nyquist bin 0
    out_frames = torch.fft.irfft(new, FFT_SIZE)[..., :FRAME_SIZE] * window
    hops = out_frames.reshape(rows, n_frames, overlaps, SHIFT)
    # Overlap-add: frame k adds its i-th hop to output block k + i (blocks < n_frames).
    blocks = sum(F.pad(hops[:, : n_frames - i, i], (0, 0, i, 0)) for i in range(overlaps))
    # smear3's tail (see msbg_fast.smear): block n_frames + overlaps - 1 - k sums, for i < k,
    # hop overlaps - k + i of frame n_frames - overlaps (i = 0) or n_frames - i (i >= 1).
    tail = []
    for k in range(overlaps - 1, 0, -1):
        parts = [hops[:, n_frames - overlaps if i == 0 else n_frames - i, overlaps - 1 - k + i]
                 for i in range(k)]
        tail.append(sum(parts))
    return torch.cat([blocks.reshape(rows, -1), *tail], dim=-1)


def _impulse_response(b: np.ndarray, a: np.ndarray, stages: int = 1) -> np.ndarray:
    """Impulse response of ``stages`` cascaded ``lfilter(b, a)``, cut (float64)."""
    h = np.zeros(_IR_MAX)
    h[0] = 1.0
    for _ in range(stages):
        h = scipy.signal.lfilter(b, a, h)
    return _cut(h)


def _zero_input_response(b: np.ndarray, a: np.ndarray, zi: np.ndarray) -> np.ndarray:
    """``lfilter(b, a, zeros, zi=zi)``: what the initial state adds, cut (float64)."""
    return _cut(scipy.signal.lfilter(b, a, np.zeros(_IR_MAX), zi=zi)[0])


def _cut(h: np.ndarray) -> np.ndarray:
    tail = np.cumsum(np.abs(h)[::-1])[::-1]  # tail[i]: absolute sum of h[i:]
    keep = int(np.count_nonzero(tail > IR_TOLERANCE * tail[0]))
    if keep >= len(h) // 2:
        raise ValueError(f"an MSBG filter's impulse response has not decayed within {len(h) // 2} samples")
    return h[:keep]


def _stack(rows: list[np.ndarray]) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.from_numpy(np.stack([np.pad(r, (0, width - len(r))) for r in rows]))
