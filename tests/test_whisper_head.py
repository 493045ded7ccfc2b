"""Whisper encoder embeddings of real demo audio, and the whisper-head predictor on them.

The embedding tests run real Whisper tiny.en on a few demo signals; the head's
tests use synthetic embedding tables whose labels follow the better ear, so
they can tell a head that learns from one that does not.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DEMO_ROOT, demo_records

from code.data.held_out import held_out_prompts
from code.errors import DataError
from code.evaluation.asr import embeddings
from code.evaluation.asr.embeddings import audio_frames, embedding_columns, encoder_embeddings
from code.evaluation.asr.settings import ASRSettings
from code.evaluation.cache import Store
from code.evaluation.prediction.fitting import fit_predict
from code.evaluation.prediction.predictors import PREDICTORS, make_predictor
from code.evaluation.prediction.whisper_head import HEAD_SETTINGS, WhisperHeadPredictor, _head_module
from code.evaluation.table import FeatureTable

CHECKPOINT = os.environ.get("CLIP_OPENAI_CHECKPOINT")
N_DEMO = 2  # demo signals encoded (the machine is slow; each is two 30 s encoder windows)
TINY_DIM = 384  # tiny.en's d_model


def _demo_items(n: int = N_DEMO) -> list[tuple[str, Path]]:
    records = demo_records("train")[:n]
    return [(r["signal"], DEMO_ROOT / "cadenza_data" / "train" / "signals" / f"{r['signal']}.flac")
            for r in records]


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
    cache = Store(tmp_path_factory.mktemp("emb") / "store")
    table = encoder_embeddings(_demo_items(), settings=ASRSettings(), store=cache, sample_rate=44100)
    return table, cache


@pytest.mark.parametrize("samples, frames", [(0, 1), (1, 1), (320, 1), (321, 2), (16000, 50),
                                             (16000 * 30, 1500), (16000 * 45, 1500)])
def test_audio_frames(samples, frames):
    assert audio_frames(samples) == frames


@pytest.mark.slow
def test_embeddings_shape_and_ears(encoded):
    table, _ = encoded
    assert table.signals == [s for s, _ in _demo_items()]
    assert table.names == embedding_columns(TINY_DIM)
    assert table.values.shape == (N_DEMO, 2 * TINY_DIM)
    assert np.all(np.isfinite(table.values))
    left, right = table.values[:, :TINY_DIM], table.values[:, TINY_DIM:]
    assert not np.allclose(left, right)  # the two ears are encoded separately
    assert not np.allclose(table.values[0], table.values[1])  # and so are the signals


@pytest.mark.slow
def test_embeddings_cache_reused_and_damaged_entry_redone(encoded, monkeypatch, tmp_path):
    table, cache = encoded
    entries = sorted((cache.root / "embedding").glob("*/*.json"))
    assert len(entries) == N_DEMO

    def no_model(settings):
        raise AssertionError("the cache should have been used; a model was loaded")

    monkeypatch.setattr(embeddings, "make_engine", no_model)
    again = encoder_embeddings(_demo_items(), settings=ASRSettings(), store=cache, sample_rate=44100)
    np.testing.assert_array_equal(again.values, table.values.astype(np.float32))
    renamed = tmp_path / "renamed.flac"  # the same audio under another ID and path: reused
    shutil.copy(_demo_items(1)[0][1], renamed)
    one = encoder_embeddings([("another-id", renamed)], settings=ASRSettings(), store=cache, sample_rate=44100)
    np.testing.assert_array_equal(one.values[0], table.values[0].astype(np.float32))
    other = ASRSettings(compute_type="int8")  # other settings are not served from this cache
    with pytest.raises(AssertionError, match="cache should have been used"):
        encoder_embeddings(_demo_items(1), settings=other, store=cache, sample_rate=44100)
    text = entries[0].read_text()
    entries[0].write_text(text[: len(text) // 2])  # a damaged entry: computed again by a new
    with pytest.raises(AssertionError, match="cache should have been used"):  # run (a store
        encoder_embeddings(_demo_items(), settings=ASRSettings(), store=Store(cache.root),  # keeps
                           sample_rate=44100)  # what it read in its own run)


@pytest.mark.slow
def test_embeddings_changed_audio_is_encoded_again(encoded, tmp_path):
    table, cache = encoded
    signal, path = _demo_items(1)[0]
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    before = encoder_embeddings([(signal, copy)], settings=ASRSettings(), store=cache)
    np.testing.assert_array_equal(before.values[0], table.values[0].astype(np.float32))
    _, other_path = _demo_items(2)[1]
    shutil.copy(other_path, copy)  # same signal ID, other audio
    after = encoder_embeddings([(signal, copy)], settings=ASRSettings(), store=cache)
    np.testing.assert_allclose(after.values[0], table.values[1], rtol=1e-4, atol=1e-4)


def test_embeddings_missing_audio_named_before_loading(tmp_path):
    with pytest.raises(DataError, match="sig-x.*not found"):
        encoder_embeddings([("sig-x", tmp_path / "nope.flac")], settings=ASRSettings(),
                           store=Store(tmp_path / "store"))


@pytest.mark.slow
@pytest.mark.skipif(not CHECKPOINT, reason="set CLIP_OPENAI_CHECKPOINT to an openai-whisper .pt file")
def test_openai_whisper_encoder_agrees(encoded, tmp_path):
    table, _ = encoded
    theirs = encoder_embeddings(_demo_items(), settings=ASRSettings(engine="openai-whisper", model=CHECKPOINT),
                                store=Store(tmp_path / "store"))
    np.testing.assert_allclose(theirs.values, table.values, atol=1e-3)


# ---- the head, on synthetic embeddings ---------------------------------------------------------

DIM = 12
CATEGORIES = ("No Loss", "Mild", "Moderate")


def _synthetic(n_prompts: int = 12, per_prompt: int = 5, seed: int = 0, shuffled: bool = False):
    """Embeddings whose label is the better ear's sigmoid of a fixed direction, 0..100."""
    rng = np.random.default_rng(seed)
    n = n_prompts * per_prompt
    records = [{"signal": f"s{i:03d}", "prompt": f"prompt {i // per_prompt}",
                "hearing_loss": CATEGORIES[i % 3]} for i in range(n)]
    direction = rng.normal(size=DIM)
    left, right = rng.normal(size=(n, DIM)), rng.normal(size=(n, DIM))
    ear = [1 / (1 + np.exp(-2 * x @ direction / np.sqrt(DIM))) for x in (left, right)]
    target = 100 * np.maximum(*ear)
    if shuffled:
        target = rng.permutation(target)
    table = FeatureTable([r["signal"] for r in records], embedding_columns(DIM), np.hstack([left, right]))
    return table, records, target


