"""HASPI v2 as a Stage-2 feature (``--haspi``): the scored audio against the unprocessed audio
through a normal ear, equal to pyclarity's ``haspi_v2`` with the same settings and seed, stored
by content, missing (never 0) where undefined."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import soundfile as sf
from clarity.utils.audiogram import AUDIOGRAM_REF

from code.data.audio import read_audio
from code.evaluation.cache import Store
from code.evaluation.features.registry import pair_feature_values
from code.evaluation.quality.haspi_features import haspi_features
from tests.conftest import DEMO_ROOT

RATE = 44100


def _pair(tmp_path):
    """A demo signal (what the listener heard) and its unprocessed audio, 1 s of each, as files."""
    valid = DEMO_ROOT / "cadenza_data" / "valid"
    heard_file = sorted((valid / "signals").glob("*.flac"))[0]
    reference_file = valid / "unprocessed" / f"{heard_file.stem}_unproc.flac"
    paths = []
    for name, source in (("heard", heard_file), ("reference", reference_file)):
        path = tmp_path / f"{name}.wav"
        sf.write(path, read_audio(source, RATE)[:, :RATE].T, RATE, subtype="FLOAT")
        paths.append(path)
    return paths


def test_haspi_feature_is_pyclarity_haspi_v2_through_a_normal_ear(tmp_path):
    from clarity.evaluator.haspi import haspi_v2

    heard_path, reference_path = _pair(tmp_path)
    heard, reference = read_audio(heard_path, RATE), read_audio(reference_path, RATE)
    ours = haspi_features(heard, reference, RATE)
    for ear, index in (("left", 0), ("right", 1)):
        np.random.seed(0)
        theirs, _ = haspi_v2(reference[index].astype(np.float64), RATE, heard[index].astype(np.float64),
                             RATE, AUDIOGRAM_REF, level1=100.0)
        assert ours[f"haspi.{ear}"] == pytest.approx(theirs, abs=1e-6)
    assert ours["haspi.better_ear"] == max(ours["haspi.left"], ours["haspi.right"])


def test_haspi_features_are_stored_and_a_silent_ear_is_missing(tmp_path, caplog):
    heard_path, reference_path = _pair(tmp_path)
    silent = tmp_path / "silent.wav"
    audio = read_audio(heard_path, RATE)
    audio[1] = 0.0  # the right ear hears nothing
    sf.write(silent, audio.T, RATE, subtype="FLOAT")
    store = Store(tmp_path / "store")
    items = [("a", heard_path, reference_path), ("b", silent, reference_path)]
    with caplog.at_level(logging.INFO):
        first = pair_feature_values("haspi", {}, items, store=store, sample_rate=RATE, recompute=False)
    assert "HASPI: 2 signal(s) to compute, 0 reused" in caplog.text
    assert 0.0 <= first["a"]["haspi.left"] <= 1.0
    assert math.isnan(first["b"]["haspi.right"])  # undefined, not 0
    assert first["b"]["haspi.better_ear"] == first["b"]["haspi.left"]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = pair_feature_values("haspi", {}, items, store=store, sample_rate=RATE, recompute=False)
    assert "0 signal(s) to compute, 2 reused" in caplog.text
    assert again["a"] == first["a"] and math.isnan(again["b"]["haspi.right"])
