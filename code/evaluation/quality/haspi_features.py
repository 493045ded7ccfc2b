"""HASPI v2 as a Stage-2 feature: the scored audio of each ear against the unprocessed audio.

The audio Stage 2 scores already carries the listener's hearing loss (the released
``signals`` were made with MSBG; ``--input unprocessed`` runs MSBG after the model), so
HASPI hears it through a normal ear (``AUDIOGRAM_REF``): the listener's audiogram would
count the loss twice. It is calibrated as the simulator is (``level1 = 100`` dB SPL for
RMS 1) and its internal noise is drawn after ``np.random.seed(NOISE_SEED)`` per ear, so
a stored value is reproducible. Where HASPI is undefined (a silent ear, or a reference
with too little above threshold) the value is missing (NaN), never 0.
"""

from __future__ import annotations

import math

import numpy as np
from clarity.utils.audiogram import AUDIOGRAM_REF

from code.evaluation.quality.aid_quality import LEVEL1_DB_SPL, NOISE_SEED

HASPI_PACKAGES = ("pyclarity", "numpy", "scipy", "numba", "soxr", "soundfile")
EARS = ("left", "right")


def haspi_settings() -> dict:
    """What, besides the audio and the code, makes a stored HASPI feature."""
    return {"metric": "haspi_v2", "audiogram": "AUDIOGRAM_REF", "level1_db_spl": LEVEL1_DB_SPL,
            "noise_seed": NOISE_SEED}


def haspi_features(heard: np.ndarray, reference: np.ndarray, sample_rate: int) -> dict[str, float]:
    """``{"haspi.left", "haspi.right", "haspi.better_ear"}`` (0..1) of the scored audio
    ``heard`` ``[2, T]`` against the unprocessed ``reference`` ``[2, T']``, both at
    ``sample_rate``; the better ear is the larger defined one (NaN when neither is)."""
    from code.evaluation.quality.haspi import haspi_v2

    out = {}
    state = np.random.get_state()
    try:
        for index, ear in enumerate(EARS):
            np.random.seed(NOISE_SEED)
            score, _ = haspi_v2(reference[index], sample_rate, heard[index], sample_rate, AUDIOGRAM_REF,
                                level1=LEVEL1_DB_SPL)
            out[f"haspi.{ear}"] = float(score)
    finally:
        np.random.set_state(state)
    defined = [v for v in out.values() if not math.isnan(v)]
    out["haspi.better_ear"] = max(defined) if defined else math.nan
    return out
