"""Small spectrogram images for the HTML report: one PNG per audio file, 0..8 kHz.

The audios of one signal share one colour scale (their loudest bin is the top, 60 dB
below it the bottom), so a model's gain or a simulator's loss shows as a brighter or
darker picture beside the others. Each image is named by the file's path, size,
modification time and the scale, and an image already there is reused.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from code.io_utils import atomic_path
from code.keys import file_digest, settings_digest

WIDTH, HEIGHT = 200, 64  # pixels of one image
TOP_HZ = 8000.0  # highest frequency drawn (the speech band Whisper hears at 16 kHz)
RANGE_DB = 60.0  # colour scale: the row's loudest bin down to this many dB below it
FRAME_S = 0.032  # analysis window (hop: half of it)
BIN_HZ = 15.625  # spacing of the analysed frequencies, the same at every sample rate


def _read_mono(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return audio.mean(axis=1), rate


def power_image(path: Path) -> np.ndarray:
    """The file's power spectral density in dB (per Hz), ``[HEIGHT, WIDTH]``, low
    frequencies in row 0: rows are equal bands of 0..``TOP_HZ``, columns equal stretches of
    time. Windows of ``FRAME_S`` seconds and a density per Hz make it independent of the
    file's sample rate: the same audio stored at 16 or 44.1 kHz gives the same image."""
    audio, rate = _read_mono(path)
    n_window = max(2, int(round(FRAME_S * rate)))
    n_fft = max(n_window, int(round(rate / BIN_HZ)))  # zero-padded to bins BIN_HZ apart at any rate
    if len(audio) < n_window:
        audio = np.pad(audio, (0, n_window - len(audio)))
    window = np.hanning(n_window)
    frames = np.lib.stride_tricks.sliding_window_view(audio, n_window)[::n_window // 2] * window
    density = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2 / (rate * np.sum(window ** 2))
    band = np.floor(np.fft.rfftfreq(n_fft, 1.0 / rate) / (TOP_HZ / HEIGHT)).astype(int)
    member = (band[:, None] == np.arange(HEIGHT)[None, :]).astype(float)  # [bins, HEIGHT]; above TOP_HZ: none
    member /= np.maximum(member.sum(axis=0), 1.0)  # bands above Nyquist stay empty (zero)
    power = (density @ member).T  # [HEIGHT, frames]: the mean density in each band
    small = _shrink(power, min(WIDTH, power.shape[1]), axis=1)
    if small.shape[1] < WIDTH:  # short audio: stretch to the width
        small = small[:, np.linspace(0, small.shape[1] - 1, WIDTH).round().astype(int)]
    return 10 * np.log10(small + 1e-20)


def _shrink(x: np.ndarray, n: int, *, axis: int) -> np.ndarray:
    """Means over ``n`` near-equal blocks along ``axis``."""
    edges = np.linspace(0, x.shape[axis], n + 1).astype(int)[:-1]
    counts = np.diff(np.append(edges, x.shape[axis]))
    sums = np.add.reduceat(x, edges, axis=axis)
    return sums / (counts[:, None] if axis == 0 else counts[None, :])


def _name(path: Path, top_db: float) -> str:
    stat = Path(path).stat()
    return settings_digest([str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, round(top_db, 1),
                            WIDTH, HEIGHT, RANGE_DB, TOP_HZ, FRAME_S, BIN_HZ, _code()]) + ".png"


@functools.cache
def _code() -> str:
    """This module's source digest: an image drawn by other code is drawn again."""
    return file_digest(Path(__file__))


def write_row_spectrograms(paths: list[Path], folder: Path) -> list[Path]:
    """One PNG per audio file in ``folder`` (on the shared scale of ``paths``); returns
    their paths, in order. Images already written for the same files are reused."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = [power_image(p) for p in paths]
    top = max(float(img.max()) for img in images) if images else 0.0
    out = []
    folder.mkdir(parents=True, exist_ok=True)
    for path, img in zip(paths, images):
        target = folder / _name(path, top)
        if not target.is_file():
            with atomic_path(target) as tmp:
                plt.imsave(tmp, img, cmap="magma", vmin=top - RANGE_DB, vmax=top, origin="lower",
                           format="png")
        out.append(target)
    return out
