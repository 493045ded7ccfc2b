"""Simulated hearing loss: pyclarity's MSBG model, per ear.

``simulate_hearing_loss`` turns what reaches the ear canal into what a
listener with the given audiogram hears, as the CLIP signals were made. The
output keeps the input's length (MSBG's own processing delay is kept, as in
the released signals). An audiogram with no loss returns the input unchanged.
"""

from __future__ import annotations

import logging

import numpy as np
from clarity.evaluator.msbg.msbg import Ear
from clarity.utils.audiogram import Audiogram

logger = logging.getLogger(__name__)

MSBG_SAMPLE_RATE = 44100  # the only rate pyclarity's MSBG accepts
MSBG_SETTINGS = {"src_pos": "ff", "equiv_0db_spl": 100.0, "ahr": 20.0}


def simulate_hearing_loss(audio: np.ndarray, audiogram: Audiogram,
                          sample_rate: int = MSBG_SAMPLE_RATE) -> np.ndarray:
    """Pass stereo audio (float ``[2, T]``) through MSBG with ``audiogram`` on each ear.

    Returns float32 ``[2, T]``.

    Raises:
        ValueError: when ``sample_rate`` is not 44100 Hz.
    """
    if sample_rate != MSBG_SAMPLE_RATE:
        raise ValueError(f"MSBG needs {MSBG_SAMPLE_RATE} Hz audio, got {sample_rate} Hz")
    if np.max(np.abs(audiogram.levels)) == 0:
        return np.asarray(audio, dtype=np.float32)
    ear = Ear(sample_rate=sample_rate, **MSBG_SETTINGS)
    ear.set_audiogram(audiogram)
    n = audio.shape[-1]
    out = np.zeros(audio.shape, dtype=np.float32)
    for ch in range(audio.shape[0]):
        channel = np.asarray(audio[ch], dtype=np.float64)
        if not np.any(channel):
            continue  # MSBG's level calibration is undefined for digital silence
        simulated = ear.process(channel)[0]
        m = min(n, simulated.shape[-1])
        out[ch, :m] = simulated[:m]
    return out
