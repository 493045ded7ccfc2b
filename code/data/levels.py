"""Whether audio is loud enough for the hearing-loss simulator, by the simulator's own rule.

MSBG (pyclarity's ``Ear.process``, and this project's simulators, which compute the same)
first rescales each ear so that its *active* level, the RMS of the 10 ms frames within 12 dB
of the ear's overall RMS (and never below -80 dBFS), equals its overall RMS. When no frame
reaches that threshold the gain divides 0 by 0 and every output sample is NaN. That happens
to audio whose loudest 10 ms frame is under -80 dBFS RMS (about -75 dBFS peak and below,
or 16-bit noise of a least significant bit or so) that is not digitally silent: a digitally
silent ear is passed through silent.

``simulator_level_problem`` says so before the simulator runs (on a data set's unprocessed
audio before Stage 1, on a model's output before it is simulated). Numpy only: the data
layer and Stage 1 call it without importing pyclarity.
"""

from __future__ import annotations

import numpy as np

LEVEL_WINDOW_S = 0.01  # pyclarity's msbg_utils.WIN_SECS: the frames Ear.process measures
ACTIVE_BELOW_RMS_DB = 12.0  # frames within this many dB of the overall RMS count as active
ACTIVE_FLOOR_DBFS = -80.0  # ... and never those below this (dBFS RMS over a frame)
EARS = ("left", "right")


def _loudest_frame_db(x: np.ndarray, win: int) -> float:
    frames = x[: (len(x) // win) * win].reshape(-1, win)
    loudest = float(np.max(np.mean(frames**2, axis=1), initial=0.0))
    return 10 * np.log10(loudest) if loudest > 0 else -np.inf


def simulator_level_problem(audio: np.ndarray, sample_rate: int) -> str | None:
    """Why MSBG's level calibration is undefined for ``audio`` (float ``[channels, T]``,
    channel 0 the left ear), else None: some channel that is not digitally silent has no
    10 ms frame at its active threshold (max(overall RMS - 12 dB, -80 dBFS)). Audio shorter
    than one frame is left to the length checks."""
    win = max(1, round(LEVEL_WINDOW_S * sample_rate))
    for ch, channel in enumerate(np.asarray(audio, dtype=np.float64)):
        if len(channel) < win or not np.any(channel):
            continue  # too short: named by the length checks; digitally silent: stays silent
        mean_square = float(np.mean(channel**2))
        overall_db = 10 * np.log10(mean_square) if mean_square > 0 else -np.inf
        threshold_db = max(overall_db - ACTIVE_BELOW_RMS_DB, ACTIVE_FLOOR_DBFS)
        frames = channel[: (len(channel) // win) * win].reshape(-1, win)
        # Ear.process adds a tiny power (30 dB under the threshold) before taking the log
        frame_db = 10 * np.log10(10 ** ((threshold_db - 30) / 10) + np.sum(frames**2, axis=1) / win)
        if np.any(frame_db >= threshold_db):
            continue
        ear = EARS[ch] if ch < len(EARS) else f"channel {ch}"
        loudest = _loudest_frame_db(channel, win)
        return (f"too quiet for the hearing-loss simulator: the loudest 10 ms frame of its {ear} "
                f"channel is at {loudest:.1f} dBFS RMS, under the {threshold_db:.0f} dBFS that MSBG's "
                "level calibration needs (below it the simulator divides 0 by 0 and returns NaN); "
                f"a channel must reach {ACTIVE_FLOOR_DBFS:.0f} dBFS RMS in some 10 ms frame, "
                "or be digitally silent")
    return None
