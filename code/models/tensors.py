"""Small helpers every model module shares: tensors to arrays, one audiogram row per item,
and where each item of a zero-padded batch ends."""

from __future__ import annotations

import numba
import numpy as np
import torch


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """``tensor`` as a float32 numpy array on the CPU (detached)."""
    return tensor.detach().to("cpu", torch.float32).numpy()


def level_rows(audiogram_levels: torch.Tensor, batch: int, n_freq: int) -> list[tuple[float, ...]]:
    """Each item's audiogram levels (dB HL) as a tuple, checked against the batch's shape."""
    levels = to_numpy(torch.as_tensor(audiogram_levels)).astype(np.float64)
    if levels.shape != (batch, n_freq):
        raise ValueError(f"audiogram_levels has shape {levels.shape}; expected ({batch}, {n_freq}): "
                         "one level per audiogram frequency for each item")
    return [tuple(row) for row in levels]


@numba.njit(cache=True, nogil=True)
def signal_end(audio: np.ndarray) -> int:
    """One past the last non-zero sample over all channels (0 for silence); scans
    back from the end, so it costs only the padding's length."""
    for t in range(audio.shape[1] - 1, -1, -1):
        for ch in range(audio.shape[0]):
            if audio[ch, t] != 0:
                return t + 1
    return 0


def inside_mask(signal_tensor: torch.Tensor) -> torch.Tensor:
    """``[B, 1, T]``: True up to each item's end (``signal_end``), False in its zero padding."""
    n = signal_tensor.shape[-1]
    ends = torch.tensor([signal_end(a) for a in to_numpy(signal_tensor)], device=signal_tensor.device)
    return (torch.arange(n, device=signal_tensor.device)[None, :] < ends[:, None])[:, None, :]
