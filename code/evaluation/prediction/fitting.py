"""Fitting a predictor honestly: out-of-fold predictions for every record whose prompt (or
track) is among the fitted ones, a model fitted on all of them for the rest, and records
with missing features refused or, with ``skip_invalid``, left out and listed."""

from __future__ import annotations

import logging

import numpy as np

from code.errors import DataError, Problem
from code.evaluation.features.chorus import with_chorus
from code.evaluation.prediction.calibration import fold_groups, prompt_folds
from code.evaluation.prediction.capabilities import describe
from code.evaluation.prediction.predictors import Predictor, make_predictor, pick_feature, predictor_class
from code.evaluation.table import FeatureTable, check_same_features, missing_counts

logger = logging.getLogger(__name__)


def _check_target(target_0_100: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(target_0_100, dtype=float)
    if y.shape != (n,):
        raise ValueError(f"need one target per fitted record ({n}), got shape {y.shape}")
    if not (np.all(np.isfinite(y)) and np.all((y >= 0) & (y <= 100))):
        raise ValueError("fit targets must be finite and within 0..100")
    if np.all(y <= 1.0) and np.any(y > 0):
        raise ValueError("fit targets look like 0..1 correctness; pass correctness x 100")
    return y


def fit_predict(name: str, *, fit_table: FeatureTable, fit_records: list[dict],
                fit_target_0_100: np.ndarray, predict_table: FeatureTable,
                predict_records: list[dict], n_folds: int = 5, seed: int = 0,
                feature: str | None = None, options: dict | None = None,
                group_by: str = "auto", skip_invalid: bool = False
                ) -> tuple[dict[str, float], Predictor]:
    """Fit predictor ``name`` on the fit records and predict the predicted records (0..100).

    A predicted record whose group occurs among the fit records (in particular a
    record of the fit set itself) is predicted out-of-fold: the fit records' groups
    (``fold_groups``: by track when every fit record carries ``fma``, else by
    prompt; ``group_by`` forces one) are split into ``n_folds`` folds
    (``prompt_folds``, ``seed``) and it is predicted by a model fitted on the
    other folds only, so no model that predicts a record has seen its label or any
    record of its prompt or track. Every other record is predicted by the model
    fitted on all fit records, which is also returned (to be saved beside the
    submission). The log says how the folds were grouped. Both tables get their chorus
    columns first (``with_chorus``: several ASR models' scores summarised), whatever made them.

    Missing feature values (NaN): a predictor with ``handles_missing`` (gbm) uses
    them; for the others a record missing a value of a column it uses is refused
    (``DataError`` naming it) or, with ``skip_invalid``, left out of the fit or of
    the predictions, logged and listed in the returned predictor's ``skipped``.

    Returns:
        ``{signal: prediction 0..100}`` in the order of ``predict_records`` (less
        any left out), and the predictor fitted on all fit records.

    Raises:
        ValueError: for an unknown predictor, ``n_folds < 2``, fewer distinct fit
            groups than folds (when any record is predicted out-of-fold), or
            targets off the 0..100 scale.
        DataError: when a record has no row in its table, a used feature is
            missing (see above), or the two tables' feature columns differ (both
            lists named).
    """
    if n_folds < 2:
        raise ValueError(f"--folds must be at least 2 for out-of-fold predictions, got {n_folds}")
    cls = predictor_class(name)
    y = _check_target(fit_target_0_100, len(fit_records))
    fit_table, predict_table = with_chorus(fit_table), with_chorus(predict_table)  # from any route
    fit_x = fit_table.select([r["signal"] for r in fit_records])
    predict_x = check_same_features(fit_table, predict_table).select([r["signal"] for r in predict_records])
    _log_ignored_feature(cls, fit_x.names, feature)
    try:
        used_here = cls.used_columns(fit_x.names, feature)
    except DataError:
        used_here = []
    logger.info("predictor %s %s", name, describe(cls, used_here))
    skipped: list[Problem] = []
    if not cls.handles_missing:
        used = cls.used_columns(fit_x.names, feature)
        keep_fit, problems_fit = _complete_rows(fit_x, used, name, "fit", skip_invalid)
        keep_predict, problems_predict = _complete_rows(predict_x, used, name, "predicted", skip_invalid)
        skipped = problems_fit + [p for p in problems_predict if p.signal not in {q.signal for q in problems_fit}]
        if problems_fit:
            fit_x, y = _rows(fit_x, keep_fit), y[keep_fit]
            fit_records = [fit_records[i] for i in keep_fit]
        if problems_predict:
            predict_x = _rows(predict_x, keep_predict)
            predict_records = [predict_records[i] for i in keep_predict]
    else:
        counts = {n: c for n, c in missing_counts(fit_x).items() if c}
        if counts:
            logger.info("%s: %d missing value(s) in the fitted features, used as missing (%s)", name,
                        sum(counts.values()), ", ".join(f"{n}: {c}" for n, c in counts.items()))

    full = make_predictor(name, feature=feature, seed=seed, options=options)
    full.fit(fit_x, y, fit_records)
    full.skipped = skipped
    for note in full.notes:
        logger.warning(note)
    predictions = np.full(len(predict_records), np.nan)

    fit_groups, predict_groups, how = fold_groups(fit_records, predict_records, by=group_by)
    seen = set(fit_groups)
    shared = np.array([g in seen for g in predict_groups], dtype=bool)
    if np.any(~shared):
        rows = np.flatnonzero(~shared)
        predictions[rows] = full.predict(_rows(predict_x, rows), [predict_records[i] for i in rows])
    if np.any(shared):
        folds = prompt_folds(fit_groups, n_folds=n_folds, seed=seed, kind=_GROUPS_PLURAL[how])
        fold_of = dict(zip(fit_groups, folds.tolist()))
        predict_folds = np.array([fold_of.get(g, -1) for g in predict_groups])
        for fold in range(n_folds):
            rows = np.flatnonzero(shared & (predict_folds == fold))
            if rows.size == 0:
                continue
            train = np.flatnonzero(folds != fold)
            model = make_predictor(name, feature=feature, seed=seed, options=options)
            model.fit(_rows(fit_x, train), y[train], [fit_records[i] for i in train])
            for note in model.notes:
                logger.debug("fold %d: %s", fold, note)
            predictions[rows] = model.predict(_rows(predict_x, rows), [predict_records[i] for i in rows])
    logger.info("predictor %s: fitted on %d records; %d prediction(s) out-of-fold (%d folds grouped by "
                "%s: %d groups), %d from the model fitted on all", name, len(fit_records),
                int(shared.sum()), n_folds, _GROUP_KIND[how], len(seen), int((~shared).sum()))
    assert np.all(np.isfinite(predictions)), "a prediction was left unset"
    predictions = np.clip(predictions, 0.0, 100.0)
    return dict(zip((r["signal"] for r in predict_records), predictions.tolist())), full


_GROUP_KIND = {"track": "track (fma) and prompt", "prompt": "prompt"}
_GROUPS_PLURAL = {"track": "groups of tracks (fma) and prompts", "prompt": "prompts"}


def _log_ignored_feature(cls: type, names: list[str], feature: str | None) -> None:
    """Say that a predictor using every column ignores ``feature``, only when the
    caller named one other than the default a one-feature predictor would take
    (the pipeline passes that default when the user set none)."""
    if feature is None or cls.uses_feature:
        return
    try:
        default = pick_feature(names, None)
    except DataError:
        default = None
    if feature != default:
        logger.info("%s uses every feature column; feature=%s is ignored", cls.name, feature)


def _complete_rows(table: FeatureTable, used: list[str], name: str, which: str, skip_invalid: bool
                   ) -> tuple[np.ndarray, list[Problem]]:
    """The rows with a value in every ``used`` column, and a problem per other row.

    Raises:
        DataError: naming the signals and columns, unless ``skip_invalid``.
    """
    index = [table.names.index(n) for n in used]
    missing = np.isnan(table.values[:, index])
    bad = np.flatnonzero(missing.any(axis=1))
    problems = [Problem(table.signals[i], f"{name}: missing feature value(s) "
                        f"{[used[j] for j in np.flatnonzero(missing[i])][:5]}") for i in bad]
    if problems and not skip_invalid:
        shown = "; ".join(str(p) for p in problems[:5])
        raise DataError(f"{name} cannot use {len(problems)} {which} signal(s) with a missing value: {shown}"
                        + (f" ... and {len(problems) - 5} more" if len(problems) > 5 else "")
                        + " (gbm takes missing values; --skip-invalid leaves these signals out)")
    for p in problems:
        logger.warning("leaving out a %s signal: %s", which, p)
    return np.flatnonzero(~missing.any(axis=1)), problems


def _rows(table: FeatureTable, rows: np.ndarray) -> FeatureTable:
    return FeatureTable([table.signals[i] for i in rows], list(table.names), table.values[rows])
