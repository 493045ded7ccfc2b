"""Music quality of a hearing aid's output: HAAQI of each ear against the unprocessed audio.

With ``--input unprocessed`` a model turns the audio at the ear into its output
(``results/<Model>-unprocessed/<signal>.wav``), which the hearing-loss simulator
then turns into what the listener hears. HAAQI has its own model of the impaired
ear, so it is given the model's output *before* the simulator, as Cadenza does,
and the listener's audiogram.

The convention (see docs/quality.md):

- reference: the unprocessed audio of the same ear; HAAQI adds the listener's
  NAL-R to it itself (``equalisation=1``, as CAD1 did), so a model is judged
  against a linear prescription of the same audiogram, whatever the model;
- calibration: ``level1 = 100`` dB SPL for a signal of RMS 1, the simulator's own
  (MSBG's ``equiv_0db_spl``), so audio presented at 65 dB SPL to MSBG is at 65 dB
  SPL to HAAQI, and a model's gain counts the same for both;
- the ear model's threshold noise is drawn after ``np.random.seed(NOISE_SEED)``
  (HAAQI varies by about 1e-10 with it), so a stored value is reproducible.

Values are kept in the results folder's store, keyed by both files' content, the
audiogram, these settings and the code that computes them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from clarity.utils.audiogram import Audiogram

from code.data.audio import read_audio
from code.errors import DataError
from code.evaluation.pair_values import pair_values
from code.evaluation.quality.checks import audiogram_levels
from code.hearing_loss.design import MSBG_SETTINGS
from code.keys import code_digest

logger = logging.getLogger(__name__)

EQUALISATION = 1  # HAAQI adds NAL-R for the listener's audiogram to the reference itself
LEVEL1_DB_SPL = MSBG_SETTINGS["equiv_0db_spl"]  # dB SPL of RMS 1, as the simulator calibrates
NOISE_SEED = 0  # numpy's global generator is seeded with this before each ear
HAAQI_PACKAGES = ("pyclarity", "numpy", "scipy", "numba", "soxr", "soundfile")
EARS = ("left", "right")


@dataclass(frozen=True)
class QualityItem:
    """A signal to judge: the model's output (before the hearing-loss simulation), the
    unprocessed audio it was made from, and the listener's audiogram."""

    signal: str
    output: Path
    reference: Path
    audiogram: Audiogram


def quality_settings() -> dict:
    """What, besides the audio, the audiogram and the code, makes a stored HAAQI value."""
    return {"metric": "haaqi_v1", "equalisation": EQUALISATION, "level1_db_spl": LEVEL1_DB_SPL,
            "noise_seed": NOISE_SEED}


def quality_audiogram_problem(audiograms: dict[str, Audiogram]) -> str | None:
    """Why HAAQI cannot judge an audiogram table (it needs 250..6000 Hz), or None."""
    for category, audiogram in audiograms.items():
        try:
            audiogram_levels(audiogram, "HAAQI")
        except ValueError as e:
            return (f"the audiogram of {category!r}: {e}; give it levels at 250..6000 Hz, or run "
                    "without music quality (--quality none)")
    return None


def ear_haaqi(output: np.ndarray, reference: np.ndarray, sample_rate: int,
              audiogram: Audiogram) -> dict[str, float]:
    """``{"haaqi.left", "haaqi.right"}`` (0..1) of a model's output ``[2, T]`` against the
    unprocessed ``reference`` ``[2, T']``, both at ``sample_rate``; NaN (missing) for an
    ear where either signal is silent (HAAQI is undefined there)."""
    from code.evaluation.quality.haaqi import haaqi

    out = {}
    state = np.random.get_state()
    try:
        for index, ear in enumerate(EARS):
            np.random.seed(NOISE_SEED)
            out[f"haaqi.{ear}"] = haaqi(output[index], reference[index], sample_rate, sample_rate,
                                        audiogram, equalisation=EQUALISATION, level1=LEVEL1_DB_SPL)
    finally:
        np.random.set_state(state)  # the caller's generator is left as it was
    return out


