"""Chorus features: several ASR models' words-correct scores summarised per ear, by
column name, the same from Stage 2 and from feature files."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from code.config import DEFAULTS
from code.data.validation import validate_split
from code.evaluation.asr.settings import asr_settings
from code.evaluation.cache import Store
from code.evaluation.features import extract
from code.evaluation.features.chorus import chorus_column, with_chorus
from code.evaluation.table import FeatureTable, read_feature_files


def _two_models():
    names = ["asr.tiny.en.left", "asr.tiny.en.right", "asr.tiny.en.better_ear", "asr.tiny.en.logprob_left",
             "asr.base.left", "asr.base.right", "asr.base.better_ear", "stoi.left"]
    values = np.array([[0.2, 0.6, 0.6, -0.3, 0.5, 0.1, 0.5, 0.7],
                       [1.0, 0.0, 1.0, -0.1, np.nan, 0.4, 0.4, 0.2]])
    return FeatureTable(["a", "b"], names, values)


def test_chorus_values_by_hand():
    table = with_chorus(_two_models())
    row = dict(zip(table.names, table.values[0]))
    assert row[chorus_column("left", "mean")] == pytest.approx(0.35)
    assert row[chorus_column("left", "min")] == pytest.approx(0.2)
    assert row[chorus_column("left", "max")] == pytest.approx(0.5)
    assert row[chorus_column("left", "spread")] == pytest.approx(0.3)
    assert row[chorus_column("right", "spread")] == pytest.approx(0.5)
    assert row[chorus_column("better_ear", "mean")] == pytest.approx(0.55)
    assert row[chorus_column("better_ear", "spread")] == pytest.approx(0.1)
    second = dict(zip(table.names, table.values[1]))
    assert np.isnan(second[chorus_column("left", "mean")])  # one model's value is missing
    assert second[chorus_column("better_ear", "min")] == pytest.approx(0.4)
    assert table.names[:8] == _two_models().names and len(table.names) == 8 + 12
    assert not any("logprob" in n for n in table.names[8:])  # confidences are not scores


def test_one_model_gets_no_chorus_and_stored_chorus_columns_are_rederived():
    one = FeatureTable(["a"], ["asr.tiny.en.left", "asr.tiny.en.right", "asr.tiny.en.better_ear"],
                       np.array([[0.1, 0.2, 0.2]]))
    assert with_chorus(one).names == one.names
    derived = with_chorus(_two_models())
    again = with_chorus(derived)
    assert again.names == derived.names
    np.testing.assert_array_equal(again.values, derived.values)


@pytest.mark.slow
def test_logistic_and_gbm_use_the_chorus(tmp_path):
    from code.evaluation.prediction.fitting import fit_predict

    rng = np.random.default_rng(0)
    rows, records = [], []
    for i in range(60):
        a, b = rng.uniform(0, 1, 2)
        rows.append({"signal": f"s{i}", "asr.m1.left": a, "asr.m1.right": b, "asr.m1.better_ear": max(a, b),
                     "asr.m2.left": a / 2, "asr.m2.right": b / 2, "asr.m2.better_ear": max(a, b) / 2})
        records.append({"signal": f"s{i}", "prompt": f"p{i % 20}", "hearing_loss": "Mild",
                        "correctness": float(np.clip(max(a, b) * 0.75 + rng.normal(0, 0.05), 0, 1))})
    path = tmp_path / "f.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    table, _ = read_feature_files([path], [r["signal"] for r in records])
    y = np.array([100 * r["correctness"] for r in records])
    for name in ("logistic", "logistic-hl"):
        _, model = fit_predict(name, fit_table=table, fit_records=records, fit_target_0_100=y,
                               predict_table=table, predict_records=records,
                               feature="asr.chorus.better_ear.mean")
        assert model.params()["feature"] == "asr.chorus.better_ear.mean"
    _, gbm = fit_predict("gbm", fit_table=table, fit_records=records, fit_target_0_100=y,
                         predict_table=table, predict_records=records,
                         options={"settings": {"max_iter": 10}})
    assert chorus_column("right", "spread") in gbm.params()["features"]


@pytest.mark.slow
def test_stage2_and_its_feature_file_give_the_same_chorus(tmp_path):
    """Stage 2 (``split_features``) with two ASR models on four demo signals. Their
    transcripts are SYNTHETIC and put in the store (the first model hears the lyric line,
    the second the line less its last two words), so nothing is transcribed; the scorer is
    the real one. Reading the features file it wrote gives the same chorus."""
    import shutil

    from tests.conftest import demo_records, make_clip_root

    root = make_clip_root(tmp_path / "data", "train", demo_records("train")[:4])
    shutil.rmtree(root / "cadenza_data" / "train" / "unprocessed")  # no STOI: not under test
    split = validate_split(root, "train", check_audio=False)
    paths = {r["signal"]: split.layout.audio_path(r["signal"], "signals") for r in split.records}
    store = Store(tmp_path / "store")
    tiny = asr_settings(DEFAULTS)
    other = dataclasses.replace(tiny, model="base.en")
    for r in split.records:
        digest = store.digest(paths[r["signal"]])
        for settings, words in ((tiny, r["prompt"].split()), (other, r["prompt"].split()[:-2])):
            ears = [{"text": " ".join(words), "avg_logprob": -0.2, "no_speech_prob": 0.1},
                    {"text": " ".join(words[1:]), "avg_logprob": -0.4, "no_speech_prob": 0.2}]
            store.put("transcript", extract.transcript_key(digest, settings, DEFAULTS.sample_rate),
                      {"ears": ears})
    stage2 = extract.split_features(split, paths, settings=[tiny, other], cache_folder=tmp_path / "out",
                                    store=store, sample_rate=DEFAULTS.sample_rate)
    chorus = [n for n in stage2.names if n.startswith("asr.chorus.")]
    assert len(chorus) == 12
    written = sorted((tmp_path / "out").glob("features.train.*.jsonl"))
    assert len(written) == 1 and "asr.chorus" not in written[0].read_text()  # derived, not stored
    read, _ = read_feature_files(written, [r["signal"] for r in split.records])
    read = with_chorus(read)  # as fit_predict sees a --scores table
    assert read.names == stage2.names
    np.testing.assert_allclose(read.values, stage2.values, equal_nan=True)
    scores = np.column_stack([stage2.column("asr.tiny.en.better_ear"), stage2.column("asr.base.en.better_ear")])
    assert np.all(scores[:, 0] > scores[:, 1])  # the synthetic second model hears less
    np.testing.assert_allclose(stage2.column("asr.chorus.better_ear.mean"), scores.mean(axis=1))
    np.testing.assert_allclose(stage2.column("asr.chorus.better_ear.spread"), scores[:, 0] - scores[:, 1])
