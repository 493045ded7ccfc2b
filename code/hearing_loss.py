"""Simulated hearing loss: pyclarity's MSBG model, per ear.

``simulate_hearing_loss`` turns what reaches the ear canal into what a
listener with the given audiogram hears, as the CLIP signals were made. The
output keeps the input's length (MSBG's own processing delay is kept, as in
the released signals). An audiogram with no loss returns the input unchanged.

Two simulators give the same output (to float64 rounding, checked by
tests/test_hearing_loss.py and benchmarks/msbg_speed.py):

- ``"fast"`` (default): ``code.msbg_fast``, filters designed once per
  audiogram, smearing vectorised, bands compiled and run in parallel.
- ``"reference"``: pyclarity's ``Ear`` itself, designed and run per call.

pyclarity's torch MSBG (``clarity.predictor.torch_msbg``) is not offered: its
output is far from ``Ear``'s (see benchmarks/msbg_speed.py --torch).
"""

from __future__ import annotations

import importlib.metadata
import logging

import numpy as np
from clarity.evaluator.msbg.msbg import Ear
from clarity.utils.audiogram import Audiogram

from code.msbg_design import MSBG_SAMPLE_RATE, MSBG_SETTINGS, ear_design
from code.msbg_fast import MIN_SAMPLES, simulate_ear

logger = logging.getLogger(__name__)

SIMULATORS = ("fast", "reference")
FAST_VERSION = "msbg_fast-1"  # bump when code.msbg_* changes its output

__all__ = ["MSBG_SAMPLE_RATE", "MSBG_SETTINGS", "SIMULATORS", "simulate_hearing_loss",
           "simulator_settings"]


def simulator_settings(simulator: str) -> dict:
    """What identifies ``simulator``'s output, for cache keys.

    Raises:
        ValueError: for a name not in ``SIMULATORS``.
    """
    _check_simulator(simulator)
    version = FAST_VERSION if simulator == "fast" else f"pyclarity-{importlib.metadata.version('pyclarity')}"
    return {"simulator": simulator, "version": version, **MSBG_SETTINGS}


def simulate_hearing_loss(audio: np.ndarray, audiogram: Audiogram,
                          sample_rate: int = MSBG_SAMPLE_RATE, *,
                          simulator: str = "fast") -> np.ndarray:
    """Pass stereo audio (float ``[2, T]``) through MSBG with ``audiogram`` on each ear.

    Returns float32 ``[2, T]``. Digitally silent channels come back silent.

    Raises:
        ValueError: for an unknown ``simulator``, a sample rate other than
            44100 Hz, or audio that is not ``[channels, T]`` with
            ``T >= MIN_SAMPLES``.
    """
    _check_simulator(simulator)
    if sample_rate != MSBG_SAMPLE_RATE:
        raise ValueError(f"MSBG needs {MSBG_SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
    audio = np.asarray(audio)
    if audio.ndim != 2 or audio.shape[1] < MIN_SAMPLES:
        raise ValueError(f"MSBG needs audio [channels, T] with T >= {MIN_SAMPLES}, got shape {audio.shape}")
    if np.max(np.abs(audiogram.levels)) == 0:
        return np.asarray(audio, dtype=np.float32)
    if simulator == "fast":
        design = ear_design(audiogram)
        process = lambda channel: simulate_ear(channel, design)  # noqa: E731
    else:
        ear = Ear(sample_rate=sample_rate, **MSBG_SETTINGS)
        ear.set_audiogram(audiogram)
        process = lambda channel: ear.process(channel)[0]  # noqa: E731
    n = audio.shape[-1]
    out = np.zeros(audio.shape, dtype=np.float32)
    for ch in range(audio.shape[0]):
        channel = np.asarray(audio[ch], dtype=np.float64)
        if not np.any(channel):
            continue  # MSBG's level calibration is undefined for digital silence
        simulated = process(channel)
        m = min(n, simulated.shape[-1])
        out[ch, :m] = simulated[:m]
    return out


def _check_simulator(simulator: str) -> None:
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown hearing-loss simulator {simulator!r}; choices: {', '.join(SIMULATORS)}")
