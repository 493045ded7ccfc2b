"""The torch MSBG (``code.hearing_loss.torch_ear``) against the project's fast MSBG, and its gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from clarity.utils.audiogram import Audiogram

from tests.conftest import DEMO_ROOT

from code.data.audio import read_audio
from code.hearing_loss.design import ear_design
from code.hearing_loss.fast import simulate_ear
from code.hearing_loss.simulator import simulate_hearing_loss, simulator_settings
from code.hearing_loss.torch_ear import TorchEar, simulate_numpy, simulate_torch
from code.models.audiograms import DEFAULT_AUDIOGRAMS

TOLERANCE_FLOAT32 = 1e-4  # absolute, on outputs of about full scale (as the fast one's against Ear)
TOLERANCE_FLOAT64 = 1e-9
# A mild flat loss: pyclarity's "NOTHING" smearing severity, so recruitment alone.
FLAT_10DB = Audiogram(levels=np.full(6, 10.0), frequencies=np.array([250, 500, 1000, 2000, 4000, 8000]))


def demo_signal(index: int, seconds: float) -> np.ndarray:
    """Valid demo signal ``index`` (unprocessed), float32 [2, T], scaled to a 0.9 peak, from 1 s in."""
    paths = sorted((DEMO_ROOT / "cadenza_data" / "valid" / "unprocessed").glob("*.flac"))
    audio = read_audio(paths[index], 44100)
    audio = audio * (0.9 / np.max(np.abs(audio)))  # about full scale, as the tolerance assumes
    return np.resize(audio[:, 44100:], (2, int(seconds * 44100))).astype(np.float32)


def fast(audio: np.ndarray, audiogram: Audiogram) -> np.ndarray:
    design = ear_design(audiogram)
    return np.stack([simulate_ear(ch.astype(np.float64), design) for ch in audio])


@pytest.mark.slow
@pytest.mark.parametrize("category, index", [("Mild", 0), ("Moderate", 1), ("Moderate", 2)])
def test_torch_matches_fast_in_float32_and_float64(category, index):
    audio = demo_signal(index, 0.75)
    expected = fast(audio, DEFAULT_AUDIOGRAMS[category])
    assert np.max(np.abs(expected)) > 0.1  # a real signal, not near silence
    design = ear_design(DEFAULT_AUDIOGRAMS[category])
    for dtype, cochlea_dtype, tolerance in ((torch.float32, torch.float64, TOLERANCE_FLOAT32),
                                            (torch.float32, None, TOLERANCE_FLOAT32),
                                            (torch.float64, torch.float64, TOLERANCE_FLOAT64)):
        with torch.no_grad():
            x = torch.from_numpy(audio)[None].to(dtype)
            out = simulate_torch(x, [design], cochlea_dtype=cochlea_dtype)[0]
        assert out.dtype == dtype and out.shape == audio.shape
        assert np.max(np.abs(out.double().numpy() - expected)) <= tolerance, (dtype, cochlea_dtype)


@pytest.mark.slow
def test_batch_mixes_listeners_lengths_no_loss_and_silent_ears():
    mild, moderate = demo_signal(3, 0.5), demo_signal(4, 0.4)
    moderate[1] = 0.0
    t = mild.shape[1]
    batch = torch.zeros(3, 2, t, dtype=torch.float64)
    batch[0] = torch.from_numpy(mild)
    batch[1] = torch.from_numpy(mild)
    batch[2, :, : moderate.shape[1]] = torch.from_numpy(moderate)
    designs = [ear_design(FLAT_10DB), None, ear_design(DEFAULT_AUDIOGRAMS["Moderate"])]
    with torch.no_grad():
        out = simulate_torch(batch, designs, lengths=[t, t, moderate.shape[1]]).numpy()
    assert np.max(np.abs(out[0] - fast(mild, FLAT_10DB))) <= TOLERANCE_FLOAT64  # no smearing
    np.testing.assert_array_equal(out[1], batch[1].numpy())  # no loss: passed through
    n = moderate.shape[1]
    expected = simulate_ear(moderate[0].astype(np.float64), designs[2])
    assert np.max(np.abs(out[2, 0, :n] - expected)) <= TOLERANCE_FLOAT64
    assert not np.any(out[2, 1]) and not np.any(out[2, :, n:])  # silent ear, padding


@pytest.mark.slow
@pytest.mark.parametrize("audiogram", [DEFAULT_AUDIOGRAMS["Moderate"], FLAT_10DB], ids=["Moderate", "flat 10 dB"])
def test_gradients_reach_the_input_through_the_simulator(audiogram):
    audio = torch.from_numpy(demo_signal(5, 0.15)).double()[None]
    design = ear_design(audiogram)
    x = audio.clone().requires_grad_(True)
    loss = (simulate_torch(x, [design]) ** 2).sum()
    loss.backward()
    grad = x.grad
    assert torch.isfinite(grad).all() and (grad.abs().amax(dim=-1) > 0).all()  # both ears
    # The gradient is the derivative: a central difference along a random direction agrees.
    # The step is tiny because smearing takes square roots of smeared powers that pass near
    # zero (the function is not smooth there): at 1e-6 the difference is 12% off, at 1e-10 1e-6.
    direction = torch.randn(audio.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    step = 1e-10
    with torch.no_grad():
        plus = (simulate_torch(audio + step * direction, [design]) ** 2).sum()
        minus = (simulate_torch(audio - step * direction, [design]) ** 2).sum()
    numeric = (plus - minus) / (2 * step)
    analytic = (grad * direction).sum()
    assert abs(float(numeric - analytic)) <= 1e-4 * abs(float(analytic))


@pytest.mark.slow
def test_msbg_torch_route_gives_the_fast_output_under_its_own_settings():
    audio = demo_signal(6, 0.5)
    audio[0] = 0.0
    heard = simulate_hearing_loss(audio, DEFAULT_AUDIOGRAMS["Mild"], simulator="torch")
    expected = simulate_hearing_loss(audio, DEFAULT_AUDIOGRAMS["Mild"], simulator="fast")
    assert heard.dtype == np.float32 and heard.shape == audio.shape
    assert np.max(np.abs(heard - expected)) <= TOLERANCE_FLOAT32 and not np.any(heard[0])
    settings = simulator_settings("torch")
    assert settings["simulator"] == "torch" and settings not in (simulator_settings("fast"),
                                                                 simulator_settings("reference"))


def test_short_or_integer_input_is_refused():
    ear = TorchEar(ear_design(DEFAULT_AUDIOGRAMS["Mild"]))
    with pytest.raises(ValueError, match="T >= 512"):
        ear(torch.zeros(2, 100))
    with pytest.raises(ValueError, match="float ears"):
        ear(torch.zeros(2, 1000, dtype=torch.int16))
    with pytest.raises(ValueError, match="2 items but 1 designs"):
        simulate_torch(torch.zeros(2, 2, 1000), [None])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_on_the_gpu_matches_fast_and_has_gradients():
    audio = demo_signal(1, 1.0)
    design = ear_design(DEFAULT_AUDIOGRAMS["Moderate"])
    expected = fast(audio, DEFAULT_AUDIOGRAMS["Moderate"])
    assert np.max(np.abs(simulate_numpy(audio, design, device="cuda") - expected)) <= TOLERANCE_FLOAT32
    x = torch.from_numpy(audio)[None].to("cuda").requires_grad_(True)
    (simulate_torch(x, [design]) ** 2).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().max() > 0