def signal_haaqi(ears: dict[str, float]) -> float:
    """A signal's HAAQI: the mean of its two ears (as CAD2), missing when either is."""
    values = [ears[f"haaqi.{ear}"] for ear in EARS]
    return math.nan if any(math.isnan(v) for v in values) else float(np.mean(values))


def _code() -> str:
    from code.evaluation.quality.haaqi import haaqi

    return code_digest(haaqi, _ear_haaqi_of_parts, read_audio, packages=HAAQI_PACKAGES)


def _audiogram_parts(audiogram: Audiogram) -> dict:
    """An item's own key parts: its audiogram, as plain lists."""
    return {"audiogram": {"levels": [float(x) for x in audiogram.levels],
                          "frequencies": [float(x) for x in audiogram.frequencies]}}


def _ear_haaqi_of_parts(output: np.ndarray, reference: np.ndarray, sample_rate: int,
                        audiogram: dict) -> dict[str, float]:
    """``ear_haaqi`` with the audiogram given as its key parts."""
    return ear_haaqi(output, reference, sample_rate, Audiogram(
        levels=np.array(audiogram["levels"]), frequencies=np.array(audiogram["frequencies"])))


def aid_quality(items: list[QualityItem], *, store, sample_rate: int, recompute: bool = False,
                desc: str = "Stage 2: HAAQI", jobs: int = 1) -> dict[str, dict[str, float]]:
    """HAAQI of every item, from ``store`` or computed and stored (``code.evaluation.pair_values``:
    keyed by both files' content, the audiogram, the rate, ``quality_settings()`` and the code).

    Returns ``{signal: {"haaqi.left", "haaqi.right", "haaqi"}}`` (0..1; NaN where
    undefined). Items with the same output, reference and audiogram are computed once, by
    ``jobs`` worker processes (0: every available core; 1: this process).

    Raises:
        DataError: naming the signal and file, before any HAAQI is computed, when a
            model output or its unprocessed reference is missing.
    """
    for item in items:
        for what, path in (("model output", item.output), ("unprocessed reference", item.reference)):
            if not Path(path).is_file():
                raise DataError(f"signal {item.signal}: HAAQI needs the {what}, not found: {path}")
    _note_other_rates(items, sample_rate, desc)
    ears = pair_values("haaqi", desc, [(i.signal, i.output, i.reference, _audiogram_parts(i.audiogram))
                                       for i in items],
                       store=store, sample_rate=sample_rate, recompute=recompute, code=_code(),
                       settings={"settings": quality_settings()}, compute=_ear_haaqi_of_parts,
                       jobs=jobs)
    out = {signal: {**values, "haaqi": signal_haaqi(values)} for signal, values in ears.items()}
    missing = sorted(s for s, v in out.items() if math.isnan(v["haaqi"]))
    if missing:
        logger.warning("%s: HAAQI undefined (silent output or reference) for %d signal(s), left "
                       "out of the quality figures: %s", desc, len(missing), ", ".join(missing[:5]))
    return out


def _note_other_rates(items: list[QualityItem], sample_rate: int, desc: str) -> None:
    """Say when references (or outputs) are at another rate: both are resampled to
    ``sample_rate`` on reading, so the pair HAAQI compares is at one rate."""
    import soundfile

    rates: dict[int, list[str]] = {}
    for item in items:
        for path in (item.reference, item.output):
            try:
                rate = soundfile.info(str(path)).samplerate
            except (RuntimeError, OSError):
                continue  # unreadable: read_audio names the file when it is read
            if rate != sample_rate:
                rates.setdefault(rate, []).append(item.signal)
    for rate, signals in rates.items():
        logger.info("%s: audio of %d signal(s) (e.g. %s) is at %d Hz: resampled to %d Hz for HAAQI",
                    desc, len(set(signals)), signals[0], rate, sample_rate)
