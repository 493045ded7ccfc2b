"""The audiograms models get: the default one per hearing-loss category, and helpers to
build, describe and check audiogram tables."""

from __future__ import annotations

import numpy as np
from clarity.utils.audiogram import (
    AUDIOGRAM_MILD,
    AUDIOGRAM_MODERATE,
    AUDIOGRAM_REF,
    Audiogram,
)

# The CLIP metadata gives only a hearing-loss category per listener. These are
# the audiograms used for each category by default (pyclarity's reference and
# preset audiograms, 125 Hz..16 kHz, dB HL); main.py can override the table.
DEFAULT_AUDIOGRAMS: dict[str, Audiogram] = {
    "No Loss": AUDIOGRAM_REF,
    "Mild": AUDIOGRAM_MILD,
    "Moderate": AUDIOGRAM_MODERATE,
}
AUDIOGRAM_FREQUENCIES: tuple[float, ...] = tuple(float(f) for f in AUDIOGRAM_REF.frequencies)

def audiogram_from_levels(levels: list[float], frequencies: list[float]) -> Audiogram:
    """Build an Audiogram from plain lists (for config files and the command line)."""
    return Audiogram(levels=np.asarray(levels, dtype=float),
                     frequencies=np.asarray(frequencies, dtype=float))


def audiogram_to_dict(audiogram: Audiogram) -> dict:
    """Plain-list form of an Audiogram, for saved configs and cache keys."""
    return {"levels": [float(x) for x in audiogram.levels],
            "frequencies": [float(x) for x in audiogram.frequencies]}


def common_frequencies(audiograms: dict[str, Audiogram]) -> tuple[float, ...]:
    """The audiogram frequencies (Hz) every entry of the table shares.

    Raises:
        ValueError: naming the categories, when the table mixes frequency sets
            (give every category the same frequencies).
    """
    sets = {category: tuple(float(f) for f in a.frequencies) for category, a in audiograms.items()}
    distinct = set(sets.values())
    if len(distinct) != 1:
        listing = "; ".join(f"{c}: {list(f)}" for c, f in sets.items())
        raise ValueError("the audiogram table mixes frequency sets; models get one level per "
                         f"frequency for every item, so give every category the same frequencies ({listing})")
    return distinct.pop()
