"""Learned predictors: per-signal features -> predicted intelligibility (0..100).

Every predictor is a class in ``PREDICTORS`` with ``fit`` / ``predict`` /
``params`` / ``save``; add one there and it is available everywhere
(``--predictor NAME``, the benchmark). ``code.evaluation.prediction.fitting.fit_predict``
is the one honest way to use them: a record whose prompt (or track) is among the
fitted records is predicted by a model fitted without it (folds grouped by track when
the metadata carries ``fma``, else by prompt; fixed seed), never in-sample.

Missing values (``NaN``; ``null`` in a feature file): ``gbm`` fits and predicts
with them (the trees learn where to send them); the logistic predictors refuse
a record whose one feature is missing, and ``whisper-head`` one with a missing
embedding value, naming it (``fit_predict(skip_invalid=True)`` leaves such
records out instead, listed in the log and in ``predictor.skipped``).

- ``logistic``: the official baseline; one feature column (0..1) through the
  0..100 logistic (``LogisticCalibration``).
- ``logistic-hl``: one such logistic per hearing-loss category; a category with
  fewer than ``MIN_RECORDS_PER_CATEGORY`` fitted records uses the pooled one.
- ``gbm``: scikit-learn's HistGradientBoostingRegressor on every feature column
  plus the hearing-loss category (ordinal 0/1/2) and the number of words.
- ``whisper-head``: a small torch head on both ears' Whisper encoder embeddings
  (``enc.*`` columns), the better ear's score (``code.evaluation.prediction.whisper_head``).
- ``stack``: a blend (non-negative weights summing to 1) of other predictors, weighted
  by their out-of-fold predictions (``code.evaluation.prediction.stacking``).
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np

from code.config import HEARING_LOSS_CATEGORIES, did_you_mean
from code.errors import DataError, Problem
from code.evaluation.prediction.calibration import LogisticCalibration
from code.evaluation.prediction.capabilities import ALL_FEATURES, ONE_COLUMN, pick_feature
from code.evaluation.prediction.stacking import StackPredictor
from code.evaluation.prediction.whisper_head import WhisperHeadPredictor
from code.evaluation.table import FeatureTable
from code.io_utils import atomic_path, write_json_atomic

logger = logging.getLogger(__name__)

MIN_RECORDS_PER_CATEGORY = 30  # logistic-hl: fewer fitted records -> the pooled logistic
# gbm settings (fixed; the seed comes from fit_predict). Picked among three small
# variants on the real CLIP1 train split, out-of-fold (benchmarks/predictors.py).
GBM_SETTINGS = {"learning_rate": 0.03, "max_iter": 200, "max_leaf_nodes": 7,
                "l2_regularization": 1.0, "early_stopping": False}
GBM_RECORDS_PER_LEAF = 80  # min_samples_leaf = fitted records / this, clipped to 5..100
GBM_THREADS = 1  # OpenMP threads: these models are small; more threads only contend (30x slower on 2 busy cores)


class Predictor(Protocol):
    """What ``fit_predict`` needs of a predictor. ``records`` are the metadata dicts
    of the table's rows, in the same order (``prompt``, ``hearing_loss``, optional
    ``n_words``); targets and predictions are on 0..100."""

    name: ClassVar[str]
    # what it takes (code/evaluation/prediction/capabilities.py): the class's tags
    takes: ClassVar[str]
    handles_missing: ClassVar[bool]  # True: NaN features are fitted and predicted as such
    uses_feature: ClassVar[bool]
    fits_precomputed: ClassVar[bool]
    trains_on_device: ClassVar[bool]
    notes: list[str]  # what the last fit fell back on, for the log
    skipped: list[Problem]  # set by fit_predict: records left out for missing values

    @classmethod
    def used_columns(cls, names: list[str], feature: str | None) -> list[str]: ...

    def fit(self, features: FeatureTable, target_0_100: np.ndarray, records: list[dict]) -> None: ...

    def predict(self, features: FeatureTable, records: list[dict]) -> np.ndarray: ...

    def params(self) -> dict: ...

    def save(self, path_stem: Path) -> list[Path]: ...


def _checked_column(features: FeatureTable, name: str) -> np.ndarray:
    x = features.column(name)
    missing = [s for s, v in zip(features.signals, x) if np.isnan(v)]
    if missing:  # fit_predict refuses these first, naming them; a direct caller gets this
        raise DataError(f"feature {name!r} is missing for {len(missing)} signal(s), e.g. {missing[0]} "
                        "(the logistic needs a value; gbm takes missing values)")
    outside = [s for s, v in zip(features.signals, x) if not 0.0 <= v <= 1.0]
    if outside:
        raise DataError(f"the logistic needs feature {name!r} in 0..1; {len(outside)} signal(s) "
                        f"are outside, e.g. {outside[0]} (use the gbm predictor for other features)")
    return x


def _save_params(predictor: Predictor, path_stem: Path) -> Path:
    path = Path(f"{path_stem}.json")
    write_json_atomic(path, predictor.params())
    return path


class LogisticPredictor:
    """One feature column (0..1) through the 0..100 logistic: the official baseline."""

    name: ClassVar[str] = "logistic"
    takes: ClassVar[str] = ONE_COLUMN
    handles_missing: ClassVar[bool] = False
    uses_feature: ClassVar[bool] = True
    fits_precomputed: ClassVar[bool] = True
    trains_on_device: ClassVar[bool] = False

    @classmethod
    def used_columns(cls, names: list[str], feature: str | None) -> list[str]:
        return [pick_feature(names, feature)]

    def __init__(self, *, feature: str | None = None, seed: int = 0) -> None:
        self.feature = feature
        self.seed = seed
        self.column: str | None = None
        self.model: LogisticCalibration | None = None
        self.n_fit = 0
        self.notes: list[str] = []

    def fit(self, features: FeatureTable, target_0_100: np.ndarray, records: list[dict]) -> None:
        """Raises: DataError for a missing or out-of-range column; ValueError when the fit fails."""
        self.column = pick_feature(features.names, self.feature)
        self.model = LogisticCalibration.fit(_checked_column(features, self.column), target_0_100)
        self.n_fit = len(target_0_100)

    def predict(self, features: FeatureTable, records: list[dict]) -> np.ndarray:
        assert self.model is not None and self.column is not None, "predict before fit"
        return self.model.predict(_checked_column(features, self.column))

    def params(self) -> dict:
        assert self.model is not None, "params before fit"
        return {"predictor": self.name, "feature": self.column, "n_fit": self.n_fit,
                "x0": self.model.x0, "k": self.model.k}

    def save(self, path_stem: Path) -> list[Path]:
        return [_save_params(self, path_stem)]


class HearingLossLogisticPredictor:
    """One logistic per hearing-loss category; a category with too few fitted
    records (or none) uses the logistic fitted on all records."""

    name: ClassVar[str] = "logistic-hl"
    takes: ClassVar[str] = ONE_COLUMN
    handles_missing: ClassVar[bool] = False
    uses_feature: ClassVar[bool] = True
    fits_precomputed: ClassVar[bool] = True
    trains_on_device: ClassVar[bool] = False
    used_columns = LogisticPredictor.used_columns

    def __init__(self, *, feature: str | None = None, seed: int = 0) -> None:
        self.feature = feature
        self.seed = seed
        self.column: str | None = None
        self.pooled: LogisticCalibration | None = None
        self.per_category: dict[str, LogisticCalibration] = {}
        self.counts: dict[str, int] = {}
        self.notes: list[str] = []

    def fit(self, features: FeatureTable, target_0_100: np.ndarray, records: list[dict]) -> None:
        """Raises: DataError for a missing or out-of-range column; ValueError when the pooled fit fails."""
        self.column = pick_feature(features.names, self.feature)
        x = _checked_column(features, self.column)
        y = np.asarray(target_0_100, dtype=float)
        self.pooled = LogisticCalibration.fit(x, y)
        self.per_category, self.notes = {}, []
        losses = np.array([r["hearing_loss"] for r in records])
        for category in HEARING_LOSS_CATEGORIES:
            mask = losses == category
            self.counts[category] = int(mask.sum())
            if mask.sum() < MIN_RECORDS_PER_CATEGORY:
                self.notes.append(f"logistic-hl: {category!r} has {int(mask.sum())} fitted record(s) "
                                  f"(< {MIN_RECORDS_PER_CATEGORY}); using the pooled logistic for it")
                continue
            try:
                self.per_category[category] = LogisticCalibration.fit(x[mask], y[mask])
            except ValueError as e:  # did not converge: a named failure, said in the log
                self.notes.append(f"logistic-hl: {category!r}: {e}; using the pooled logistic for it")

    def predict(self, features: FeatureTable, records: list[dict]) -> np.ndarray:
        assert self.pooled is not None and self.column is not None, "predict before fit"
        x = _checked_column(features, self.column)
        out = np.empty(len(records))
        for i, record in enumerate(records):
            model = self.per_category.get(record["hearing_loss"], self.pooled)
            out[i] = model.predict(x[i:i + 1])[0]
        return out

    def params(self) -> dict:
        assert self.pooled is not None, "params before fit"
        return {"predictor": self.name, "feature": self.column, "counts": self.counts,
                "min_records_per_category": MIN_RECORDS_PER_CATEGORY,
                "pooled": {"x0": self.pooled.x0, "k": self.pooled.k},
                "per_category": {c: {"x0": m.x0, "k": m.k} for c, m in self.per_category.items()}}

    def save(self, path_stem: Path) -> list[Path]:
        return [_save_params(self, path_stem)]


def n_words(record: dict) -> int:
    """The record's ``n_words``, or the number of words of its prompt when absent."""
    value = record.get("n_words")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return int(value)
    return len(str(record["prompt"]).split())


