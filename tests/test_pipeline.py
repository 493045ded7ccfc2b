"""Pipeline plumbing: shards, config checks.

(Workers giving the same audio as one process: tests/test_enhancement.py
``test_worker_processes_give_bit_identical_audio``; reuse and what an audiogram change
redoes: ``test_recompute_reasons_are_exact_and_copies_of_the_data_reuse``.)"""

from __future__ import annotations

import dataclasses

import pytest

from main import CONFIG

from code.config import check_config, parse_shard
from code.errors import DataError
from code.evaluation.asr.scoring import OFFICIAL_TRAIN_SCORES
from code.evaluation.asr.settings import ASRSettings
from code.evaluation.prediction.fit_set import check_train_scores_match
from code.pipeline import _shard_filter


def test_shards_partition_the_split():
    records = [{"signal": str(i)} for i in range(10)]
    parts = [_shard_filter(f"{k}/3")(records) for k in (1, 2, 3)]
    assert sorted(r["signal"] for part in parts for r in part) == [str(i) for i in range(10)]
    assert parts[0] == _shard_filter("1/3")(records)  # deterministic
    for bad in ("0/3", "4/3", "x"):
        with pytest.raises(ValueError):
            parse_shard(bad)


@pytest.mark.parametrize("change,expected", [
    ({"split": "test"}, "--split must be one of"),
    ({"model": "NLR9"}, "unknown model 'NLR9'"),
    ({"input": "raw"}, "--input must be one of"),
    ({"stages": "3"}, "--stages"),
    ({"audiograms": {"Severe": {}}}, "unknown category 'Severe'"),
    ({"shard": "5/2"}, "1 <= K <= N"),
    ({"folds": 1}, "--folds must be at least 2"),
    ({"folds": 0}, "--folds must be at least 2"),
    ({"recompute": "3"}, "--recompute must be one of"),
    ({"predictor": "gbn"}, "did you mean 'gbm'"),
    ({"model": "nlr1"}, "did you mean 'NLR1'"),
    ({"fit_split": "train,test"}, "--fit-split must be one of"),
])
def test_bad_config_is_refused_before_work(change, expected):
    assert expected in check_config(dataclasses.replace(CONFIG, **change))


def test_mismatched_training_scores_refused(tmp_path):
    with pytest.raises(DataError, match="same ASR settings"):
        check_train_scores_match(OFFICIAL_TRAIN_SCORES["whisper.mixture"], ASRSettings())
    check_train_scores_match(OFFICIAL_TRAIN_SCORES["whisper.mixture"],
                             ASRSettings(engine="openai-whisper", model="base.en"))
    other = tmp_path / "train.jsonl"
    other.write_text('{"signal": "a", "score": 0.5, "asr": "0123456789ab"}\n')
    with pytest.raises(DataError, match="other ASR settings"):
        check_train_scores_match(other, ASRSettings())


@pytest.mark.slow
def test_concurrent_shards_share_the_work_and_the_final_run_computes_nothing(tmp_path, caplog):
    """Two shard jobs running at the same time (two processes) compute disjoint shares of the
    predicted split and of the fit set: every audio file is transcribed once in all; the final
    run without --shard transcribes nothing and writes the CSV a single run writes. The data
    root has no shipped store: the counts are the point."""
    import re
    import shutil
    import subprocess
    import sys

    from tests.conftest import ROOT, demo_records, make_clip_root, run_main

    root = make_clip_root(tmp_path / "data", "valid", demo_records("valid")[:4])
    make_clip_root(root, "train", demo_records("train")[:8])
    common = ["--data-root", root, "--model", "identity", "--folds", "2", "--jobs", "1"]

    def command(results, *extra):
        return [sys.executable, "main.py", *map(str, common), "--results-dir", str(results), *extra]

    def transcribed(log: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for what, n in re.findall(r"Stage 2: (fit set|identity)[^:]*: (\d+) signal\(s\) to transcribe", log):
            counts[what] = counts.get(what, 0) + int(n)
        return counts

    sharded = tmp_path / "sharded"
    jobs = [subprocess.Popen(command(sharded, "--shard", f"{k}/2"), cwd=ROOT, stderr=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, text=True) for k in (1, 2)]
    logs = [job.communicate(timeout=1800)[1] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], "\n".join(log[-2000:] for log in logs)
    per_shard = [transcribed(log) for log in logs]
    assert per_shard == [{"identity": 2, "fit set": 4}] * 2, per_shard  # disjoint halves
    assert not list(sharded.glob("submission_*"))  # shards write no CSV
    code, final = run_main(command(sharded)[2:], caplog)  # in this process: no concurrency left
    assert code == 0, final[-3000:]
    assert transcribed(final) == {"identity": 0, "fit set": 0}, final[-3000:]
    one = tmp_path / "one"  # one unsharded run over the same stored values
    one.mkdir()
    shutil.copytree(sharded / ".cache", one / ".cache")
    code, single = run_main(command(one)[2:], caplog)
    assert code == 0, single[-3000:]
    [csv] = [p.name for p in sharded.glob("submission_identity*valid*.csv")]  # named by code.runs
    assert (sharded / csv).read_text() == (one / csv).read_text()
