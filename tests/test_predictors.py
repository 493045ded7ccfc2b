"""Learned predictors: honest (out-of-fold by prompt) fits, the registry, saving.

Synthetic numeric features stand in for Stage-2 scores: the predictors are what
is under test, not the features. Prompts come in random order and their counts
do not divide by the folds.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from code.config import HEARING_LOSS_CATEGORIES
from code.errors import DataError
from code.evaluation.comparison.metrics import clip_metrics
from code.evaluation.prediction.fitting import fit_predict
from code.evaluation.prediction.predictors import PREDICTORS, make_predictor, n_words
from code.evaluation.table import FeatureTable


def _records(n_prompts=67, seed=0):
    """Three hearing-loss versions per prompt, one dropped (201 - 1 = 200 records), shuffled."""
    rng = np.random.default_rng(seed)
    records = []
    for p in range(n_prompts):
        words = " ".join(f"w{p}x{j}" for j in range(5 + p % 6))
        for loss in HEARING_LOSS_CATEGORIES:
            records.append({"signal": f"s{p}_{loss[:2]}", "prompt": words, "hearing_loss": loss})
    records.pop(17)
    order = rng.permutation(len(records))
    records = [records[i] for i in order]
    # a clean ASR-like score in 0..1, and truth that follows it, worse with more hearing loss
    penalty = {"No Loss": 0.0, "Mild": 10.0, "Moderate": 25.0}
    x = rng.uniform(0, 1, len(records))
    truth = np.array([100 / (1 + np.exp(-8 * (xi - 0.5))) - penalty[r["hearing_loss"]]
                      for xi, r in zip(x, records)]) + rng.normal(0, 6, len(records))
    truth = np.clip(truth, 0, 100)
    for r, t in zip(records, truth):
        r["correctness"] = t / 100
    table = FeatureTable([r["signal"] for r in records], ["asr.score", "other"],
                         np.column_stack([x, rng.uniform(0, 1, len(records))]))
    return records, truth, table


@pytest.fixture(scope="module")
def data():
    return _records()


def _table_for(name, table):
    """whisper-head reads two ears' embeddings: the left ear holds the two columns, the
    right ear a weaker copy of the score (so the better ear is the left)."""
    if name != "whisper-head":
        return table
    from code.evaluation.asr.embeddings import embedding_columns

    ears = np.hstack([table.values, table.values * [0.5, 1.0]])
    return FeatureTable(table.signals, embedding_columns(2), ears)


def _oof(name, records, truth, table, **kw):
    table = _table_for(name, table)
    kw.setdefault("feature", "asr.score" if name != "gbm" else None)
    predicted, model = fit_predict(name, fit_table=table, fit_records=records, fit_target_0_100=truth,
                                   predict_table=table, predict_records=records, **kw)
    return np.array([predicted[r["signal"]] for r in records]), model


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PREDICTORS))
def test_shuffled_labels_make_out_of_fold_rmse_worse(data, name):
    records, truth, table = data
    honest, _ = _oof(name, records, truth, table)
    shuffled = np.random.default_rng(1).permutation(truth)
    noise, _ = _oof(name, records, shuffled, table)
    assert np.all((honest >= 0) & (honest <= 100))
    rmse = clip_metrics(honest, truth)["RMSE"]
    assert rmse < 0.75 * clip_metrics(noise, shuffled)["RMSE"]
    assert rmse < 0.75 * float(np.std(truth))  # well below the mean predictor


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PREDICTORS))
def test_no_fitted_model_saw_the_prompt_it_predicts(data, name, monkeypatch):
    """Every fit is logged with its prompts; every predict call is checked against them."""
    records, truth, table = data
    log = []

    class Spy(PREDICTORS[name]):
        def fit(self, features, target_0_100, fit_records):
            self.seen = {r["prompt"] for r in fit_records}
            self.seen_signals = {r["signal"] for r in fit_records}
            super().fit(features, target_0_100, fit_records)

        def predict(self, features, predict_records):
            log.append((self.seen, self.seen_signals, [r["prompt"] for r in predict_records]))
            return super().predict(features, predict_records)

    monkeypatch.setitem(PREDICTORS, name, Spy)
    predicted, _ = _oof(name, records, truth, table)
    assert len(predicted) == len(records) and len(log) == 5
    for seen, seen_signals, prompts in log:
        assert not seen & set(prompts)
        assert len(seen_signals) < len(records)  # never the full fit
    assert sorted(p for _, _, prompts in log for p in prompts) == sorted(r["prompt"] for r in records)


@pytest.mark.parametrize("name", sorted(PREDICTORS))
def test_new_prompts_use_the_model_fitted_on_everything(data, name):
    records, truth, table = data
    held_out = sorted({r["prompt"] for r in records})[:12]
    fit_rows = [i for i, r in enumerate(records) if r["prompt"] not in held_out]
    fit = [records[i] for i in fit_rows]
    new = [r for r in records if r["prompt"] in held_out]
    feature = None if name == "gbm" else "asr.score"
    table = _table_for(name, table)
    predicted, model = fit_predict(name, fit_table=table, fit_records=fit, fit_target_0_100=truth[fit_rows],
                                   predict_table=table, predict_records=new, feature=feature)
    direct = model.predict(table.select([r["signal"] for r in new]), new)
    assert list(predicted) == [r["signal"] for r in new]
    np.testing.assert_allclose(list(predicted.values()), np.clip(direct, 0, 100))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PREDICTORS))
def test_deterministic_and_saved(data, name, tmp_path):
    records, truth, table = data
    first, model = _oof(name, records, truth, table)
    second, _ = _oof(name, records, truth, table)
    np.testing.assert_array_equal(first, second)
    paths = model.save(tmp_path / f"predictor_{name}")
    assert all(p.is_file() for p in paths)
    params = json.loads(paths[0].read_text())
    assert params["predictor"] == name
    if name == "gbm":
        import joblib
        loaded = joblib.load(paths[1])
        assert loaded.n_features_in_ == len(table.names) + 2


def test_logistic_matches_an_independent_out_of_fold_reference(data):
    """The reference: prompts dealt to folds by a seeded permutation of the sorted
    prompts (the documented rule), one 0..100 logistic per fold fitted by scipy's
    least_squares (not curve_fit), each record predicted by the other folds' fit."""
    from scipy.optimize import least_squares

    records, truth, table = data
    prompts = [r["prompt"] for r in records]
    x = table.column("asr.score")
    unique = sorted(set(prompts))
    order = np.random.default_rng(0).permutation(len(unique))
    fold = np.array([{unique[j]: i % 5 for i, j in enumerate(order)}[p] for p in prompts])
    reference = np.empty(len(records))
    for f in range(5):
        train = fold != f
        fit = least_squares(lambda p: 100 / (1 + np.exp(-p[1] * (x[train] - p[0]))) - truth[train],
                            x0=[0.5, 5.0], xtol=1e-12, ftol=1e-12, gtol=1e-12)
        reference[~train] = 100 / (1 + np.exp(-fit.x[1] * (x[~train] - fit.x[0])))
    ours, _ = _oof("logistic", records, truth, table)
    np.testing.assert_allclose(ours, reference, atol=1e-3)


