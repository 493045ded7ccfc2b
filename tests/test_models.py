"""Hearing-aid models: NLR1 against pyclarity's own NALR + Compressor, on real audio."""

from __future__ import annotations

import numpy as np
import pytest
from clarity.enhancer.nalr import NALR
from clarity.utils.audiogram import AUDIOGRAM_MILD, AUDIOGRAM_MODERATE, AUDIOGRAM_REF

from benchmarks.enhance_speed import BASELINE, pyclarity_nlr1
from code.data_loading import read_audio
from code.models.hearing_aid_models import NLR1, CompressorSettings, make_model
from tests.conftest import DEMO_ROOT, demo_records


def _demo_audio(i=0):
    record = demo_records("valid")[i]
    return read_audio(DEMO_ROOT / "cadenza_data" / "valid" / "signals" / f"{record['signal']}.flac")


@pytest.mark.parametrize("audiogram", [AUDIOGRAM_REF, AUDIOGRAM_MILD, AUDIOGRAM_MODERATE],
                         ids=["no-loss", "mild", "moderate"])
def test_nlr1_equals_pyclarity(audiogram):
    audio = _demo_audio() * 4.0  # loud enough that the compressor engages
    ours = NLR1()(audio, audiogram)
    theirs = pyclarity_nlr1(audio, audiogram, **BASELINE)  # the published baseline, not NLR1's own
    assert ours.shape == audio.shape and ours.dtype == np.float32
    assert np.max(np.abs(ours - theirs)) <= 1e-4
    assert np.max(np.abs(theirs)) > 0.35  # the compressor's threshold was crossed


def test_compressor_engages_and_matches_other_settings():
    audio = _demo_audio(1) * 6.0
    other = {"threshold": 0.2, "attenuation": 0.3, "attack": 5.0, "release": 20.0,
             "rms_buffer_size": 0.2, "makeup_gain": 1.5}
    model = NLR1(nfir=128, compressor=CompressorSettings(**other))
    ours = model(audio, AUDIOGRAM_MODERATE)
    theirs = pyclarity_nlr1(audio, AUDIOGRAM_MODERATE, nfir=128, **other)
    assert np.max(np.abs(ours - theirs)) <= 1e-4
    linear = pyclarity_nlr1(audio, AUDIOGRAM_MODERATE, nfir=128, **dict(other, threshold=1e9))
    assert np.max(np.abs(theirs - 1.5 * linear)) > 0.01  # compression changed the signal


def test_output_is_time_aligned_with_input():
    audio = np.zeros((2, 4410), dtype=np.float32)
    audio[:, 1000] = 0.1
    out = NLR1()(audio, AUDIOGRAM_REF)  # no loss: a pure delay filter, compensated
    assert out.shape == audio.shape
    assert np.argmax(np.abs(out[0])) == 1000 and np.argmax(np.abs(out[1])) == 1000


def test_filter_built_once_per_audiogram(monkeypatch):
    calls = []
    original = NALR.build
    monkeypatch.setattr(NALR, "build", lambda self, a: calls.append(1) or original(self, a))
    model = NLR1()
    audio = _demo_audio()[:, :4410]
    for _ in range(3):
        model(audio, AUDIOGRAM_MILD)
        model(audio, AUDIOGRAM_MODERATE)
    assert len(calls) == 2


def test_identity_returns_input():
    audio = _demo_audio()
    assert np.array_equal(make_model("identity")(audio, AUDIOGRAM_MILD), audio)


def test_unknown_model_lists_names():
    with pytest.raises(ValueError, match=r"registered models: \['NLR1', 'identity'\]"):
        make_model("NLR2")
