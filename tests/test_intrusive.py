"""Intrusive measures on real demo audio: alignment, then STOI / eSTOI per ear."""

from __future__ import annotations

import numpy as np
import pytest
from pystoi import stoi

from code.data.audio import read_audio
from code.evaluation.features.intrusive import STOI_RATE, align, estimate_lag, intrusive_features
from tests.conftest import DEMO_ROOT, demo_records

RATE = 16000
SECONDS = 3.0


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """(unprocessed, signal) of the first demo training record with both files, ``[2, T]``
    at 16 kHz, float64, at most ``SECONDS`` long."""
    folder = DEMO_ROOT / "cadenza_data" / "train"
    for r in demo_records("train"):
        unproc = folder / "unprocessed" / f"{r['signal']}_unproc.flac"
        signal = folder / "signals" / f"{r['signal']}.flac"
        if unproc.exists() and signal.exists():
            n = int(SECONDS * RATE)
            return (read_audio(unproc, RATE)[:, :n].astype(np.float64),
                    read_audio(signal, RATE)[:, :n].astype(np.float64))
    pytest.fail(f"no demo training record with signal and unprocessed audio under {folder}")


def _delay(audio: np.ndarray, samples: int) -> np.ndarray:
    """Delay by ``samples`` (negative: advance); the length changes, as in the data."""
    if samples >= 0:
        return np.concatenate([np.zeros((audio.shape[0], samples)), audio], axis=1)
    return audio[:, -samples:]


@pytest.mark.parametrize("lag", [0, 1, 37, 400, -250])
def test_align_removes_a_known_lag(pair, lag):
    reference, _ = pair
    shifted = _delay(reference, lag)
    assert estimate_lag(reference.mean(0), shifted.mean(0), int(0.05 * RATE)) == lag
    ref, proc = align(reference, shifted, RATE)
    assert ref.shape == proc.shape
    np.testing.assert_array_equal(ref, proc)


def test_lags_beyond_the_window_are_not_searched(pair):
    reference, _ = pair
    found = estimate_lag(reference.mean(0), _delay(reference, 1200).mean(0), int(0.05 * RATE))
    assert abs(found) <= 800


def test_a_delayed_copy_scores_one_only_after_alignment(pair):
    reference, _ = pair
    delayed = _delay(reference, int(0.03 * RATE))[:, : reference.shape[1]]
    features = intrusive_features(delayed, reference, RATE)
    assert set(features) == {"stoi.left", "stoi.right", "estoi.left", "estoi.right"}
    assert all(v == pytest.approx(1.0, abs=1e-6) for v in features.values())
    unaligned = stoi(reference[0], delayed[0], RATE)
    assert unaligned < 0.9


def test_the_measures_are_pystoi_on_the_aligned_pair(pair):
    """At pystoi's own rate nothing is resampled: the figures are pystoi's exactly."""
    from pystoi.utils import resample_oct

    reference, processed = (np.stack([resample_oct(ear, STOI_RATE, RATE) for ear in a]) for a in pair)
    features = intrusive_features(processed, reference, STOI_RATE)
    ref, proc = align(reference, processed, STOI_RATE)
    for ear, i in (("left", 0), ("right", 1)):
        assert features[f"stoi.{ear}"] == stoi(ref[i], proc[i], STOI_RATE)
        assert features[f"estoi.{ear}"] == stoi(ref[i], proc[i], STOI_RATE, extended=True)


def test_noise_lowers_both_measures(pair):
    reference, processed = pair
    clean = intrusive_features(processed, reference, RATE)
    rng = np.random.default_rng(0)
    noisy = processed + rng.normal(0, 2 * processed.std(), processed.shape)  # about -6 dB SNR
    degraded = intrusive_features(noisy, reference, RATE)
    for key in clean:
        assert 0.0 < degraded[key] < clean[key] <= 1.0


@pytest.mark.parametrize("shape", [(3000,), (1, 3000), (3, 3000)])
def test_wrong_shapes_are_refused(shape):
    audio = np.zeros(shape)
    with pytest.raises(ValueError, match=r"must be \[2, samples\]"):
        intrusive_features(audio, np.zeros((2, 3000)), RATE)


def test_align_refuses_different_channels():
    with pytest.raises(ValueError, match="different channels"):
        align(np.zeros((2, 100)), np.zeros((1, 100)), RATE)