def test_one_column_is_used_and_several_need_a_name(data):
    records, truth, table = data
    one = FeatureTable(table.signals, ["asr.score"], table.values[:, :1])
    assert len(_oof("logistic", records, truth, one, feature=None)[0]) == len(records)
    with pytest.raises(DataError, match=r"2 feature columns \['asr.score', 'other'\].*--feature NAME"):
        _oof("logistic", records, truth, table, feature=None)
    with pytest.raises(DataError, match=r"'nope' is not a feature column; columns are"):
        _oof("logistic-hl", records, truth, table, feature="nope")


def test_official_files_calibrate_their_asr_column_by_default(data):
    """pyclarity's precomputed Whisper and STOI files together: the logistic calibrates the
    Whisper column (the official baseline's), as if --feature whisper.mixture were given."""
    records, truth, table = data
    official = FeatureTable(table.signals, ["stoi", "whisper.mixture"], table.values[:, ::-1])
    named = FeatureTable(table.signals, ["whisper.mixture"], table.values[:, :1])
    by_default, _ = _oof("logistic", records, truth, official, feature=None)
    np.testing.assert_array_equal(by_default, _oof("logistic", records, truth, named, feature=None)[0])


def test_logistic_needs_a_0_1_feature(data):
    records, truth, table = data
    shifted = FeatureTable(table.signals, table.names, table.values - 5.0)
    with pytest.raises(DataError, match="needs feature 'asr.score' in 0..1"):
        _oof("logistic", records, truth, shifted)


