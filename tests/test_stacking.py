"""The ``stack`` predictor: convex weights learned from its members' out-of-fold
predictions, never from a model that saw the record's prompt or track."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_predictors import _records, _tracks

from code.evaluation.comparison.metrics import clip_metrics
from code.evaluation.prediction.fitting import fit_predict
from code.evaluation.prediction.predictors import PREDICTORS, make_predictor
from code.evaluation.prediction.stacking import convex_weights
from code.evaluation.table import FeatureTable

# gbm underfitted on purpose (5 trees): the logistic-hl member is clearly the better one
WEAK_GBM = {"members": [{"predictor": "logistic-hl"}, {"predictor": "gbm", "settings": {"max_iter": 5}}]}


@pytest.fixture(scope="module")
def data():
    return _records()


def test_weights_are_non_negative_and_sum_to_one():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 100, 300), rng.uniform(0, 100, 300)
    y = 1.5 * a - 0.5 * b  # the unconstrained least squares would give b a negative weight
    w = convex_weights(np.column_stack([a, b]), y)
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(w, [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(convex_weights(np.column_stack([a, b, (a + b) / 2]), (a + b) / 2),
                               [0, 0, 1], atol=1e-3)


def test_member_predictions_for_the_weights_are_out_of_fold(data, monkeypatch):
    """Every member prediction made while fitting the stack (those the weights learn
    from) comes from a member fitted without the predicted records' tracks and prompts."""
    records, truth, table = data
    records = _tracks(records)
    calls = []

    def spy(base):
        class Spy(base):
            def fit(self, features, target_0_100, fit_records):
                self.seen = {(r["prompt"], r["fma"]) for r in fit_records}
                super().fit(features, target_0_100, fit_records)

            def predict(self, features, predict_records):
                calls.append((self.name, self.seen, {(r["prompt"], r["fma"]) for r in predict_records}))
                return super().predict(features, predict_records)
        return Spy

    for name in ("logistic-hl", "gbm"):
        monkeypatch.setitem(PREDICTORS, name, spy(PREDICTORS[name]))
    stack = make_predictor("stack", feature="asr.score", options={"settings": WEAK_GBM})
    stack.fit(table, truth, records)
    assert stack.grouped_by == "track"
    assert sorted(n for n, _, _ in calls) == ["gbm"] * 5 + ["logistic-hl"] * 5
    for _, seen, predicted in calls:
        assert not {p for p, _ in seen} & {p for p, _ in predicted}
        assert not {t for _, t in seen} & {t for _, t in predicted}
    assert sum(len(p) for n, _, p in calls if n == "gbm") == len({(r["prompt"], r["fma"]) for r in records})


def test_stack_is_no_worse_than_its_best_member(data):
    records, truth, table = data

    def oof(name, **kw):
        predicted, model = fit_predict(name, fit_table=table, fit_records=records, fit_target_0_100=truth,
                                       predict_table=table, predict_records=records, feature="asr.score", **kw)
        return clip_metrics(np.array([predicted[r["signal"]] for r in records]), truth)["RMSE"], model

    hl, _ = oof("logistic-hl")
    weak, _ = oof("gbm", options={"settings": {"max_iter": 5}})
    stacked, model = oof("stack", options={"settings": WEAK_GBM})
    assert hl < 0.8 * weak  # one member is clearly better
    assert stacked <= 1.02 * hl
    weights = [m["weight"] for m in model.params()["members"]]
    assert weights[0] > 0.8 and min(weights) >= 0 and sum(weights) == pytest.approx(1.0)


@pytest.mark.parametrize("settings, message", [
    ({"members": [{"name": "gbm"}]}, "a stack member is"),
    ({"members": [{"predictor": "nope"}]}, "unknown predictor 'nope'"),
    ({"members": [{"predictor": "stack"}]}, "cannot be its own member"),
    ({"inner_folds": 1}, "inner_folds must be at least 2"),
    ({"weights": "free"}, "stack has no setting"),
])
def test_stack_settings_are_checked(settings, message):
    with pytest.raises(ValueError, match=message):
        make_predictor("stack", options={"settings": settings})


def test_stack_prefers_the_chorus_mean():
    from code.evaluation.prediction.stacking import StackPredictor

    names = ["asr.a.better_ear", "asr.chorus.better_ear.mean", "stoi.left"]
    assert StackPredictor.used_columns(names, None) == ["asr.chorus.better_ear.mean"]
    assert StackPredictor.used_columns(names, "asr.a.better_ear") == ["asr.chorus.better_ear.mean"]  # the default
    assert StackPredictor.used_columns(names, "stoi.left") == ["stoi.left"]  # named by the user
    assert StackPredictor.used_columns(names[:1] + names[2:], None) == ["asr.a.better_ear"]
    assert StackPredictor.used_columns(["whisper.mixture", "stoi"], None) == ["whisper.mixture"]  # the official ASR column


def test_members_with_their_own_feature_on_official_names(data):
    records, truth, table = data
    official = FeatureTable(table.signals, ["whisper.mixture", "stoi"], table.values)
    settings = {"members": [{"predictor": "logistic-hl", "feature": "whisper.mixture"},
                            {"predictor": "gbm", "settings": {"max_iter": 5}}]}
    predicted, model = fit_predict("stack", fit_table=official, fit_records=records, fit_target_0_100=truth,
                                   predict_table=official, predict_records=records,
                                   options={"settings": settings})
    assert len(predicted) == len(records) and model.params()["members"][0]["feature"] == "whisper.mixture"
