"""The fast MSBG simulator against pyclarity's ``Ear`` on real demo audio."""

from __future__ import annotations

import json

import numpy as np
import pytest
from clarity.evaluator.msbg.msbg import Ear
from clarity.evaluator.msbg.smearing import Smearer, smear3
from clarity.utils.audiogram import AUDIOGRAM_MODERATE, Audiogram

from tests.conftest import DEMO_ROOT

from code.data.audio import read_audio
from code.hearing_loss.design import MSBG_SETTINGS
from code.hearing_loss.fast import smear
from code.hearing_loss.kernels import _power
from code.hearing_loss.simulator import SIMULATORS, simulate_hearing_loss, simulator_settings
from code.models.audiograms import DEFAULT_AUDIOGRAMS

TOLERANCE = 1e-4  # absolute, on outputs of about full scale


def demo_excerpt(seconds: float, index: int = 0) -> np.ndarray:
    """A real unprocessed demo signal scaled to a 0.9 peak, float32 [2, T], looped or cut to ``seconds``."""
    base = min(DEMO_ROOT.rglob("train_metadata.json")).parent.parent  # holds metadata/ and train/
    records = json.loads((base / "metadata" / "train_metadata.json").read_text())
    r = records[index % len(records)]
    audio = read_audio(base / "train" / "unprocessed" / f"{r['signal']}_unproc.flac")
    audio = audio * (0.9 / np.max(np.abs(audio)))  # about full scale, as the tolerance assumes
    return np.resize(audio, (2, int(seconds * 44100))).astype(np.float32)


def pyclarity_ear(audio: np.ndarray, audiogram: Audiogram) -> np.ndarray:
    """pyclarity's Ear on each channel, called directly, cut to the input length."""
    ear = Ear(sample_rate=44100, **MSBG_SETTINGS)
    ear.set_audiogram(audiogram)
    return np.array([ear.process(ch.astype(np.float64))[0][: audio.shape[1]] for ch in audio])


@pytest.mark.slow
@pytest.mark.parametrize("category, seconds, index", [("Mild", 1.0, 0), ("Moderate", 1.0, 1)])
def test_fast_matches_pyclarity_ear(category, seconds, index):
    audio = demo_excerpt(seconds, index)
    expected = pyclarity_ear(audio, DEFAULT_AUDIOGRAMS[category])
    fast = simulate_hearing_loss(audio, DEFAULT_AUDIOGRAMS[category], simulator="fast")
    assert fast.shape == audio.shape and fast.dtype == np.float32
    assert np.max(np.abs(expected)) > 0.1  # a real signal, not near silence
    assert np.max(np.abs(fast - expected)) <= TOLERANCE
    assert np.max(np.abs(fast - audio)) > 0.01  # the simulation changed the audio


def test_no_loss_is_unchanged_by_both_simulators():
    audio = demo_excerpt(1.0, 2)
    for simulator in SIMULATORS:
        out = simulate_hearing_loss(audio, DEFAULT_AUDIOGRAMS["No Loss"], simulator=simulator)
        np.testing.assert_array_equal(out, audio)


def test_fast_matches_reference_with_mild_flat_loss_and_a_silent_channel():
    # "NOTHING" severity (no smearing) but some loss: recruitment alone.
    audiogram = Audiogram(levels=np.full(6, 10.0), frequencies=np.array([250, 500, 1000, 2000, 4000, 8000]))
    audio = demo_excerpt(1.0, 3)
    audio[1] = 0.0
    ref = simulate_hearing_loss(audio, audiogram, simulator="reference")
    fast = simulate_hearing_loss(audio, audiogram, simulator="fast")
    assert np.max(np.abs(fast - ref)) <= TOLERANCE
    assert not np.any(fast[1])


@pytest.mark.slow
def test_vectorised_smearing_reproduces_smear3_framing():
    f_smear = Smearer(2.4, 1.6, 44100).f_smear
    x = np.random.default_rng(0).standard_normal(3001)  # not a multiple of the 64-sample hop
    expected = smear3(f_smear, x)
    got = smear(x, f_smear)
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) < 1e-10


@pytest.mark.parametrize("exponent", [0.05, 0.9, 2.3])
def test_vectorised_power_is_within_float64_rounding_of_pow(exponent):
    ratio = np.exp(np.random.default_rng(1).uniform(np.log(1e-9), 0.0, 100_000))
    ratio[:2] = [1.0, 1e-9]
    expected = ratio**exponent
    got = ratio.copy()
    _power(got, exponent, np.empty(len(got), np.int64), np.empty(len(got), np.int64))
    assert np.max(np.abs(got - expected) / expected) < 1e-14


def test_bad_input_is_refused_before_work():
    audio = demo_excerpt(0.5)
    with pytest.raises(ValueError, match="choices: fast, reference"):
        simulate_hearing_loss(audio, AUDIOGRAM_MODERATE, simulator="torchaudio")
    with pytest.raises(ValueError, match="44100"):
        simulate_hearing_loss(audio, AUDIOGRAM_MODERATE, 16000)
    with pytest.raises(ValueError, match="shape"):
        simulate_hearing_loss(audio[:, :100], AUDIOGRAM_MODERATE)
    with pytest.raises(ValueError, match="choices"):
        simulator_settings("nope")


def test_simulator_settings_tell_simulators_apart():
    fast, ref = simulator_settings("fast"), simulator_settings("reference")
    assert fast != ref
    for settings, name in ((fast, "fast"), (ref, "reference")):
        assert settings["simulator"] == name and settings["pyclarity"]
        assert all(settings[k] == v for k, v in MSBG_SETTINGS.items())
