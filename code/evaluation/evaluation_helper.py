"""The Judge: Stage 2 as three calls, the façade over ``code/evaluation/``'s rooms.

- transcribe and measure: ``split_table`` (``features/extract``: both ears through
  Whisper, words correct by the official scorer, ASR confidence, STOI/eSTOI; or the
  whisper-head's encoder embeddings), every value from the content-addressed store
  (``cache.py``) when it was computed before;
- calibrate: ``fit_set`` (``prediction/fit_set``: the labelled listeners and their
  features) and a predictor (``prediction/predictors``) fitted on them;
- write: ``predict_and_write`` predicts the split (out-of-fold where it meets the fit
  set) and writes the submission with its provenance (``outputs/submission``).

Rooms, bottom first (each imports only the ones before it): ``cache``/``table``,
``asr`` (engines, scorer, embeddings), ``features``, ``comparison`` (metrics, pairing),
``prediction``, ``outputs``; this module sits on top.
"""

from __future__ import annotations

import dataclasses

from code.data.layout import SplitData
from code.evaluation.features.extract import split_table
from code.evaluation.outputs.submission import log_metrics, write_outputs
from code.evaluation.prediction.fit_set import FitSet, fit_records, fit_set, fit_share, labelled
from code.evaluation.prediction.fitting import fit_predict
from code.evaluation.prediction.predictors import predictor_class
from code.evaluation.table import FeatureTable

__all__ = ["FitSet", "fit_records", "fit_set", "fit_share", "labelled", "predict_and_write", "split_table"]


def predict_and_write(cfg, split: SplitData, table: FeatureTable, fits: FitSet, tag: str,
                       feature: str | None, model: str | None = None) -> dict[str, float]:
    """Fit the predictor, predict the split (out-of-fold where it meets the fit set),
    write the submission and log figures when the split has labels."""
    signals = [r["signal"] for r in split.records]
    predict_table = table.select(signals) if fits.columns is None else _columns(table, fits.columns, split)
    if fits.columns and feature in fits.columns:
        feature = fits.columns[feature]
    predictions, predictor = fit_predict(
        cfg.predictor, fit_table=fits.table, fit_records=fits.records,
        fit_target_0_100=fits.target_0_100, predict_table=predict_table,
        predict_records=split.records, n_folds=cfg.folds, seed=cfg.seed, feature=feature,
        options=predictor_options(cfg), skip_invalid=cfg.skip_invalid)
    left_out = [p for p in getattr(predictor, "skipped", []) if p.signal not in predictions]
    if left_out:  # --skip-invalid: records missing the predictor's feature are not predicted
        split = dataclasses.replace(split, records=[r for r in split.records if r["signal"] in predictions],
                                    skipped=split.skipped + left_out)
    write_outputs(cfg, split, predictions, tag, predictor=predictor, model=model)
    log_metrics(cfg, split, predictions, fits)
    return predictions


def _columns(table: FeatureTable, columns: dict[str, str], split: SplitData) -> FeatureTable:
    """The predicted split's table reduced and renamed to the fit set's columns
    (``{predicted name: fit name}``), e.g. the better-ear score as the official column."""
    rows = table.select([r["signal"] for r in split.records])
    kept = [rows.names.index(name) for name in columns]
    return FeatureTable(rows.signals, list(columns.values()), rows.values[:, kept])


def predictor_options(cfg) -> dict | None:
    """Extra settings a predictor takes: ``--predictor-options`` (overriding its defaults,
    e.g. gbm's ``learning_rate``) and, for one that trains on a device, ``--asr-device``."""
    options = {"settings": dict(cfg.predictor_options)} if cfg.predictor_options else {}
    if predictor_class(cfg.predictor).trains_on_device:
        options["device"] = cfg.asr_device
    return options or None
