"""The training's quality guard (``code.training.quality_guard``): 0 for the prescription, more
the further an output departs from it, differentiable, and part of a training's options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from code.config import ExperimentConfig, check_config
from code.training import train as training
from code.training.quality_guard import spectral_departure

RATE = 44100


def _music(seconds: float = 1.0) -> torch.Tensor:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 30))
    audio = 0.05 * (tone + 0.3 * rng.standard_normal(t.size))
    return torch.from_numpy(np.stack([audio, 0.8 * audio])).float()[None]


def test_the_prescription_itself_departs_by_nothing_and_changes_by_their_size():
    reference = _music()
    assert float(spectral_departure(reference, reference, RATE)[0]) == pytest.approx(0.0, abs=1e-9)
    small = float(spectral_departure(reference * 10 ** (1 / 20), reference, RATE)[0])
    large = float(spectral_departure(reference * 10 ** (6 / 20), reference, RATE)[0])
    assert small == pytest.approx(0.01, rel=0.05)  # a flat 1 dB: (1 dB / 10 dB)^2
    assert large == pytest.approx(0.36, rel=0.05)
    quieter = float(spectral_departure(reference / 10 ** (6 / 20), reference, RATE)[0])
    assert quieter == pytest.approx(large, rel=0.05)  # too soft costs as much as too loud


def test_gradients_reach_the_output():
    reference = _music(0.5)
    output = (reference * 1.5).requires_grad_(True)
    spectral_departure(output, reference, RATE).sum().backward()
    assert output.grad is not None and output.grad.abs().sum() > 0


def test_the_weight_is_an_option_of_the_training_and_checked():
    cfg = ExperimentConfig(train_quality_weight=0.5)
    assert training._settings(cfg, "tiny.en")["--train-quality-weight"] == 0.5
    assert "--train-quality-weight must be a number >= 0" in check_config(
        ExperimentConfig(train_quality_weight=-1.0))
