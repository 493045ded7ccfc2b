"""benchmarks/ablations.py: which features belong to which group, what leaving one out
takes away, and the command on a small data root."""

from __future__ import annotations

import json

import numpy as np

from tests.conftest import demo_records, make_clip_root
from tests.test_predictors import _records

from benchmarks.ablations import column_group, main, without
from code.evaluation.comparison.metrics import clip_metrics
from code.evaluation.prediction.fitting import fit_predict
from code.evaluation.table import FeatureTable


def test_columns_belong_to_their_group():
    assert [column_group(n) for n in ("stoi.left", "estoi.right", "stoi", "pesq.left")] == ["unprocessed audio"] * 4
    lyrics = ("asr.tiny.en.better_ear", "asr.base.left", "asr.chorus.right.spread", "whisper.mixture")
    assert [column_group(n) for n in lyrics] == ["lyrics"] * 4
    heard = ("asr.tiny.en.logprob_left", "asr.tiny.en.words_heard", "asr.tiny.en.repetition_right")
    assert [column_group(n) for n in heard] == [None] * 3


def test_leaving_out_the_hearing_loss_takes_it_from_gbm():
    """Truth set by hearing loss alone: gbm follows it, and cannot once it is left out."""
    records, _, table = _records(seed=3)
    level = {"No Loss": 80.0, "Mild": 50.0, "Moderate": 20.0}
    truth = np.array([level[r["hearing_loss"]] for r in records])
    noise = FeatureTable(table.signals, ["asr.m.logprob_left"], table.values[:, 1:])
    rmse = {}
    for group in (None, "hearing loss"):
        x, r = without(group, noise, records)
        predicted, _ = fit_predict("gbm", fit_table=x, fit_records=r, fit_target_0_100=truth, predict_table=x,
                                   predict_records=r, n_folds=2,
                                   options={"settings": {"max_iter": 30, "learning_rate": 0.3}})
        rmse[group] = clip_metrics(np.array([predicted[s["signal"]] for s in r]), truth)["RMSE"]
    assert rmse[None] < 5.0 and rmse["hearing loss"] > 0.9 * float(np.std(truth))
    x, r = without("lyrics", table, records)
    assert {s["n_words"] for s in r} == {1} and x.names == table.names  # asr.score/other: no lyric columns


def test_the_command_prints_a_row_per_group(tmp_path, capsys):
    """A data root with the demo's metadata and SYNTHETIC features: mechanics only."""
    root = make_clip_root(tmp_path / "data", "train", demo_records("train"))
    for kind in ("signals", "unprocessed"):
        for f in (root / "cadenza_data" / "train" / kind).iterdir():
            f.unlink()  # the command reads no audio
    rng = np.random.default_rng(0)
    rows = [{"signal": r["signal"], "asr.m.better_ear": float(np.clip(r["correctness"] + rng.normal(0, 0.1), 0, 1)),
             "asr.m.logprob_left": float(rng.normal()), "stoi.left": float(rng.uniform())}
            for r in demo_records("train")]
    scores = tmp_path / "train.jsonl"
    scores.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["--data-root", str(root), "--train-scores", str(scores), "--n-boot", "20",
                 "--predictor-options", json.dumps({"max_iter": 20})]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert [line.split(" | ")[0] for line in lines[1:]] == ["| none", "| unprocessed audio", "| lyrics",
                                                             "| hearing loss"]
    assert "asr.m.better_ear, asr.m.logprob_left" in lines[2]  # stoi.left left out
    assert "| lyrics | asr.m.logprob_left, stoi.left |" in out
    lyrics = lines[3].split(" | ")
    assert float(lyrics[-1].split()[0]) > 0  # the words-correct score carried the synthetic labels