@pytest.mark.parametrize("kw, message", [
    ({"n_folds": 1}, "--folds must be at least 2"),
    ({"n_folds": 500}, "need at least 500 distinct prompts"),
])
def test_fold_counts_are_checked(data, kw, message):
    records, truth, table = data
    with pytest.raises(ValueError, match=message):
        _oof("logistic", records, truth, table, **kw)


def test_unknown_predictor_lists_the_known_ones(data):
    records, truth, table = data
    with pytest.raises(ValueError, match=r"unknown predictor 'nope'.*'gbm'.*'logistic'"):
        _oof("nope", records, truth, table)


def test_targets_on_the_wrong_scale_are_refused(data):
    records, truth, table = data
    with pytest.raises(ValueError, match="0..1 correctness"):
        _oof("gbm", records, truth / 100, table)


def test_feature_names_must_match_between_splits(data):
    records, truth, table = data
    other = FeatureTable(table.signals, ["asr.score", "stoi"], table.values)
    with pytest.raises(DataError, match=r"fit has \['asr.score', 'other'\], predicted has \['asr.score', 'stoi'\]"):
        fit_predict("gbm", fit_table=table, fit_records=records, fit_target_0_100=truth,
                    predict_table=other, predict_records=records)


def test_hearing_loss_logistic_falls_back_and_says_so(data, caplog):
    records, truth, table = data
    keep = [i for i, r in enumerate(records) if r["hearing_loss"] != "Moderate" or i % 10 == 0]
    few = [records[i] for i in keep]
    with caplog.at_level(logging.WARNING, logger="code.evaluation.prediction.predictors"):
        _, model = _oof("logistic-hl", few, truth[keep], table)
    assert "'Moderate' has" in caplog.text and "pooled" in caplog.text
    assert set(model.params()["per_category"]) == {"No Loss", "Mild"}


def test_per_category_fits_help_when_the_categories_differ(data):
    records, truth, table = data
    pooled, _ = _oof("logistic", records, truth, table)
    per_category, _ = _oof("logistic-hl", records, truth, table)
    assert clip_metrics(per_category, truth)["RMSE"] < clip_metrics(pooled, truth)["RMSE"]


def test_n_words_from_the_record_or_the_prompt():
    assert n_words({"prompt": "a b c", "n_words": 7}) == 7
    assert n_words({"prompt": "one two three four"}) == 4


def test_gbm_uses_the_hearing_loss_category():
    """Truth set by hearing loss alone, features pure noise: only gbm can follow it."""
    records, _, table = _records(seed=3)
    level = {"No Loss": 80.0, "Mild": 50.0, "Moderate": 20.0}
    truth = np.array([level[r["hearing_loss"]] for r in records])
    gbm, _ = _oof("gbm", records, truth, FeatureTable(table.signals, ["other"], table.values[:, 1:]))
    assert clip_metrics(gbm, truth)["RMSE"] < 5.0 < float(np.std(truth))


def test_make_predictor_builds_every_registered_name():
    for name in PREDICTORS:
        assert make_predictor(name).name == name


def _with_gaps(table, rows, column):
    values = table.values.copy()
    values[rows, table.names.index(column)] = np.nan
    return FeatureTable(table.signals, table.names, values)


def test_gbm_fits_and_predicts_with_missing_values(data, caplog):
    records, truth, table = data
    gappy = _with_gaps(_with_gaps(table, list(range(0, 200, 9)), "other"), list(range(3, 200, 17)), "asr.score")
    with caplog.at_level(logging.INFO, logger="code.evaluation.prediction"):
        predicted, _ = _oof("gbm", records, truth, gappy)
    assert np.all(np.isfinite(predicted)) and len(predicted) == len(records)
    assert clip_metrics(predicted, truth)["RMSE"] < 0.75 * float(np.std(truth))
    assert "asr.score: 12, other: 23" in caplog.text


@pytest.mark.parametrize("name", ["logistic", "logistic-hl"])
def test_logistic_refuses_a_missing_feature_naming_it_or_skips_it(data, name, caplog):
    records, truth, table = data
    gappy = _with_gaps(table, [5, 40], "asr.score")
    with pytest.raises(DataError, match=rf"{records[5]['signal']}: {name}: missing.*'asr.score'.*--skip-invalid"):
        _oof(name, records, truth, gappy)
    _oof(name, records, truth, _with_gaps(table, [5, 40], "other"))  # a column it does not use: fine
    with caplog.at_level(logging.WARNING, logger="code.evaluation.prediction.predictors"):
        predicted, model = fit_predict(name, fit_table=gappy, fit_records=records, fit_target_0_100=truth,
                                       predict_table=gappy, predict_records=records, feature="asr.score",
                                       skip_invalid=True)
    left_out = {records[5]["signal"], records[40]["signal"]}
    assert set(predicted) == {r["signal"] for r in records} - left_out
    assert {p.signal for p in model.skipped} == left_out and records[40]["signal"] in caplog.text