def record_columns(records: list[dict]) -> np.ndarray:
    """``[N, 2]``: hearing loss as 0/1/2 (No Loss, Mild, Moderate) and the number of words.

    Raises:
        DataError: naming the signal, for an unknown hearing-loss category.
    """
    order = {c: i for i, c in enumerate(HEARING_LOSS_CATEGORIES)}
    rows = []
    for r in records:
        if r.get("hearing_loss") not in order:
            raise DataError(f"signal {r.get('signal')}: unknown hearing_loss {r.get('hearing_loss')!r}; "
                            f"expected one of {list(HEARING_LOSS_CATEGORIES)}")
        rows.append((order[r["hearing_loss"]], n_words(r)))
    return np.array(rows, dtype=float).reshape(len(records), 2)


class GBMPredictor:
    """Gradient-boosted trees on every feature column, hearing loss and number of words."""

    name: ClassVar[str] = "gbm"
    takes: ClassVar[str] = ALL_FEATURES
    handles_missing: ClassVar[bool] = True  # HistGradientBoostingRegressor learns where NaN goes
    uses_feature: ClassVar[bool] = False
    fits_precomputed: ClassVar[bool] = False
    trains_on_device: ClassVar[bool] = False
    EXTRA_COLUMNS: ClassVar[tuple[str, ...]] = ("record.hearing_loss_0_1_2", "record.n_words")

    @classmethod
    def used_columns(cls, names: list[str], feature: str | None) -> list[str]:
        return list(names)

    def __init__(self, *, feature: str | None = None, seed: int = 0, settings: dict | None = None) -> None:
        """``settings`` override ``GBM_SETTINGS`` (``--predictor-options``)."""
        # ``feature`` is accepted (one signature for every predictor) and not used
        self.seed = seed
        self.settings = merged_settings("gbm", GBM_SETTINGS, settings)
        self.names: list[str] = []
        self.model = None
        self.min_samples_leaf = 0
        self.n_fit = 0
        self.notes: list[str] = []

    def _inputs(self, features: FeatureTable, records: list[dict]) -> np.ndarray:
        return np.hstack([features.values, record_columns(records)])

    def fit(self, features: FeatureTable, target_0_100: np.ndarray, records: list[dict]) -> None:
        from sklearn.ensemble import HistGradientBoostingRegressor
        from threadpoolctl import threadpool_limits

        self.names = list(features.names)
        self.min_samples_leaf = int(np.clip(len(records) // GBM_RECORDS_PER_LEAF, 5, 100))
        self.model = HistGradientBoostingRegressor(random_state=self.seed, min_samples_leaf=self.min_samples_leaf,
                                                   **self.settings)
        with threadpool_limits(limits=GBM_THREADS):
            self.model.fit(self._inputs(features, records), np.asarray(target_0_100, dtype=float))
        self.n_fit = len(records)

    def predict(self, features: FeatureTable, records: list[dict]) -> np.ndarray:
        assert self.model is not None, "predict before fit"
        if features.names != self.names:
            raise DataError(f"gbm was fitted on features {self.names}, asked to predict from {features.names}")
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=GBM_THREADS):
            return np.clip(self.model.predict(self._inputs(features, records)), 0.0, 100.0)

    def params(self) -> dict:
        return {"predictor": self.name, "features": self.names + list(self.EXTRA_COLUMNS),
                "n_fit": self.n_fit, "seed": self.seed,
                "settings": {**self.settings, "min_samples_leaf": self.min_samples_leaf},
                "model_file": "<stem>.joblib"}

    def save(self, path_stem: Path) -> list[Path]:
        import joblib

        assert self.model is not None, "save before fit"
        model_path = Path(f"{path_stem}.joblib")
        with atomic_path(model_path) as tmp:
            joblib.dump(self.model, tmp)
        return [_save_params(self, path_stem), model_path]


# The registry: add yours here (a dict literal: main.py reads its names without importing this module).
PREDICTORS: dict[str, type] = {
    "logistic": LogisticPredictor,
    "logistic-hl": HearingLossLogisticPredictor,
    "gbm": GBMPredictor,
    "whisper-head": WhisperHeadPredictor,
    "stack": StackPredictor,
}


def merged_settings(name: str, defaults: dict, given: dict | None) -> dict:
    """A predictor's settings: its ``defaults`` with ``given`` (``--predictor-options``) over them.

    Raises:
        ValueError: naming the predictor and its settings, for a name it does not have.
    """
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"--predictor-options: {name} has no setting {unknown}; its settings "
                         f"(with defaults): {defaults}")
    return {**defaults, **given}


