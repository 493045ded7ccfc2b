"""The --scores route on the official precomputed Whisper scores (no audio needed)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy.optimize import curve_fit

from code.evaluation.asr.scoring import OFFICIAL_TRAIN_SCORES, PRECOMPUTED_DIR
from code.evaluation.table import read_feature_file
from tests.conftest import run_main

CATEGORIES = ["No Loss", "Mild", "Moderate"]


@pytest.fixture(scope="module")
def official_root(tmp_path_factory):
    """Metadata over the official signal IDs (prompts and labels are stand-ins), and nothing
    else: no audio folders (the --scores route needs metadata only)."""
    root = tmp_path_factory.mktemp("clip")
    meta = root / "cadenza_data" / "metadata"
    meta.mkdir(parents=True)
    train = {s: row["whisper.mixture"] for s, row in
             read_feature_file(OFFICIAL_TRAIN_SCORES["whisper.mixture"])[1].items()}
    valid = {s: row["whisper.mixture"] for s, row in
             read_feature_file(PRECOMPUTED_DIR / "cadenza_data.valid.whisper.jsonl")[1].items()}
    rng = np.random.default_rng(1)
    train_records = [{"signal": s, "prompt": f"prompt number {i // 3}", "hearing_loss": CATEGORIES[i % 3],
                      "correctness": float(np.clip(x + rng.normal(0, 0.2), 0, 1))}
                     for i, (s, x) in enumerate(train.items())]
    valid_records = [{"signal": s, "prompt": "a line", "hearing_loss": CATEGORIES[i % 3]}
                     for i, s in enumerate(valid)]
    (meta / "train_metadata.json").write_text(json.dumps(train_records))
    (meta / "valid_metadata.json").write_text(json.dumps(valid_records))
    return root, train_records, valid_records, train, valid


def _run(caplog, root, split, results, *extra, scores=None):
    """``python main.py`` in this process (isolation is not the point): the CSV's values."""
    scores = scores or str(PRECOMPUTED_DIR / f"cadenza_data.{split}.whisper.jsonl")
    code, log = run_main(["--data-root", root, "--split", split, "--model", "identity",
                          "--scores", scores, "--results-dir", results, *extra], caplog)
    assert code == 0, log[-2000:]
    (path,) = results.glob(f"submission_identity-*scores-*_{split}.csv")  # named by its settings
    with path.open() as f:
        return {row[0]: float(row[1]) for row in list(csv.reader(f))[1:]}


def test_learned_predictors_from_several_feature_files(official_root, tmp_path, caplog):
    """gbm on two feature files, fitted on train, predicting valid; logistic-hl too; the fitted
    predictor is saved beside the submission."""
    root, train_records, valid_records, _, _ = official_root
    files = {split: ",".join(str(PRECOMPUTED_DIR / f"cadenza_data.{split}.{kind}.jsonl")
                             for kind in ("whisper", "stoi")) for split in ("train", "valid")}
    for predictor in ("gbm", "logistic-hl"):
        extra = ["--predictor", predictor, "--train-scores", files["train"]]
        if predictor == "logistic-hl":
            extra += ["--feature", "whisper.mixture"]
        predicted = _run(caplog, root, "valid", tmp_path / predictor, *extra, scores=files["valid"])
        assert list(predicted) == [r["signal"] for r in valid_records]
        values = np.array(list(predicted.values()))
        assert np.all((values >= 0) & (values <= 100)) and values.std() > 1
        (saved,) = (tmp_path / predictor).glob(f"submission_identity-{predictor}-*_valid.predictor.json")
        assert json.loads(saved.read_text())
    code, mismatch = run_main(["--data-root", root, "--split", "valid", "--model", "identity",
                               "--scores", PRECOMPUTED_DIR / "cadenza_data.valid.stoi.jsonl", "--train-scores",
                               files["train"], "--predictor", "gbm", "--results-dir", tmp_path / "x"], caplog)
    assert code == 2 and "only in fit: ['whisper.mixture']" in mismatch


def _logistic(x, x0, k):
    return 100 / (1 + np.exp(-k * (x - x0)))


def test_valid_reproduces_the_official_baseline_fit(official_root, tmp_path, caplog):
    root, train_records, valid_records, train, valid = official_root
    predicted = _run(caplog, root, "valid", tmp_path)
    assert list(predicted) == [r["signal"] for r in valid_records]
    x = np.array([train[r["signal"]] for r in train_records])
    y = np.array([100 * r["correctness"] for r in train_records])
    params, _ = curve_fit(_logistic, x, y, p0=[0.5, 5.0])
    expected = _logistic(np.array([valid[s] for s in predicted]), *params)
    assert np.allclose(list(predicted.values()), expected, atol=1e-3)
    assert min(predicted.values()) < 30 and max(predicted.values()) > 70  # the 0..100 scale


def test_train_predictions_are_out_of_fold(official_root, tmp_path, caplog):
    """Poison one prompt's labels: out-of-fold predictions of its records must not move
    (no model that predicts them saw them or any record of their prompt), while the
    other records' predictions do (the poisoned labels are used to predict them)."""
    root, train_records, _, train, _ = official_root
    predicted = _run(caplog, root, "train", tmp_path / "clean")
    x = np.array([train[r["signal"]] for r in train_records])
    y = np.array([100 * r["correctness"] for r in train_records])
    values = np.array([predicted[r["signal"]] for r in train_records])
    in_sample = _logistic(x, *curve_fit(_logistic, x, y, p0=[0.5, 5.0])[0])
    assert not np.allclose(values, in_sample, atol=1e-3)

    poisoned_prompt = train_records[7 * 3]["prompt"]  # 3 records, neighbours in the file
    poisoned = [{**r, "correctness": 1.0 - r["correctness"]} if r["prompt"] == poisoned_prompt else r
                for r in train_records]
    meta = root / "cadenza_data" / "metadata" / "train_metadata.json"
    original = meta.read_text()
    try:
        meta.write_text(json.dumps(poisoned))
        again = _run(caplog, root, "train", tmp_path / "poisoned")
    finally:
        meta.write_text(original)
    mine = [r["signal"] for r in train_records if r["prompt"] == poisoned_prompt]
    assert len(mine) == 3
    assert all(abs(again[s] - predicted[s]) < 1e-9 for s in mine)
    others = [r["signal"] for r in train_records if r["prompt"] != poisoned_prompt]
    assert sum(abs(again[s] - predicted[s]) > 1e-9 for s in others) > len(others) // 2
