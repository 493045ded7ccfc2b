"""Music quality in the hearing-aid report: HAAQI of each model output against the unprocessed
audio (``code.evaluation.quality.aid_quality``), stored by content, reproduced by the documented
pyclarity call, and the report's quality columns (``report_rows``)."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import soundfile as sf
from clarity.utils.audiogram import AUDIOGRAM_MILD, AUDIOGRAM_MODERATE

from code.data.audio import read_audio
from code.errors import DataError
from code.evaluation.cache import Store
from code.evaluation.outputs.report import QUALITY_COLUMNS, report_csv, report_rows
from code.evaluation.quality.aid_quality import (LEVEL1_DB_SPL, QualityItem, aid_quality,
                                                 ear_haaqi)
from tests.conftest import DEMO_ROOT

RATE = 44100
SECONDS = 0.8


def _reference_excerpt(tmp_path, index: int = 0):
    """A short excerpt of a demo unprocessed file at 44.1 kHz, written as FLAC: its path and audio."""
    files = sorted((DEMO_ROOT / "cadenza_data" / "valid" / "unprocessed").glob("*.flac"))
    audio = read_audio(files[index], RATE)[:, : int(SECONDS * RATE)]
    path = tmp_path / f"ref{index}.flac"
    sf.write(path, audio.T, RATE, subtype="PCM_24")
    return path, read_audio(path, RATE)


def _output(tmp_path, name, audio):
    path = tmp_path / f"{name}.wav"
    sf.write(path, np.asarray(audio, dtype=np.float32).T, RATE, subtype="FLOAT")
    return path


def test_values_are_stored_by_content_and_audiogram(tmp_path, caplog):
    reference, audio = _reference_excerpt(tmp_path)
    louder = _output(tmp_path, "louder", 2.0 * audio)
    twin = _output(tmp_path, "twin", 2.0 * audio)  # same bytes as louder: computed once
    store = Store(tmp_path / "store")
    items = [QualityItem("a", louder, reference, AUDIOGRAM_MILD),
             QualityItem("b", twin, reference, AUDIOGRAM_MILD)]
    with caplog.at_level(logging.INFO):
        first = aid_quality(items, store=store, sample_rate=RATE)
    assert "1 signal(s) to compute, 0 reused" in caplog.text
    assert first["a"] == first["b"]
    assert 0.0 < first["a"]["haaqi"] < 1.0
    assert first["a"]["haaqi"] == pytest.approx((first["a"]["haaqi.left"] + first["a"]["haaqi.right"]) / 2)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = aid_quality(items, store=store, sample_rate=RATE)
    assert "0 signal(s) to compute, 2 reused" in caplog.text and again == first
    caplog.clear()
    moderate = [QualityItem("a", louder, reference, AUDIOGRAM_MODERATE)]
    with caplog.at_level(logging.INFO):
        other = aid_quality(moderate, store=store, sample_rate=RATE)
    assert "1 signal(s) to compute" in caplog.text  # another audiogram: another value
    assert other["a"]["haaqi"] < first["a"]["haaqi"]  # more loss, less of the music kept


def test_a_stored_value_is_the_documented_pyclarity_call(tmp_path):
    """docs/quality.md's call: compute_haaqi on each ear of the output and the unprocessed
    audio as soundfile reads them, equalisation 1, level1 100, after np.random.seed(0)."""
    from clarity.evaluator.haaqi import compute_haaqi

    import soxr

    _, audio = _reference_excerpt(tmp_path, 1)
    reference = tmp_path / "ref16k.flac"  # at another rate than the run's, as the demo's
    sf.write(reference, soxr.resample(audio.T, RATE, 16000), 16000, subtype="PCM_24")
    rng = np.random.default_rng(0)
    output = _output(tmp_path, "out", np.clip(1.5 * audio + 0.002 * rng.standard_normal(audio.shape), -1, 1))
    ours = aid_quality([QualityItem("s", output, reference, AUDIOGRAM_MILD)],
                       store=Store(tmp_path / "store"), sample_rate=RATE)["s"]
    out, out_rate = sf.read(output, dtype="float32", always_2d=True)
    ref, ref_rate = sf.read(reference, dtype="float32", always_2d=True)
    if ref_rate != out_rate:
        ref, ref_rate = soxr.resample(ref, ref_rate, out_rate, quality="HQ"), out_rate
    for ear, channel in (("left", 0), ("right", 1)):
        np.random.seed(0)
        theirs = compute_haaqi(out[:, channel].astype(np.float64), ref[:, channel].astype(np.float64),
                               out_rate, ref_rate, AUDIOGRAM_MILD, equalisation=1, level1=LEVEL1_DB_SPL)
        assert ours[f"haaqi.{ear}"] == pytest.approx(theirs, abs=1e-6)


def test_silent_output_is_missing_never_zero(tmp_path, caplog):
    reference, audio = _reference_excerpt(tmp_path)
    silent = _output(tmp_path, "silent", np.zeros_like(audio))
    store = Store(tmp_path / "store")
    with caplog.at_level(logging.WARNING):
        values = aid_quality([QualityItem("quiet", silent, reference, AUDIOGRAM_MILD)], store=store,
                             sample_rate=RATE)
    assert all(math.isnan(v) for v in values["quiet"].values())
    assert "HAAQI undefined" in caplog.text and "quiet" in caplog.text
    reread = aid_quality([QualityItem("quiet", silent, reference, AUDIOGRAM_MILD)], store=store,
                         sample_rate=RATE)  # stored as null, read back as missing
    assert all(math.isnan(v) for v in reread["quiet"].values())


def test_a_missing_reference_is_named_before_any_work(tmp_path):
    reference, audio = _reference_excerpt(tmp_path)
    output = _output(tmp_path, "out", audio)
    items = [QualityItem("fine", output, reference, AUDIOGRAM_MILD),
             QualityItem("lost", output, tmp_path / "gone.flac", AUDIOGRAM_MILD)]
    store = Store(tmp_path / "store")
    with pytest.raises(DataError, match="signal lost: HAAQI needs the unprocessed reference, not found"):
        aid_quality(items, store=store, sample_rate=RATE)
    assert store.count("haaqi") == 0  # nothing computed for the first item either


def test_a_reference_at_another_rate_is_resampled_with_a_note(tmp_path, caplog):
    reference, audio = _reference_excerpt(tmp_path)
    low = tmp_path / "ref16k.flac"
    import soxr

    sf.write(low, soxr.resample(audio.T, RATE, 16000), 16000, subtype="PCM_24")
    output = _output(tmp_path, "out", audio)
    with caplog.at_level(logging.INFO):
        values = aid_quality([QualityItem("s", output, low, AUDIOGRAM_MILD)], store=Store(tmp_path / "s"),
                             sample_rate=RATE)
    assert "is at 16000 Hz: resampled to 44100 Hz for HAAQI" in caplog.text
    assert 0.0 < values["s"]["haaqi"] <= 1.0


def test_ear_haaqi_leaves_the_callers_generator_alone():
    rng = np.random.default_rng(3)
    audio = 0.05 * rng.standard_normal((2, int(0.5 * RATE)))
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    first = ear_haaqi(audio, audio, RATE, AUDIOGRAM_MILD)
    assert np.random.random() == expected
    assert ear_haaqi(audio, audio, RATE, AUDIOGRAM_MILD) == first  # seeded: reproducible


def _records(n=12):
    return [{"signal": f"s{i}", "prompt": f"p{i // 3}", "hearing_loss": "Mild" if i < 6 else "Moderate"}
            for i in range(n)]


def test_report_rows_give_haaqi_its_paired_change_and_the_combined_score():
    records = _records()
    rng = np.random.default_rng(2)
    base_int = {r["signal"]: float(v) for r, v in zip(records, rng.uniform(20, 80, 12))}
    aid_int = {s: v + 10.0 for s, v in base_int.items()}  # +10 points of intelligibility
    base_q = {r["signal"]: float(v) for r, v in zip(records, rng.uniform(0.3, 0.6, 12))}
    aid_q = {s: v - 0.1 for s, v in base_q.items()}  # -0.1 HAAQI everywhere
    aid_q["s0"] = float("nan")  # undefined for one signal: left out of quality only
    rows = report_rows({"identity": base_int, "aid": aid_int}, records,
                       quality={"identity": base_q, "aid": aid_q}, alpha=0.25)
    by = {(r["model"], r["hearing_loss"]): r for r in rows}
    row = by[("aid", "All")]
    assert row["n"] == 12 and row["haaqi_n"] == 11
    assert row["change"] == pytest.approx(10.0)
    assert row["haaqi_change"] == pytest.approx(-0.1)
    assert row["haaqi_change_ci95_low"] == pytest.approx(-0.1)  # the same on every prompt
    assert row["mean_haaqi"] == pytest.approx(np.mean([aid_q[f"s{i}"] for i in range(1, 12)]))
    # combined = alpha * intelligibility / 100 + (1 - alpha) * HAAQI, per signal
    expected = np.mean([0.25 * aid_int[f"s{i}"] / 100 + 0.75 * aid_q[f"s{i}"] for i in range(1, 12)])
    assert row["combined"] == pytest.approx(expected)
    assert row["combined_change"] == pytest.approx(0.25 * 0.1 + 0.75 * -0.1)
    assert by[("identity", "Mild")]["haaqi_change"] == 0.0
    csv_text = report_csv(rows)
    assert csv_text.splitlines()[0].endswith(",".join(QUALITY_COLUMNS))
    plain = report_csv(report_rows({"identity": base_int}, records))
    assert "haaqi" not in plain  # no quality, no quality columns