def _oof_rmse(table, records, target) -> float:
    predictions, _ = fit_predict("whisper-head", fit_table=table, fit_records=records, fit_target_0_100=target,
                                 predict_table=table, predict_records=records, n_folds=3, seed=0)
    return float(np.sqrt(np.mean((np.array([predictions[r["signal"]] for r in records]) - target) ** 2)))


def test_registered():
    assert PREDICTORS["whisper-head"] is WhisperHeadPredictor
    assert make_predictor("whisper-head", feature="ignored", seed=3, options={"device": "cpu"}).seed == 3


def test_same_seed_same_predictions_other_seed_differs():
    table, records, target = _synthetic()
    runs = []
    for seed in (7, 7, 8):
        head = WhisperHeadPredictor(seed=seed)
        head.fit(table, target, records)
        runs.append(head.predict(table, records))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_prediction_is_the_better_ear():
    table, records, target = _synthetic()
    head = WhisperHeadPredictor(seed=0)
    head.fit(table, target, records)
    ears = head.predict_ears(table, records)
    assert ears.shape == (len(records), 2) and np.all((ears >= 0) & (ears <= 100))
    assert not np.allclose(ears[:, 0], ears[:, 1])
    np.testing.assert_array_equal(head.predict(table, records), ears.max(axis=1))
    swapped = FeatureTable(table.signals, table.names,
                           np.hstack([table.values[:, DIM:], table.values[:, :DIM]]))
    np.testing.assert_allclose(head.predict(swapped, records), head.predict(table, records), atol=1e-4)


