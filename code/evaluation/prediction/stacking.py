"""``stack``: a convex blend of other predictors, weighted by their out-of-fold predictions.

Members (default: ``logistic-hl`` on the chorus mean ``asr.chorus.better_ear.mean`` when
the table has it, else on the default better-ear score, and ``gbm`` on everything) are
fitted inside ``fit`` on the fitted records' own folds (``fold_groups``: by track when
every record carries ``fma``, else by prompt; ``prompt_folds``, same seed), so every
member prediction the weights learn from comes from a model that saw neither that
record's label nor any record of its prompt or track. The weights are non-negative and
sum to 1 (least squares on the 0..100 scale under those constraints): a blend stays
within 0..100 and, on the out-of-fold predictions it is fitted to, is never worse than
its best member. Each member is then fitted on all the records for ``predict``.

Inside ``fit_predict`` this nests: each outer fold's stack runs its own inner folds on
that fold's training records only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

import numpy as np

from code.errors import DataError, shown
from code.evaluation.prediction.calibration import fold_groups, prompt_folds
from code.evaluation.prediction.capabilities import ALL_FEATURES, ONE_COLUMN, pick_feature
from code.evaluation.table import FeatureTable
from code.io_utils import write_json_atomic

logger = logging.getLogger(__name__)

CHORUS_FEATURE = "asr.chorus.better_ear.mean"
STACK_SETTINGS = {
    # each member: {"predictor": NAME, "feature": COLUMN or null, "settings": {...} or null}
    "members": [{"predictor": "logistic-hl", "feature": None, "settings": None},
                {"predictor": "gbm", "feature": None, "settings": None}],
    "inner_folds": 5,
}
MEMBER_KEYS = ("predictor", "feature", "settings")


def logistic_feature(names: list[str], feature: str | None) -> str:
    """The column of a one-feature member with no feature of its own: ``feature`` when the
    caller named one other than the default better-ear score; else the chorus mean when
    present; else the default (a logistic's ``used_columns``: ``pick_feature``)."""
    try:
        default = pick_feature(names, None)
    except DataError:
        default = None
    if feature is not None and feature != default:
        return pick_feature(names, feature)
    if CHORUS_FEATURE in names:
        return CHORUS_FEATURE
    return pick_feature(names, feature)


def inner_folds(value: object) -> int:
    """``inner_folds`` as a whole number of at least 2 (``3.0`` is 3).

    Raises:
        ValueError: naming the setting, for anything else (null, text, 2.9, true, 1).
    """
    whole = isinstance(value, int) or isinstance(value, float) and value.is_integer()
    if isinstance(value, bool) or not whole or value < 2:
        raise ValueError(f"--predictor-options: stack's inner_folds must be at least 2 (a whole number of "
                         f"folds), got {shown(value)}")
    return int(value)


def _check_member(index: int, member: object, seed: int) -> None:
    """A member is ``{"predictor": NAME, "feature": COLUMN or null, "settings": {...} or null}``,
    whose settings its own predictor takes (it is built here; a value it refuses is found by
    its first fit, as ``--predictor-options`` of a lone predictor are).

    Raises:
        ValueError: naming the member (by position and predictor) and what was expected.
    """
    shape = "a stack member is {'predictor': NAME, 'feature': COLUMN or null, 'settings': {...} or null}"
    if (not isinstance(member, dict) or not isinstance(member.get("predictor"), str)
            or set(member) - set(MEMBER_KEYS)):
        raise ValueError(f"--predictor-options: {shape}; member {index + 1} is {shown(member)}")
    name, feature, settings = member["predictor"], member.get("feature"), member.get("settings")
    where = f"--predictor-options: stack member {index + 1} ({shown(name)})"
    if name == StackPredictor.name:
        raise ValueError(f"{where}: a stack cannot be its own member")
    if feature is not None and not isinstance(feature, str):
        raise ValueError(f"{where}: 'feature' must be a column name or null, got {shown(feature)}")
    if settings is not None and not isinstance(settings, dict):
        raise ValueError(f"{where}: 'settings' must be a JSON object of that predictor's settings, "
                         f"got {shown(settings)}")
    for key, value in (settings or {}).items():
        if value is not None and not isinstance(value, (int, float, str, bool)):
            raise ValueError(f"{where}: setting {key!r} must be a number, a string, true/false or null, "
                             f"got {shown(value)}")
    try:
        StackPredictor.registry()[1](name, feature=feature, seed=seed,
                                     options={"settings": settings} if settings else None)
    except ValueError as e:
        raise ValueError(f"{where}: {str(e).removeprefix('--predictor-options: ')}") from e


def convex_weights(predictions_0_100: np.ndarray, target_0_100: np.ndarray) -> np.ndarray:
    """Weights ``w >= 0``, ``sum(w) == 1`` minimising ``|P w - y|^2`` (``P``: ``[N, M]``)."""
    from scipy.optimize import minimize

    p = np.asarray(predictions_0_100, dtype=float)
    y = np.asarray(target_0_100, dtype=float)
    m = p.shape[1]
    scale = max(float(np.mean(y ** 2)), 1.0)

    def loss(w):
        r = p @ w - y
        return float(r @ r) / len(y) / scale, 2.0 * (p.T @ r) / len(y) / scale

    start = np.full(m, 1.0 / m)
    result = minimize(loss, start, jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * m,
                      constraints=[{"type": "eq", "fun": lambda w: float(np.sum(w) - 1.0)}],
                      options={"ftol": 1e-12, "maxiter": 500})
    w = np.clip(result.x if result.success else start, 0.0, None)
    best = np.eye(m)[int(np.argmin([np.mean((p[:, j] - y) ** 2) for j in range(m)]))]
    if np.mean((p @ (w / w.sum()) - y) ** 2) > np.mean((p @ best - y) ** 2):
        w = best  # the optimiser stopped short: the best single member is a feasible blend
    return w / w.sum()


class StackPredictor:
    """Non-negative weights summing to 1 over member predictors, learned out-of-fold."""

    name: ClassVar[str] = "stack"
    takes: ClassVar[str] = ALL_FEATURES  # its members' columns
    uses_feature: ClassVar[bool] = True  # the column of its one-column members without their own
    fits_precomputed: ClassVar[bool] = False
    trains_on_device: ClassVar[bool] = False
    # a record missing a one-feature member's column is refused (fit_predict asks used_columns)
    handles_missing: ClassVar[bool] = False

    # (predictor_class, make_predictor) of the registry, given by it (``use_registry``):
    # the registry imports this module, so this module does not import it
    _registry: ClassVar[tuple | None] = None

    @classmethod
    def use_registry(cls, predictor_class, make_predictor) -> None:
        cls._registry = (predictor_class, make_predictor)

    @classmethod
    def registry(cls) -> tuple:
        assert cls._registry is not None, "the stack's members come from PREDICTORS: import predictors first"
        return cls._registry

    @classmethod
    def used_columns(cls, names: list[str], feature: str | None) -> list[str]:
        """The default members' columns that must have a value (the logistic member's;
        a configured one-feature member on another column refuses its own gaps); none
        when no column can be chosen by default (a member with its own feature says so))."""
        try:
            return [logistic_feature(names, feature)]
        except DataError:
            return []

    def __init__(self, *, feature: str | None = None, seed: int = 0, settings: dict | None = None) -> None:
        """``settings`` override ``STACK_SETTINGS`` (``--predictor-options``).

        Raises:
            ValueError: for an unknown setting, a member without a registered
                ``predictor``, a member key other than ``MEMBER_KEYS``, a member setting its
                predictor does not have, or ``inner_folds`` other than a whole number >= 2.
        """
        self.feature = feature
        self.seed = seed
        unknown = sorted(set(settings or {}) - set(STACK_SETTINGS))
        if unknown:
            raise ValueError(f"--predictor-options: stack has no setting {unknown}; its settings "
                             f"(with defaults): {STACK_SETTINGS}")
        self.settings = {**STACK_SETTINGS, **(settings or {})}
        members = self.settings["members"]
        if not isinstance(members, list) or not members:
            raise ValueError(f"--predictor-options: stack's members must be a non-empty list, got {shown(members)}")
        for index, member in enumerate(members):
            _check_member(index, member, self.seed)
        self.settings["inner_folds"] = inner_folds(self.settings["inner_folds"])
        self.members: list = []
        self.columns: list[str | None] = []
        self.weights = np.zeros(0)
        self.oof_rmse: list[float] = []
        self.grouped_by = ""
        self.n_fit = 0
        self.notes: list[str] = []

    def _make(self, index: int, names: list[str]):
        make_predictor = self.registry()[1]
        member = self.settings["members"][index]
        feature = member.get("feature")
        if self.registry()[0](member["predictor"]).takes == ONE_COLUMN and feature is None:
            feature = logistic_feature(names, self.feature)
        options = {"settings": member["settings"]} if member.get("settings") else None
        return make_predictor(member["predictor"], feature=feature, seed=self.seed, options=options), feature

    def fit(self, features: FeatureTable, target_0_100: np.ndarray, records: list[dict]) -> None:
        """Raises: ValueError when the records hold fewer groups than inner folds, or a member's fit fails;
        DataError from a member (a missing or out-of-range column)."""
        y = np.asarray(target_0_100, dtype=float)
        n_folds = int(self.settings["inner_folds"])
        groups, _, self.grouped_by = fold_groups(records)
        folds = prompt_folds(groups, n_folds=n_folds, seed=self.seed,
                             kind="groups of tracks and prompts" if self.grouped_by == "track" else "prompts")
        m = len(self.settings["members"])
        oof = np.full((len(records), m), np.nan)
        self.notes = []
        for fold in range(n_folds):
            train, held = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
            for j in range(m):
                model, _ = self._make(j, features.names)
                model.fit(_rows(features, train), y[train], [records[i] for i in train])
                oof[held, j] = model.predict(_rows(features, held), [records[i] for i in held])
        oof = np.clip(oof, 0.0, 100.0)
        self.weights = convex_weights(oof, y)
        self.oof_rmse = [float(np.sqrt(np.mean((oof[:, j] - y) ** 2))) for j in range(m)]
        self.members, self.columns = [], []
        for j in range(m):
            model, column = self._make(j, features.names)
            model.fit(features, y, records)
            self.notes += model.notes
            self.members.append(model)
            self.columns.append(column)
        self.n_fit = len(records)
        logger.debug("stack weights %s (inner out-of-fold RMSE %s)", self.weights.round(3).tolist(),
                     [round(r, 2) for r in self.oof_rmse])

    def predict(self, features: FeatureTable, records: list[dict]) -> np.ndarray:
        assert self.members, "predict before fit"
        out = np.zeros(len(records))
        for w, model in zip(self.weights, self.members):
            if w > 0:
                out += w * np.clip(model.predict(features, records), 0.0, 100.0)
        return np.clip(out, 0.0, 100.0)

    def params(self) -> dict:
        assert self.members, "params before fit"
        return {"predictor": self.name, "n_fit": self.n_fit, "seed": self.seed,
                "inner_folds": int(self.settings["inner_folds"]), "grouped_by": self.grouped_by,
                "members": [{"predictor": m.name, "feature": c, "weight": float(w), "inner_oof_rmse_0_100": r,
                             "params": m.params()}
                            for m, c, w, r in zip(self.members, self.columns, self.weights, self.oof_rmse)]}

    def save(self, path_stem: Path) -> list[Path]:
        """``<stem>.json`` (weights and every member's parameters), then each member's own
        files under ``<stem>.member<i>.<name>``."""
        assert self.members, "save before fit"
        path = Path(f"{path_stem}.json")
        write_json_atomic(path, self.params())
        paths = [path]
        for i, model in enumerate(self.members):
            paths += model.save(Path(f"{path_stem}.member{i}.{model.name}"))
        return paths


def _rows(table: FeatureTable, rows: np.ndarray) -> FeatureTable:
    return FeatureTable([table.signals[i] for i in rows], list(table.names), table.values[rows])
