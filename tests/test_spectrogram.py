"""Spectrogram images: one scale per signal, whatever rate its files are stored at."""

from __future__ import annotations

import numpy as np
import soundfile as sf
import soxr
from PIL import Image

from code.evaluation.outputs.spectrogram import RANGE_DB, power_image, write_row_spectrograms


def _music(rate: int = 44100, seconds: float = 2.0) -> np.ndarray:
    """Tones and a noise bed below 7 kHz (so 16 kHz storage loses nothing drawn), stereo."""
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(0)
    tones = sum(np.sin(2 * np.pi * f * t) * a for f, a in ((220, 0.3), (660, 0.1), (2500, 0.03), (5000, 0.01)))
    noise = soxr.resample(soxr.resample(rng.normal(0, 0.01, len(t)), rate, 14000), 14000, rate)[:len(t)]
    mono = (tones * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t)) + noise).astype(np.float32)
    return np.stack([mono, mono], axis=1)


def test_the_same_audio_at_16_and_44_1_khz_draws_the_same_image(tmp_path):
    audio = _music()
    sf.write(tmp_path / "full.flac", audio, 44100)
    sf.write(tmp_path / "low.flac", soxr.resample(audio, 44100, 16000), 16000)
    full, low = power_image(tmp_path / "full.flac"), power_image(tmp_path / "low.flac")
    assert full.shape == low.shape
    top = max(full.max(), low.max())
    drawn = (full > top - RANGE_DB) | (low > top - RANGE_DB)  # pixels above the scale's floor
    assert drawn.mean() > 0.5
    assert np.median(np.abs(full - low)[drawn]) < 0.5  # dB
    assert abs(full[drawn].mean() - low[drawn].mean()) < 0.5
    # on the page: the two PNGs (one shared scale) have the same brightness
    pngs = write_row_spectrograms([tmp_path / "full.flac", tmp_path / "low.flac"], tmp_path / "img")
    grey = [np.asarray(Image.open(p).convert("L"), dtype=float).mean() for p in pngs]
    assert abs(grey[0] - grey[1]) < 2.0, grey


def test_a_quieter_copy_draws_darker(tmp_path):
    audio = _music(16000)
    sf.write(tmp_path / "a.wav", audio, 16000)
    sf.write(tmp_path / "b.wav", audio * 0.1, 16000)  # -20 dB
    a, b = power_image(tmp_path / "a.wav"), power_image(tmp_path / "b.wav")
    assert abs(np.median(a - b) - 20.0) < 0.1