def _tracks(records, per_track=4):
    """Give the records tracks of several prompts each (as CLIP1's fma)."""
    prompts = sorted({r["prompt"] for r in records})
    track_of = {p: f"{i // per_track:06d}" for i, p in enumerate(prompts)}
    return [{**r, "fma": track_of[r["prompt"]]} for r in records]


@pytest.mark.parametrize("name", ["logistic", "gbm"])
def test_folds_never_split_a_track_and_the_log_says_so(data, name, monkeypatch, caplog):
    """Mutation guarded: grouping by prompt when the metadata has fma splits tracks across folds."""
    records, truth, table = data
    records = _tracks(records)
    log = []

    class Spy(PREDICTORS[name]):
        def fit(self, features, target_0_100, fit_records):
            self.tracks = {r.get("fma") for r in fit_records}
            super().fit(features, target_0_100, fit_records)

        def predict(self, features, predict_records):
            log.append((self.tracks, {r.get("fma") for r in predict_records}))
            return super().predict(features, predict_records)

    monkeypatch.setitem(PREDICTORS, name, Spy)
    with caplog.at_level(logging.INFO, logger="code.evaluation.prediction"):
        _oof(name, records, truth, table)
    assert "grouped by track (fma) and prompt: 17 groups" in caplog.text
    assert len(log) == 5 and all(not seen & predicted for seen, predicted in log)
    caplog.clear()
    log.clear()
    with caplog.at_level(logging.INFO, logger="code.evaluation.prediction"):
        _oof(name, [{k: v for k, v in r.items() if k != "fma"} for r in records], truth, table)
    assert "grouped by prompt: 67 groups" in caplog.text


def test_predictor_log_names_only_a_feature_the_user_set(data, caplog):
    records, truth, table = data
    named = FeatureTable(table.signals, ["asr.tiny.en.better_ear", "other"], table.values)
    with caplog.at_level(logging.INFO, logger="code.evaluation.prediction"):
        _oof("gbm", records, truth, named, feature="asr.tiny.en.better_ear")  # the pipeline's default
        assert "ignored" not in caplog.text
        _oof("gbm", records, truth, named, feature="other")
    assert "feature=other is ignored" in caplog.text
    ours, _ = _oof("logistic", records, truth, named, feature=None)  # the better-ear score by default
    np.testing.assert_allclose(ours, _oof("logistic", records, truth, named, feature="asr.tiny.en.better_ear")[0])


def test_gbm_with_nulls_on_the_demo_predicts_every_signal(tmp_path, caplog):
    """main.py --scores on the demo's metadata with feature files holding null (as real
    PESQ files do): gbm fits on train and predicts every valid signal; the logistic on a
    column with nulls refuses, naming a signal."""
    from tests.conftest import ROOT, demo_records, run_main

    rng = np.random.default_rng(0)
    files = {}
    for split in ("train", "valid"):
        rows = []
        for i, r in enumerate(demo_records(split)):
            rows.append({"signal": r["signal"], "whisper.mixture": float(rng.uniform()),
                         "pesq.left": None if i % 4 == 0 else float(rng.uniform(1, 4.5))})
        files[split] = tmp_path / f"{split}.jsonl"
        files[split].write_text("".join(json.dumps(row) + "\n" for row in rows))

    def run(*extra):
        return run_main(["--data-root", ROOT / "data" / "demo", "--split", "valid", "--model", "identity",
                         "--scores", files["valid"], "--train-scores", files["train"],
                         "--results-dir", tmp_path / "r", *extra], caplog)

    code, log = run("--predictor", "gbm")
    assert code == 0, log[-2000:]
    written = sorted((tmp_path / "r").glob("submission_identity*_valid.csv"))
    assert len(written) == 1, written
    lines = written[0].read_text().splitlines()[1:]
    assert [line.split(",")[0] for line in lines] == [r["signal"] for r in demo_records("valid")]
    assert "pesq.left 6" in log  # 6 of the 24 valid signals, counted in the log
    code, refused = run("--predictor", "logistic", "--feature", "pesq.left")
    assert code != 0 and "missing feature value(s) ['pesq.left']" in refused
