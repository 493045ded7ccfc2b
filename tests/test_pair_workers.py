"""Pair values by worker processes (``code.evaluation.pair_workers``): the same values, stored
the same way, at any number of jobs; a stopped run keeps what finished and resumes."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import soundfile as sf
from clarity.utils.audiogram import AUDIOGRAM_MILD, AUDIOGRAM_MODERATE

from code.data.audio import read_audio
from code.evaluation.cache import Store
from code.evaluation.features.registry import pair_feature_values
from code.evaluation.pair_values import pair_values
from code.evaluation.pair_workers import core_shares, worker_count
from code.evaluation.quality.aid_quality import QualityItem, aid_quality
from tests.conftest import DEMO_ROOT

RATE = 44100
SECONDS = 0.6
BAD_SAMPLES = 123  # a pair whose audio has this many samples makes ``_fails_on_bad`` raise


def _pairs(tmp_path, count: int) -> list[tuple[str, object, object]]:
    """``count`` (signal, heard, unprocessed) excerpts of demo signals, as files."""
    valid = DEMO_ROOT / "cadenza_data" / "valid"
    out = []
    for index, heard in enumerate(sorted((valid / "signals").glob("*.flac"))[:count]):
        paths = []
        for name, source in (("heard", heard), ("ref", valid / "unprocessed" / f"{heard.stem}_unproc.flac")):
            path = tmp_path / f"{name}{index}.wav"
            sf.write(path, read_audio(source, RATE)[:, : int(SECONDS * RATE)].T, RATE, subtype="FLOAT")
            paths.append(path)
        out.append((heard.stem, *paths))
    return out


def _same(a: dict, b: dict, tolerance: float = 0.0) -> bool:
    """Equal dicts of dicts of floats (to ``tolerance``), NaN equal to NaN."""
    return a.keys() == b.keys() and all(
        a[s].keys() == b[s].keys() and all(abs(x - y) <= tolerance or (math.isnan(x) and math.isnan(y))
                                           for x, y in ((a[s][k], b[s][k]) for k in a[s]))
        for s in a)


@pytest.mark.parametrize("cores,workers,expected", [
    ([0, 1], 2, [{0}, {1}]),
    ([0, 1], 1, [{0, 1}]),
    ([0, 1, 2, 3], 2, [{0, 1}, {2, 3}]),
    ([0, 1, 2], 2, [{0, 1}, {2}]),
    ([4, 7], 4, [{4}, {7}, {4}, {7}]),  # more workers than cores: one core each in turn
])
def test_core_shares(cores, workers, expected):
    assert core_shares(cores, workers) == expected


def test_worker_count(monkeypatch):
    monkeypatch.setattr("code.evaluation.pair_workers.available_cpus", lambda: 16)
    # jobs 0: every core, each with 16 pairs or more (else fewer workers, or this process)
    assert [worker_count(j, n) for j, n in ((1, 50), (4, 50), (4, 2), (8, 0), (0, 1000), (0, 50), (0, 24))] == [
        1, 4, 2, 1, 16, 3, 1]
    with pytest.raises(ValueError, match="jobs >= 0"):
        worker_count(-1, 5)


@pytest.mark.slow  # worker processes start in seconds
def test_stoi_and_haspi_do_not_depend_on_jobs(tmp_path):
    # pystoi's eSTOI differs in its last bits from one run of a process to the next (the same
    # audio gave 0.91394774499016{17,40,41,42,43,60} in six runs here), so STOI/eSTOI are
    # compared to 1e-12; HASPI (and HAAQI below) exactly
    items = _pairs(tmp_path, 5)
    runs = {jobs: (pair_feature_values("stoi", {"max_lag_s": 0.05}, items, store=Store(tmp_path / f"s{jobs}"),
                                       sample_rate=RATE, recompute=False, jobs=jobs),
                   pair_feature_values("haspi", {}, items, store=Store(tmp_path / f"h{jobs}"), sample_rate=RATE,
                                       recompute=False, jobs=jobs))
            for jobs in (1, 2, 4)}
    for jobs in (2, 4):
        assert _same(runs[jobs][0], runs[1][0], 1e-12)
        assert _same(runs[jobs][1], runs[1][1])
        assert Store(tmp_path / f"s{jobs}").count("intrusive") == 5  # every value stored
    assert len(runs[1][0]) == 5 and 0.0 < runs[1][0][items[0][0]]["stoi.left"] <= 1.0


@pytest.mark.slow  # worker processes start in seconds
def test_haaqi_does_not_depend_on_jobs(tmp_path, caplog):
    pairs = _pairs(tmp_path, 3)
    # Two audiograms per pair (their own key parts) and one duplicate (computed once)
    items = [QualityItem(f"{s}-{name}", heard, ref, audiogram) for s, heard, ref in pairs
             for name, audiogram in (("mild", AUDIOGRAM_MILD), ("moderate", AUDIOGRAM_MODERATE))]
    items.append(QualityItem("twin", pairs[0][1], pairs[0][2], AUDIOGRAM_MILD))
    runs = {}
    for jobs in (1, 2, 4):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            runs[jobs] = aid_quality(items, store=Store(tmp_path / f"q{jobs}"), sample_rate=RATE, jobs=jobs)
        assert "6 signal(s) to compute, 0 reused" in caplog.text
        if jobs > 1:
            assert f"in {jobs} worker processes" in caplog.text
    assert _same(runs[2], runs[1]) and _same(runs[4], runs[1])
    assert list(runs[2]) == list(runs[1])  # in the items' order
    assert runs[1]["twin"] == runs[1][f"{pairs[0][0]}-mild"]
    assert runs[1][f"{pairs[0][0]}-mild"] != runs[1][f"{pairs[0][0]}-moderate"]


def _fails_on_bad(audio: np.ndarray, reference: np.ndarray, sample_rate: int) -> dict[str, float]:
    if audio.shape[1] == BAD_SAMPLES:
        raise ValueError(f"a pair of {BAD_SAMPLES} samples")
    return {"sum": float(audio.sum() - reference.sum())}


@pytest.mark.slow  # worker processes start in seconds
def test_a_stopped_run_keeps_what_finished_and_resumes(tmp_path, caplog):
    rng = np.random.default_rng(0)
    items = []
    for index, length in enumerate((4000, 4100, 4200, BAD_SAMPLES)):  # the failing pair last
        paths = [tmp_path / f"{name}{index}.wav" for name in ("a", "r")]
        for path in paths:
            sf.write(path, 0.1 * rng.standard_normal((length, 2)), RATE, subtype="FLOAT")
        items.append((f"s{index}", *paths, {}))
    store = Store(tmp_path / "store")

    def run(compute, jobs):
        return pair_values("toy", "toy", items, store=store, sample_rate=RATE, recompute=False, code="c",
                           settings={}, compute=compute, jobs=jobs)

    with pytest.raises(ValueError, match=f"a pair of {BAD_SAMPLES} samples"):
        run(_fails_on_bad, 2)
    assert Store(tmp_path / "store").count("toy") == 3  # the three started before it were kept
    caplog.clear()
    with caplog.at_level(logging.INFO):
        resumed = run(_difference, 2)
    assert "1 signal(s) to compute, 3 reused" in caplog.text
    assert _same(resumed, {s: _difference(read_audio(a, RATE), read_audio(r, RATE), RATE)
                           for s, a, r, _ in items})


def _difference(audio: np.ndarray, reference: np.ndarray, sample_rate: int) -> dict[str, float]:
    return {"sum": float(audio.sum() - reference.sum())}


@pytest.mark.slow  # worker processes start in seconds
def test_chunks_of_several_pairs_give_each_pair_its_own_value(tmp_path):
    rng = np.random.default_rng(1)
    items = []
    for index in range(40):  # 2 workers: chunks of 5 pairs
        paths = [tmp_path / f"{name}{index}.wav" for name in ("a", "r")]
        for path in paths:
            sf.write(path, 0.1 * rng.standard_normal((800 + index, 2)), RATE, subtype="FLOAT")
        items.append((f"s{index}", *paths, {}))
    runs = {jobs: pair_values("toy", "toy", items, store=Store(tmp_path / f"store{jobs}"), sample_rate=RATE,
                              recompute=False, code="c", settings={}, compute=_difference, jobs=jobs)
            for jobs in (1, 2)}
    assert list(runs[2]) == [s for s, *_ in items] and runs[2] == runs[1]
    assert len({v["sum"] for v in runs[2].values()}) == 40


@pytest.mark.slow
def test_the_demo_report_is_the_same_at_one_and_two_jobs(tmp_path, caplog):
    """``--input unprocessed --models identity,NLR1`` with Stage 2's pair values from one
    process and from two workers: the same report. The first run reads the HAAQI and STOI
    values the demo ships (computed by one process, under the same keys); the second runs on
    a copy of the demo without them (its transcripts kept: Whisper is not what is compared),
    from a copy of the first's results without them, so only the pair values are computed
    again, by two workers."""
    import shutil

    import main

    data = tmp_path / "demo"
    shutil.copytree(DEMO_ROOT, data)
    one, two = tmp_path / "one", tmp_path / "two"
    args = ["--data-root", str(data), "--input", "unprocessed", "--models", "identity,NLR1"]
    with caplog.at_level(logging.INFO):
        assert main.main([*args, "--jobs", "1", "--results-dir", str(one)]) == 0
    assert "HAAQI: 0 signal(s) to compute, 24 reused (24 from the data set's store)" in caplog.text
    caplog.clear()
    for kind in ("haaqi", "intrusive"):
        shutil.rmtree(data / "cadenza_data" / "stage2_store" / kind)
    shutil.copytree(one, two)
    for kind in ("haaqi", "intrusive"):
        shutil.rmtree(two / ".cache" / kind, ignore_errors=True)
    written = ("hearing_aid_report_*.csv", "submission_*.csv")
    for pattern in written:
        for path in two.glob(pattern):
            path.unlink()  # written again by the second run
    with caplog.at_level(logging.INFO):
        assert main.main([*args, "--jobs", "2", "--results-dir", str(two)]) == 0
    assert "in 2 worker processes" in caplog.text
    assert "HAAQI: 24 signal(s) to compute, 0 reused" in caplog.text
    files = sorted(p.name for pattern in written for p in one.glob(pattern))
    assert "hearing_aid_report_valid_unprocessed.csv" in files
    assert files == sorted(p.name for pattern in written for p in two.glob(pattern))
    for name in files:
        assert (one / name).read_text() == (two / name).read_text(), name
