"""benchmarks/official_baseline.py: the official CLIP1 baseline from pyclarity's precomputed
scores, on a metadata folder of the released format (labels here are stand-ins)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import curve_fit

from code.evaluation.asr.scoring import PRECOMPUTED_DIR
from code.evaluation.comparison.metrics import rmse
from code.evaluation.table import read_feature_file
from tests.conftest import ROOT

CATEGORIES = ["No Loss", "Mild", "Moderate"]


def _logistic(x, x0, k):
    return 100 / (1 + np.exp(-k * (x - x0)))


@pytest.fixture(scope="module")
def metadata_folder(tmp_path_factory):
    """train and valid metadata (released format, labelled as v1.2 is) over the official IDs."""
    folder = tmp_path_factory.mktemp("metadata")
    rng = np.random.default_rng(3)
    scores = {}
    for split in ("train", "valid"):
        rows = read_feature_file(PRECOMPUTED_DIR / f"cadenza_data.{split}.whisper.jsonl")[1]
        scores[split] = {s: row["whisper.mixture"] for s, row in rows.items()}
        records = []
        for i, (signal, x) in enumerate(scores[split].items()):
            prompt = " ".join(["la"] * (5 + i // 3 % 8) + [f"line{i // 3}"])
            n_words = len(prompt.split())
            correct = int(np.clip(round(n_words * (_logistic(x, 0.6, 6) / 100 + rng.normal(0, 0.25))), 0, n_words))
            records.append({"signal": signal, "fma": f"{i // 9:06d}", "prompt": prompt,
                            "n_words": n_words, "words_correct": correct, "correctness": correct / n_words,
                            "hearing_loss": CATEGORIES[i % 3]})
        (folder / f"{split}_metadata.json").write_text(json.dumps(records))
    return folder, scores


def test_prints_the_train_out_of_fold_and_valid_figures(metadata_folder, tmp_path):
    folder, scores = metadata_folder
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "official_baseline.py"), "--metadata",
                           str(folder), "--kinds", "whisper", "--results-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = {m["split"]: m for m in (re.match(r"official_baseline split=(?P<split>\w+) kind=whisper "
                                              r"rmse=(?P<rmse>[\d.]+) ncc=(?P<ncc>[\d.]+) .*n=(?P<n>\d+)", line)
                                     for line in done.stdout.splitlines()) if m}
    assert set(lines) == {"train", "valid"}, done.stdout
    truth = {split: np.array([r["correctness"] * 100 for r in json.loads(
        (folder / f"{split}_metadata.json").read_text())]) for split in ("train", "valid")}
    x = {split: np.array(list(scores[split].values())) for split in ("train", "valid")}
    # valid: the official recipe's calibration, a logistic fitted on all of train, applied to valid
    (x0, k), _ = curve_fit(_logistic, x["train"], truth["train"], p0=[0.5, 5.0], maxfev=20000)
    assert float(lines["valid"]["rmse"]) == pytest.approx(rmse(_logistic(x["valid"], x0, k), truth["valid"]), abs=0.015)
    assert int(lines["valid"]["n"]) == len(truth["valid"])
    # train: out-of-fold, so a little worse than the in-sample fit, never better, and over every record
    in_sample = rmse(_logistic(x["train"], x0, k), truth["train"])
    assert in_sample - 0.005 <= float(lines["train"]["rmse"]) <= in_sample + 0.3
    assert int(lines["train"]["n"]) == len(truth["train"])


def test_a_folder_without_metadata_is_refused(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "official_baseline.py"), "--metadata",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "no *_metadata.json in" in done.stderr


def test_compute_csvs_tells_score_file_runs_apart(metadata_folder, tmp_path, caplog, capsys):
    """Runs that differ only in the score files they read have rows that say which; Std is
    defined under the table; a --baseline FILE header names the file."""
    import compute_csvs
    from tests.conftest import run_main

    folder, _ = metadata_folder
    (tmp_path / "root" / "cadenza_data" / "metadata").mkdir(parents=True)
    (tmp_path / "root" / "cadenza_data" / "metadata" / "train_metadata.json").symlink_to(folder / "train_metadata.json")
    results = tmp_path / "results"
    for kind in ("whisper", "stoi"):
        code, log = run_main(["--data-root", tmp_path / "root", "--split", "train", "--model", "identity",
                              "--scores", PRECOMPUTED_DIR / f"cadenza_data.train.{kind}.jsonl",
                              "--results-dir", results], caplog)
        assert code == 0, log[-2000:]
        assert "done: 1 submission(s) in" in log.splitlines()[-1]  # --scores runs close as every run does
    capsys.readouterr()
    (whisper_csv,) = [p for p in results.glob("submission_*_train.csv")
                      if "train.whisper.jsonl" in p.with_suffix(".run.json").read_text()]
    assert compute_csvs.main([str(results), "--baseline", str(whisper_csv)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("identity ")]
    assert len(rows) == 2
    assert sorted("scores=cadenza_data.train.whisper.jsonl" in r for r in rows) == [False, True]
    assert sorted("scores=cadenza_data.train.stoi.jsonl" in r for r in rows) == [False, True]
    assert "Std = the standard error of the mean error" in out
    assert f"paired with the baseline CSV {whisper_csv}" in out and "run of the same settings" not in out
