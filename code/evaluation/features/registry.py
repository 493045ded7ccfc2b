"""The Stage-2 pair features: what each is, declared once; ``--features`` selects them.

A pair feature compares each signal's scored audio with its unprocessed reference (both
ears, at the run's sample rate). Its declaration says where its function lives, the
columns it writes, what it needs, which options change its values, and what else its
stored values are keyed by. Everything else follows from the declaration: the store keys
(``pair_key_parts``: the audio's and reference's content, the rate, the function's code and
packages, the settings), the features file's name, the run's name (``code.runs``) and the
help's list of choices. The ASR scores (``asr.<model>.*``) are always computed; a pair
feature is computed when every signal of the split has its unprocessed audio.

Adding one (docs/features-and-predictors.md): a module with
``def my_features(heard, reference, sample_rate, **settings) -> {column: value}`` and one line:

    FEATURES["sisdr"] = PairFeature("code.evaluation.features.sisdr", "sisdr_features",
                                    columns=("sisdr.left", "sisdr.right"))
"""

from __future__ import annotations

import functools
import importlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from code.config import DEFAULTS
from code.evaluation.pair_values import pair_values
from code.keys import code_digest
from code.runs import selected_features

UNPROCESSED = "unprocessed audio"  # what a pair feature needs besides the scored audio
AUDIO_PACKAGES = ("numpy", "scipy", "soxr", "soundfile")  # read_audio's, in every pair feature's key


@dataclass(frozen=True)
class PairFeature:
    """A Stage-2 feature of the scored audio against its unprocessed reference.

    ``module``/``function``: ``function(heard [2, T], reference [2, T'], sample_rate,
    **settings) -> {column: value}`` (NaN: undefined), imported on first use.
    ``columns``: the columns it writes. ``options``: ``{keyword: config field}``, the
    options that change its values (passed to the function and keyed). ``constants``: the
    name of a function of ``module`` returning what else keys its values (fixed settings),
    under ``constants_key``. ``kind``: its folder in the store (default: its name).
    ``packages``: whose versions key its values (or the name of such a tuple in ``module``).
    ``ranges``: ``{measure: (low, high)}``, the values each measure (a column's first part,
    ``stoi`` of ``stoi.left``) can take; a value a data set ships outside them is refused
    (``code.evaluation.shipped_values``). Empty: any number per column prefix of ``columns``.
    """

    module: str
    function: str
    columns: tuple[str, ...]
    options: dict[str, str] = field(default_factory=dict)
    constants: str = ""
    constants_key: str = ""
    kind: str = ""
    packages: tuple[str, ...] | str = AUDIO_PACKAGES
    needs: tuple[str, ...] = (UNPROCESSED,)
    title: str = ""
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    def compute(self) -> Callable[..., dict[str, float]]:
        return getattr(importlib.import_module(self.module), self.function)

    def settings(self, cfg) -> dict:
        """The keyword arguments ``cfg`` gives the function."""
        return {keyword: getattr(cfg, name) for keyword, name in self.options.items()}

    def key_settings(self, settings: dict) -> dict:
        """What keys a stored value besides the audio, the rate and the code."""
        if not self.constants:
            return dict(settings)
        fixed = getattr(importlib.import_module(self.module), self.constants)()
        return {**settings, (self.constants_key or self.constants): fixed}

    def code_key(self) -> str:
        """The digest of the function's code (and what it calls), the audio reader's, and the
        packages' versions."""
        from code.data.audio import read_audio

        packages = self.packages
        if isinstance(packages, str):
            packages = getattr(importlib.import_module(self.module), packages)
        return code_digest(self.compute(), read_audio, packages=tuple(packages))


FEATURES: dict[str, PairFeature] = {
    # the default: STOI and eSTOI per ear (stored as "intrusive", their first name)
    "stoi": PairFeature("code.evaluation.features.intrusive", "intrusive_features", kind="intrusive",
                        columns=("stoi.left", "stoi.right", "estoi.left", "estoi.right"),
                        options={"max_lag_s": "stoi_max_lag_s"},
                        packages=("pystoi", "scipy", "soxr", "soundfile"), title="STOI/eSTOI",
                        ranges={"stoi": (-1.0, 1.0), "estoi": (-1.0, 1.0)}),  # means of correlations
    # --haspi: HASPI v2 per ear and the better ear (code/evaluation/quality/haspi_features.py)
    "haspi": PairFeature("code.evaluation.quality.haspi_features", "haspi_features",
                         columns=("haspi.left", "haspi.right", "haspi.better_ear"),
                         constants="haspi_settings", constants_key="haspi",
                         packages="HASPI_PACKAGES", title="HASPI", ranges={"haspi": (0.0, 1.0)}),
}


def feature(name: str) -> PairFeature:
    """The declaration registered as ``name``.

    Raises:
        ValueError: for a name not in ``FEATURES``, listing the registered ones.
    """
    if name not in FEATURES:
        raise ValueError(f"unknown Stage-2 feature {name!r}; registered features: {', '.join(FEATURES)}")
    return FEATURES[name]


def store_ranges() -> dict[str, dict[str, tuple[float, float]]]:
    """``{store kind: {measure: (low, high)}}`` of every registered feature, for the checks of
    values a data set ships (a feature without declared ranges: any number)."""
    return {spec.kind or name: spec.ranges or {column.split(".")[0]: (-math.inf, math.inf)
                                               for column in spec.columns}
            for name, spec in FEATURES.items()}


def default_features() -> list[tuple[str, dict]]:
    """The default run's pair features and their settings, as ``split_features`` takes them."""
    return [(name, feature(name).settings(DEFAULTS)) for name in selected_features(DEFAULTS)]


def pair_feature_values(name: str, settings: dict, items: list[tuple[str, Path, Path]], *, store,
                        sample_rate: int, recompute: bool, jobs: int = 1) -> dict[str, dict[str, float]]:
    """Feature ``name``'s columns for each (signal, scored audio, unprocessed reference), from
    the store or computed (``pair_values``, by ``jobs`` worker processes), keyed by both files'
    content, the rate, the feature's code and ``settings`` (and its fixed settings)."""
    spec = feature(name)
    compute = spec.compute()
    return pair_values(spec.kind or name, f"Stage 2: {spec.title or name}", [(*item, {}) for item in items],
                       store=store, sample_rate=sample_rate, recompute=recompute, code=spec.code_key(),
                       settings=spec.key_settings(settings),
                       compute=functools.partial(compute, **settings), jobs=jobs)
