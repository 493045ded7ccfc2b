"""The official route (openai-whisper base.en, audio through ffmpeg) is chosen by what the
model is, and it hears exactly what the official recipe's Whisper heard."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import whisper

from tests.conftest import DEMO_ROOT, demo_records

from code.data.audio import read_audio
from code.evaluation.asr.engines import split_ears
from code.evaluation.asr.settings import ASRSettings, model_identity, official_model_name
from code.keys import remembered_digest

SHARED_CHECKPOINT = Path(__file__).resolve().parents[2] / "shared" / "models" / "openai-whisper-tiny.en.pt"
BASE_EN_SHA256 = "25a8566e1d0c1e2231d1c762132cd20e0f96a85d16145c3a00adf5d1ac670ead"  # whisper._MODELS["base.en"]


@pytest.mark.parametrize("engine, model, official", [
    ("openai-whisper", "base.en", True),
    ("openai-whisper", "tiny.en", False),
    ("openai-whisper", "base", False),
    ("faster-whisper", "base.en", False),  # the official scores are openai-whisper's
])
def test_official_by_name(engine, model, official):
    settings = ASRSettings(engine=engine, model=model)
    assert settings.is_official_baseline() is official
    assert settings.audio_path() == ("ffmpeg" if official else "soxr")


def test_published_digests_name_the_official_files():
    # openai-whisper's download URLs carry each file's SHA-256 (the loader checks downloads against it)
    assert BASE_EN_SHA256 in whisper._MODELS["base.en"]
    from code.evaluation.asr.settings import _official_sha256

    names = _official_sha256(whisper._MODELS)
    assert names[BASE_EN_SHA256] == "base.en"
    assert names[whisper._MODELS["large"].split("/")[-2]] == "large-v3"  # an alias keeps the full name


def test_sha256_digest_is_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # keep the user's digest store clean
    f = tmp_path / "weights.pt"
    f.write_bytes(b"not a checkpoint" * 1000)
    assert remembered_digest(f, algorithm="sha256") == hashlib.sha256(f.read_bytes()).hexdigest()
    assert remembered_digest(f) != remembered_digest(f, algorithm="sha256")  # blake2b, stored apart


@pytest.mark.skipif(not SHARED_CHECKPOINT.is_file(), reason=f"no {SHARED_CHECKPOINT}")
def test_converted_checkpoint_is_not_official():
    assert official_model_name(str(SHARED_CHECKPOINT)) is None  # a conversion of tiny.en, not OpenAI's file
    settings = ASRSettings(engine="openai-whisper", model=str(SHARED_CHECKPOINT))
    assert not settings.is_official_baseline() and settings.audio_path() == "soxr"
    assert model_identity(str(SHARED_CHECKPOINT)).startswith("openai-whisper-tiny.en.pt:")


def test_a_file_with_base_en_content_is_base_en(tmp_path, monkeypatch):
    # No base.en checkpoint here: publish this file's digest as base.en's, as whisper._MODELS would.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    f = tmp_path / "my-copy.pt"
    f.write_bytes(b"weights" * 1000)
    sha = hashlib.sha256(f.read_bytes()).hexdigest()
    monkeypatch.setitem(whisper._MODELS, "base.en",
                        f"https://openaipublic.azureedge.net/main/whisper/models/{sha}/base.en.pt")
    settings = ASRSettings(engine="openai-whisper", model=str(f))
    assert official_model_name(str(f)) == "base.en"
    assert settings.is_official_baseline() and settings.audio_path() == "ffmpeg"
    assert settings.cache_key() == ASRSettings(engine="openai-whisper", model="base.en").cache_key()
    other = tmp_path / "fine-tuned.pt"
    other.write_bytes(b"weights" * 1000 + b"!")
    assert not ASRSettings(engine="openai-whisper", model=str(other)).is_official_baseline()


def test_audio_route_is_in_the_cache_key():
    auto = ASRSettings(engine="openai-whisper", model="tiny.en")
    forced = ASRSettings(engine="openai-whisper", model="tiny.en", audio_route="ffmpeg")
    assert forced.audio_path() == "ffmpeg" and not forced.is_official_baseline()  # a stand-in, not base.en
    assert forced.cache_key() != auto.cache_key()
    # base.en heard through soxr is not the official baseline (its precomputed scores heard ffmpeg)
    soxr = ASRSettings(engine="openai-whisper", model="base.en", audio_route="soxr")
    assert soxr.is_official_model() and not soxr.is_official_baseline()
    assert soxr.cache_key() != ASRSettings(engine="openai-whisper", model="base.en").cache_key()
    with pytest.raises(ValueError, match="audio route 'sox'"):
        ASRSettings(audio_route="sox")


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program")
def test_ffmpeg_route_hears_what_the_recipe_heard(tmp_path):
    """Each ear as the recipe makes it (pyclarity's 16-bit write_signal, whisper's load_audio)."""
    from clarity.utils.file_io import write_signal

    record = demo_records("valid")[0]
    audio = read_audio(DEMO_ROOT / "cadenza_data" / "valid" / "signals" / f"{record['signal']}.flac", 44100)
    stored = tmp_path / "signal.flac"  # the real data: 16-bit 44.1 kHz stereo FLAC
    import soundfile as sf

    sf.write(stored, audio.T, 44100, subtype="PCM_16")
    audio = read_audio(stored, 44100)
    ours = split_ears(audio, 44100, audio_path="ffmpeg")
    for ear in (0, 1):
        temp = tmp_path / f"temp{ear}.flac"
        write_signal(filename=temp, signal=audio.T[:, ear].astype(np.float64), sample_rate=44100,
                     floating_point=False)
        np.testing.assert_array_equal(ours[ear], whisper.load_audio(str(temp)))