@pytest.mark.slow
def test_out_of_fold_learns_and_shuffled_labels_do_worse():
    learned = _oof_rmse(*_synthetic())
    shuffled = _oof_rmse(*_synthetic(shuffled=True))
    assert learned < 0.8 * shuffled, (learned, shuffled)


def test_early_stopping_on_held_out_prompts_recorded_and_saved(tmp_path):
    table, records, target = _synthetic(shuffled=True)  # nothing to learn: held-out loss stops improving
    head = WhisperHeadPredictor(seed=0)
    head.fit(table, target, records)
    history = head.history
    assert history["stopped_early"] and history["epochs"] < HEAD_SETTINGS["max_epochs"]
    assert history["epochs"] == history["best_epoch"] + HEAD_SETTINGS["patience"]
    assert history["n_val"] + history["n_train"] == len(records) and history["n_val"] > 0
    assert min(history["val_mse_history_0_1"]) == pytest.approx(history["val_mse_0_1"])
    held_set = held_out_prompts([r["prompt"] for r in records], fraction=HEAD_SETTINGS["val_fraction"], seed=0)
    held = [r["prompt"] in held_set for r in records]
    assert sum(held) == history["n_val"]
    held_prompts = {r["prompt"] for r, h in zip(records, held) if h}
    assert not held_prompts & {r["prompt"] for r, h in zip(records, held) if not h}

    import torch

    paths = head.save(tmp_path / "whisper_head")
    assert sorted(p.name for p in paths) == ["whisper_head.json", "whisper_head.pt"]
    config = json.loads((tmp_path / "whisper_head.json").read_text())
    assert config["predictor"] == "whisper-head" and config["embedding_dim"] == DIM
    assert config["training"]["epochs"] == history["epochs"]
    reloaded = _head_module(DIM, HEAD_SETTINGS["hidden_dim"], 0.0)
    reloaded.load_state_dict(torch.load(tmp_path / "whisper_head.pt"))
    head.model = reloaded.eval()
    np.testing.assert_allclose(head.predict(table, records), head.predict_ears(table, records).max(axis=1))


def test_one_prompt_trains_fixed_epochs_with_a_note():
    table, records, target = _synthetic(n_prompts=1, per_prompt=6)
    head = WhisperHeadPredictor(seed=0)
    head.fit(table, target, records)
    assert head.history["n_val"] == 0 and not head.history["stopped_early"]
    assert any("fewer than 2 distinct prompts" in note for note in head.notes)


def test_other_columns_rejected_naming_the_expected_ones():
    table, records, target = _synthetic()
    other = FeatureTable(table.signals, ["asr.tiny.en.better_ear"], table.values[:, :1])
    with pytest.raises(DataError, match=r"enc\.left\.0"):
        WhisperHeadPredictor().fit(other, target, records)


def test_unknown_hearing_loss_named():
    table, records, target = _synthetic()
    records[4] = {**records[4], "hearing_loss": "Severe"}
    with pytest.raises(DataError, match="s004.*Severe"):
        WhisperHeadPredictor().fit(table, target, records)


def test_device_auto_resolves_and_missing_cuda_named():
    import torch

    from code.resources import torch_device

    assert torch_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert torch_device("cpu") == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            torch_device("cuda")


def test_early_stopping_holds_out_whole_tracks_when_the_metadata_has_them():
    from code.evaluation.prediction.calibration import fold_groups

    table, records, target = _synthetic()
    records = [{**r, "fma": f"track {int(r['prompt'].split()[-1]) // 3}"} for r in records]  # 3 prompts a track
    head = WhisperHeadPredictor(seed=0)
    head.fit(table, target, records)
    groups, _, how = fold_groups(records)
    held_groups = held_out_prompts(groups, fraction=HEAD_SETTINGS["val_fraction"], seed=0)
    held = [g in held_groups for g in groups]
    assert how == "track" and head.history["n_val"] == sum(held) and sum(held) % 15 == 0
    assert not {r["fma"] for r, h in zip(records, held) if h} & {r["fma"] for r, h in zip(records, held) if not h}
