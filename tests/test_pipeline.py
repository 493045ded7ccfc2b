"""Pipeline plumbing: workers give the same audio as one process, shards, config checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from code.data.audio import read_audio
from code.data.validation import validate_split
from code.errors import DataError
from code.enhancement import enhance_split
from code.evaluation.asr.engines import ASRSettings
from code.evaluation.asr.scoring import OFFICIAL_TRAIN_SCORES
from code.models.hearing_aid_models import DEFAULT_AUDIOGRAMS
from code.evaluation.prediction.fit_set import check_train_scores_match
from code.config import check_config, parse_shard
from code.pipeline import _shard_filter
from main import CONFIG


def test_worker_processes_match_one_process(demo_root, tmp_path):
    split = validate_split(demo_root, "valid", check_audio=False)
    split = dataclasses.replace(split, records=split.records[:4])
    for jobs, folder in ((1, "one"), (2, "two")):
        summary = enhance_split(split, model_name="NLR1", audiograms=DEFAULT_AUDIOGRAMS,
                                results_dir=tmp_path / folder, jobs=jobs)
        assert summary.done == 4
    for r in split.records:
        one = read_audio(tmp_path / "one" / "NLR1" / f"{r['signal']}.wav")
        two = read_audio(tmp_path / "two" / "NLR1" / f"{r['signal']}.wav")
        assert one.shape == two.shape and np.array_equal(one, two)  # bit-identical samples
    again = enhance_split(split, model_name="NLR1", audiograms=DEFAULT_AUDIOGRAMS,
                          results_dir=tmp_path / "one", jobs=1)
    assert (again.done, again.reused) == (0, 4)
    changed = dict(DEFAULT_AUDIOGRAMS, Mild=DEFAULT_AUDIOGRAMS["Moderate"])
    redo = enhance_split(split, model_name="NLR1", audiograms=changed,
                         results_dir=tmp_path / "one", jobs=1)
    mild = sum(r["hearing_loss"] == "Mild" for r in split.records)
    assert (redo.done, redo.reused) == (mild, 4 - mild)  # only what the change touches


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
def test_concurrent_shards_share_the_work_and_the_final_run_computes_nothing(tmp_path):
    """Two shard jobs running at the same time compute disjoint shares of the predicted
    split and of the fit set: every audio file is transcribed once in all; the final run
    without --shard transcribes nothing and writes the CSV a single run writes."""
    import re
    import shutil
    import subprocess
    import sys

    from tests.conftest import ROOT, demo_records, make_clip_root

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
    final = subprocess.run(command(sharded), cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert final.returncode == 0, final.stderr[-3000:]
    assert transcribed(final.stderr) == {"identity": 0, "fit set": 0}, final.stderr[-3000:]
    one = tmp_path / "one"  # one unsharded run over the same stored values
    one.mkdir()
    shutil.copytree(sharded / ".cache", one / ".cache")
    single = subprocess.run(command(one), cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert single.returncode == 0, single.stderr[-3000:]
    [csv] = [p.name for p in sharded.glob("submission_identity*valid*.csv")]  # named by code.runs
    assert (sharded / csv).read_text() == (one / csv).read_text()
