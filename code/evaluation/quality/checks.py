"""Input checks shared by HAAQI and HASPI: what the metrics accept, and when they are undefined."""

from __future__ import annotations

import logging

import numpy as np
from clarity.utils.audiogram import Audiogram

logger = logging.getLogger(__name__)

AUDIOGRAM_FREQUENCIES = np.array([250, 500, 1000, 2000, 4000, 6000])  # what both indices use


def check_signal(signal: np.ndarray, name: str) -> np.ndarray:
    """``signal`` as float64 1-D; raises ValueError for another shape or non-finite samples."""
    array = np.asarray(signal)
    if array.ndim != 1:
        raise ValueError(f"expected {name} as a 1-D (mono) signal, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"expected {name} as real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"expected finite samples in {name}, "
                         f"got {int(np.sum(~np.isfinite(array)))} NaN or infinite")
    return array


def check_sample_rate(sample_rate: float, name: str) -> float:
    """``sample_rate`` as float; raises ValueError unless it is a positive finite number."""
    try:
        rate = float(sample_rate)
    except (TypeError, ValueError) as e:
        raise ValueError(f"expected {name} as a number of Hz, got {sample_rate!r}") from e
    if not np.isfinite(rate) or rate <= 0:
        raise ValueError(f"expected {name} > 0 Hz, got {sample_rate!r}")
    return rate


def is_silent(signal: np.ndarray) -> bool:
    """True for an empty or all-zero signal: the indices are undefined for it."""
    return signal.size == 0 or not np.any(signal)


def audiogram_levels(audiogram: Audiogram, metric: str) -> np.ndarray:
    """Hearing levels at 250..6000 Hz, interpolated (log frequency) as pyclarity does.

    Raises ValueError when the audiogram does not span 250 to 6000 Hz (pyclarity
    would extrapolate a constant) or holds non-finite levels.
    """
    frequencies = np.asarray(audiogram.frequencies, dtype=float)
    levels = np.asarray(audiogram.levels, dtype=float)
    if frequencies.size == 0 or frequencies.min() > AUDIOGRAM_FREQUENCIES[0] or (
            frequencies.max() < AUDIOGRAM_FREQUENCIES[-1]):
        raise ValueError(f"{metric} needs an audiogram spanning 250..6000 Hz, got frequencies "
                         f"{frequencies.tolist()}")
    if not np.all(np.isfinite(levels)):
        raise ValueError(f"expected finite audiogram levels, got {levels.tolist()}")
    if not audiogram.has_frequencies(AUDIOGRAM_FREQUENCIES):
        logger.warning("%s: audiogram lacks some of %s Hz; interpolating", metric,
                       AUDIOGRAM_FREQUENCIES.tolist())
    return np.asarray(audiogram.resample(AUDIOGRAM_FREQUENCIES).levels, dtype=np.float64)