def predictor_class(name: str) -> type:
    """The predictor class registered as ``name``.

    Raises:
        ValueError: with the closest name and the registered ones, for an unknown ``name``.
    """
    if name not in PREDICTORS:
        raise ValueError(f"unknown predictor {name!r}{did_you_mean(name, PREDICTORS)} "
                         f"Registered predictors: {sorted(PREDICTORS)}")
    return PREDICTORS[name]


def make_predictor(name: str, *, feature: str | None = None, seed: int = 0,
                   options: dict | None = None) -> Predictor:
    """A fresh predictor of the given registry name; ``options`` are further keyword
    arguments of its constructor (e.g. ``{"device": "cuda"}`` for whisper-head).

    Raises:
        ValueError: listing the known names, for an unknown one; naming the setting, for
            ``options["settings"]`` the predictor does not have.
    """
    cls = predictor_class(name)
    options = dict(options or {})
    if options.get("settings") and "settings" not in inspect.signature(cls.__init__).parameters:
        raise ValueError(f"--predictor-options: {name} has no settings (given {options['settings']})")
    if not options.get("settings"):
        options.pop("settings", None)
    return cls(feature=feature, seed=seed, **options)


StackPredictor.use_registry(predictor_class, make_predictor)  # its members come from PREDICTORS
