"""Hearing-aid models: NLR1 and NALR against pyclarity's own NALR + Compressor, on real audio."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from clarity.enhancer.nalr import NALR as PyClarityNALR
from clarity.utils.audiogram import AUDIOGRAM_MILD, AUDIOGRAM_MODERATE, AUDIOGRAM_REF

from benchmarks.enhance_speed import BASELINE, pyclarity_nlr1
from tests.conftest import DEMO_ROOT

from code.data.audio import read_audio
from code.data.layout import locate_split
from code.data.metadata import load_metadata
from code.models.hearing_aid_models import MODELS, make_model
from code.models.prescriptions import NLR1, CompressorSettings


def _demo_audio(i=0):
    layout = locate_split(DEMO_ROOT, "valid")
    audio = read_audio(layout.audio_path(load_metadata(layout.metadata_file)[i]["signal"]))
    return audio * (0.5 / np.max(np.abs(audio)))  # peak 0.5, whatever level the demo ships at


def _one(model, audio, audiogram) -> np.ndarray:
    """Run a contract model on a batch of one item."""
    levels = torch.tensor(np.asarray(audiogram.levels, dtype=np.float32))[None]
    out = model(torch.from_numpy(audio)[None], levels)
    assert isinstance(out, torch.Tensor) and out.shape == (1, *audio.shape)
    return out[0].numpy()


@pytest.mark.parametrize("audiogram", [AUDIOGRAM_REF, AUDIOGRAM_MILD, AUDIOGRAM_MODERATE],
                         ids=["no-loss", "mild", "moderate"])
def test_nlr1_equals_pyclarity(audiogram):
    audio = _demo_audio() * 4.0  # loud enough that the compressor engages
    ours = _one(NLR1(), audio, audiogram)
    theirs = pyclarity_nlr1(audio, audiogram, **BASELINE)  # the published baseline, not NLR1's own
    assert ours.dtype == np.float32
    assert np.max(np.abs(ours - theirs)) <= 1e-4
    assert np.max(np.abs(theirs)) > 0.35  # the compressor's threshold was crossed


def test_compressor_engages_and_matches_other_settings():
    audio = _demo_audio(1) * 6.0
    other = {"threshold": 0.2, "attenuation": 0.3, "attack": 5.0, "release": 20.0,
             "rms_buffer_size": 0.2, "makeup_gain": 1.5}
    ours = _one(NLR1(nfir=128, compressor=CompressorSettings(**other)), audio, AUDIOGRAM_MODERATE)
    theirs = pyclarity_nlr1(audio, AUDIOGRAM_MODERATE, nfir=128, **other)
    assert np.max(np.abs(ours - theirs)) <= 1e-4
    linear = pyclarity_nlr1(audio, AUDIOGRAM_MODERATE, nfir=128, **dict(other, threshold=1e9))
    assert np.max(np.abs(theirs - 1.5 * linear)) > 0.01  # compression changed the signal


@pytest.mark.parametrize("name", ["NLR1", "NALR"])
def test_output_is_time_aligned_with_input(name):
    audio = np.zeros((2, 4410), dtype=np.float32)
    audio[:, 1000] = 0.1
    out = _one(make_model(name), audio, AUDIOGRAM_REF)  # no loss: a pure delay filter, compensated
    assert np.argmax(np.abs(out[0])) == 1000 and np.argmax(np.abs(out[1])) == 1000


@pytest.mark.parametrize("audiogram", [AUDIOGRAM_MILD, AUDIOGRAM_MODERATE], ids=["mild", "moderate"])
def test_torch_nalr_equals_pyclarity_nalr(audiogram):
    audio = _demo_audio(2) * 4.0
    ours = _one(make_model("NALR"), audio, audiogram)
    nalr = PyClarityNALR(BASELINE["nfir"], 44100)  # published nfir, not the model's own
    fir, _ = nalr.build(audiogram)
    delay = BASELINE["nfir"] // 2
    theirs = np.array([nalr.apply(fir, ch)[delay: delay + audio.shape[1]] for ch in audio.astype(np.float64)])
    assert np.max(np.abs(ours - theirs)) <= 1e-5
    assert np.max(np.abs(theirs - audio)) > 0.01  # the prescription changed the signal


def test_filter_built_once_per_audiogram(monkeypatch):
    calls = []
    original = PyClarityNALR.build
    monkeypatch.setattr(PyClarityNALR, "build", lambda self, a: calls.append(1) or original(self, a))
    model = NLR1()
    audio = _demo_audio()[:, :4410]
    for _ in range(3):
        _one(model, audio, AUDIOGRAM_MILD)
        _one(model, audio, AUDIOGRAM_MODERATE)
    assert len(calls) == 2


def test_identity_returns_input():
    audio = _demo_audio()
    assert np.array_equal(_one(make_model("identity"), audio, AUDIOGRAM_MILD), audio)


def test_unknown_model_lists_names():
    """Every registered name, sorted (read from ``MODELS``: a model added as the README says
    is listed too)."""
    assert {"LyricAid", "LyricAidLevelOnly", "NALR", "NLR1", "identity"} <= set(MODELS)
    names = re.escape(str(sorted(MODELS)))
    with pytest.raises(ValueError, match=r"unknown model .NLR2.; did you mean .NLR1.\? Registered models: " + names):
        make_model("NLR2")


def test_wrong_number_of_levels_is_refused():
    with pytest.raises(ValueError, match=r"one level per audiogram frequency"):
        NLR1()(torch.zeros(1, 2, 100), torch.zeros(1, 3))
