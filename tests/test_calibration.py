"""Calibration: the 0..100 logistic, and honest out-of-fold predictions on train."""

from __future__ import annotations

import numpy as np
import pytest

from code.evaluation.prediction.calibration import LogisticCalibration, prompt_folds


def _pairs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, n)
    y = 100 / (1 + np.exp(-8 * (x - 0.5))) + rng.normal(0, 5, n)
    return x, np.clip(y, 0, 100)


def test_fitted_curve_spans_0_to_100():
    x, y = _pairs()
    model = LogisticCalibration.fit(x, y)
    assert model.x0 == pytest.approx(0.5, abs=0.05) and model.k == pytest.approx(8, rel=0.2)
    assert model.predict(np.array([0.0]))[0] < 5 and model.predict(np.array([1.0]))[0] > 95


def test_predictions_monotonic_and_in_range():
    x, y = _pairs()
    grid = np.linspace(-0.5, 1.5, 101)
    predicted = LogisticCalibration.fit(x, y).predict(grid)
    assert np.all(np.diff(predicted) >= 0) and predicted.min() >= 0 and predicted.max() <= 100


def test_the_recipe_bug_is_refused():
    x, y = _pairs()
    with pytest.raises(ValueError, match="0..1 correctness"):
        LogisticCalibration.fit(x, y / 100)  # correctness without x100


def test_too_few_pairs():
    with pytest.raises(ValueError, match="at least 3"):
        LogisticCalibration.fit(np.array([0.1, 0.9]), np.array([10.0, 90.0]))


def test_folds_group_prompts_and_are_deterministic():
    prompts = [f"prompt {i % 40}" for i in range(120)]
    folds = prompt_folds(prompts, n_folds=5, seed=0)
    for prompt in set(prompts):
        assert len({f for p, f in zip(prompts, folds) if p == prompt}) == 1
    assert np.array_equal(folds, prompt_folds(prompts, n_folds=5, seed=0))
    assert set(folds) == set(range(5))


def test_out_of_fold_never_sees_its_own_prompt():
    from code.evaluation.prediction.fitting import fit_predict
    from code.evaluation.table import FeatureTable

    x, y = _pairs(150)
    prompts = [f"p{i % 30}" for i in range(150)]
    records = [{"signal": f"s{i}", "prompt": p, "hearing_loss": "Mild"} for i, p in enumerate(prompts)]
    table = FeatureTable([r["signal"] for r in records], ["asr.score"], x[:, None])

    def oof(target):
        predicted, _ = fit_predict("logistic", fit_table=table, fit_records=records, fit_target_0_100=target,
                                   predict_table=table, predict_records=records, feature="asr.score")
        return np.array([predicted[r["signal"]] for r in records])

    # Poison one prompt's labels: in-sample fitting would pull its predictions up.
    y_poisoned = y.copy()
    poisoned = np.array([p == "p7" for p in prompts])
    y_poisoned[poisoned] = 100.0
    assert np.allclose(oof(y_poisoned)[poisoned], oof(y)[poisoned])  # its own labels never used
    assert not np.allclose(oof(y_poisoned)[~poisoned], oof(y)[~poisoned])  # but they are used for others


def test_fold_groups_join_a_track_and_fall_back_to_prompts():
    """Mutation guarded: grouping by prompt alone puts the two prompts of track t1 in two groups."""
    from code.evaluation.prediction.calibration import fold_groups

    fit = [{"signal": "a", "prompt": "p1", "fma": "t1"}, {"signal": "b", "prompt": "p2", "fma": "t1"},
           {"signal": "c", "prompt": "p3", "fma": "t2"}, {"signal": "d", "prompt": "p3", "fma": "t3"},
           {"signal": "e", "prompt": "p4", "fma": "t4"}]
    other = [{"signal": "v", "prompt": "p2"}, {"signal": "w", "prompt": "p9"}]
    groups, other_groups, how = fold_groups(fit, other)
    assert how == "track"
    assert groups[0] == groups[1] != groups[2]  # one track, two prompts: one group
    assert groups[2] == groups[3]  # one prompt in two tracks joins them
    assert len(set(groups)) == 3 and other_groups[0] == groups[0] and other_groups[1] not in groups
    by_prompt, _, how = fold_groups(fit, by="prompt")
    assert how == "prompt" and len(set(by_prompt)) == 4
    assert fold_groups([{k: v for k, v in r.items() if k != "fma"} for r in fit])[2] == "prompt"
    with pytest.raises(ValueError, match="signal e has none"):
        fold_groups(fit[:4] + [{"signal": "e", "prompt": "p4"}], by="track")
