"""Simulated hearing loss: pyclarity's MSBG model, per ear.

``simulate_hearing_loss`` turns what reaches the ear canal into what a
listener with the given audiogram hears, as the CLIP signals were made. The
output keeps the input's length (MSBG's own processing delay is kept, as in
the released signals). An audiogram with no loss returns the input unchanged.

Two simulators give the same output (to float64 rounding, checked by
tests/test_hearing_loss.py and benchmarks/msbg_speed.py):

- ``"fast"`` (default): ``code.hearing_loss.fast``, filters designed once per
  audiogram, smearing vectorised, bands compiled, the two ears in parallel.
- ``"reference"``: pyclarity's ``Ear`` itself, designed and run per call.
- ``"torch"``: ``code.hearing_loss.torch_ear``, the fast one's computation in torch, on
  ``device`` (Stage 1 passes ``--device``; by default CUDA when available). Within
  3e-8 of the fast one's float64 output on the demo (benchmarks/msbg_torch.py);
  about 10 times slower than it on a CPU.

pyclarity's torch MSBG (``clarity.predictor.torch_msbg.MSBGHearingModel``) is
not offered: it approximates ``Ear`` (FIR recruitment, its own calibration), and
on a 3 s demo excerpt its output differed from ``Ear``'s by up to 0.84 (Mild)
and 0.75 (Moderate), at output peaks of 0.69 and 0.80, lagging by about 1100
samples. (With pyclarity 0.9.0 it also needs torchaudio, whose installed build
does not load against the CPU torch in requirements.txt.)
"""

from __future__ import annotations

import importlib.metadata
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numba
import numpy as np
from clarity.evaluator.msbg.msbg import Ear
from clarity.utils.audiogram import Audiogram

from code.config import SIMULATORS
from code.hearing_loss.design import MSBG_SAMPLE_RATE, MSBG_SETTINGS, ear_design
from code.hearing_loss.fast import MIN_SAMPLES, simulate_ear
from code.hearing_loss.torch_ear import simulate_numpy

logger = logging.getLogger(__name__)

__all__ = ["MSBG_SAMPLE_RATE", "MSBG_SETTINGS", "SIMULATORS", "simulate_hearing_loss",
           "simulator_settings"]


def simulator_settings(simulator: str) -> dict:
    """What identifies ``simulator``'s output besides its code, for cache keys (Stage 1
    adds ``code.keys.code_digest(simulate_hearing_loss)``, which covers the code of every
    simulator; pyclarity, whose designs and ``Ear`` they use, is covered by its version).

    Raises:
        ValueError: for a name not in ``SIMULATORS``.
    """
    _check_simulator(simulator)
    return {"simulator": simulator, "pyclarity": importlib.metadata.version("pyclarity"), **MSBG_SETTINGS}


def simulate_hearing_loss(audio: np.ndarray, audiogram: Audiogram,
                          sample_rate: int = MSBG_SAMPLE_RATE, *,
                          simulator: str = "fast", device: str | None = None) -> np.ndarray:
    """Pass stereo audio (float ``[2, T]``) through MSBG with ``audiogram`` on each ear.

    ``device``: where the ``"torch"`` simulator runs (None: CUDA when available, else the
    CPU); the other simulators run on the CPU.

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
    if simulator == "torch":  # both ears at once; silent ears come back silent
        return simulate_numpy(audio, ear_design(audiogram), device=device)
    process = _fast_ear(audiogram) if simulator == "fast" else _pyclarity_ear(audiogram)
    # Digitally silent channels stay silent: MSBG's level calibration is undefined there.
    channels = [ch for ch in range(audio.shape[0]) if np.any(audio[ch])]

    def run(ch: int) -> np.ndarray:
        return process(np.asarray(audio[ch], dtype=np.float64))
    # The fast simulator's loops release the GIL: its ears run in parallel threads,
    # as many as numba may use (Stage 1 sets that per worker process).
    workers = min(len(channels), numba.get_num_threads()) if simulator == "fast" else 1
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            simulated = list(pool.map(run, channels))
    else:
        simulated = [run(ch) for ch in channels]
    n = audio.shape[-1]
    out = np.zeros(audio.shape, dtype=np.float32)
    for ch, ear in zip(channels, simulated):
        m = min(n, ear.shape[-1])
        out[ch, :m] = ear[:m]
    return out


def _fast_ear(audiogram: Audiogram) -> Callable[[np.ndarray], np.ndarray]:
    design = ear_design(audiogram)
    return lambda channel: simulate_ear(channel, design)


def _pyclarity_ear(audiogram: Audiogram) -> Callable[[np.ndarray], np.ndarray]:
    ear = Ear(sample_rate=MSBG_SAMPLE_RATE, **MSBG_SETTINGS)
    ear.set_audiogram(audiogram)
    return lambda channel: ear.process(channel)[0]


def _check_simulator(simulator: str) -> None:
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown hearing-loss simulator {simulator!r}; choices: {', '.join(SIMULATORS)}")
