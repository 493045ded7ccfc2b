"""Audio files: decoding to float32 ``[2, samples]`` arrays, resampling, and the
checks (with their cache) that every file of a split decodes before heavy work."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from tqdm import tqdm

from code.config import SAMPLE_RATE
from code.data.layout import SplitLayout
from code.errors import DataError, Problem
from code.io_utils import write_text_atomic

logger = logging.getLogger(__name__)

SILENCE_RMS = 1e-5  # below this RMS (about -100 dBFS) a signal counts as silent
# Shortest audio the pipeline can score: STOI works on 25.6 ms frames at 10 kHz after removing
# up to --stoi-max-lag-s of misalignment, and pystoi fails outright on fewer than one frame.
MIN_AUDIO_S = 0.1
# A signal this many times as long as its unprocessed reference (and a second or more longer)
# is warned about: STOI compares only their common length.
LONGER_THAN_REFERENCE = 1.5
AUDIO_CHECK_CACHE_VERSION = 1

_RESAMPLE_NOTED: set[tuple[int, int]] = set()  # rate pairs already noted in the log


def _fit_channels(data: np.ndarray, path: Path) -> np.ndarray:
    """Turn a ``[samples, channels]`` array into ``[2, samples]``."""
    channels = data.shape[1]
    if channels == 1:
        logger.warning("%s is mono: using it for both ears", path)
        return np.repeat(data.T, 2, axis=0)
    if channels != 2:
        raise DataError(f"{path} has {channels} channels; expected stereo (2) or mono (1)")
    return data.T


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """Decode an audio file as float32 ``[2, samples]`` at the file's own rate.

    Raises:
        DataError: naming the file, when it is missing, empty, undecodable,
            has more than two channels or holds non-finite samples.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"audio file not found: {path}")
    if path.stat().st_size == 0:
        raise DataError(f"audio file is empty (0 bytes): {path}")
    try:
        data, file_rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise DataError(f"cannot decode audio file {path}: {e}") from e
    if data.shape[0] == 0:
        raise DataError(f"audio file holds no samples: {path}")
    audio = _fit_channels(data, path)
    if not np.all(np.isfinite(audio)):
        raise DataError(f"audio file {path} contains NaN or infinite samples")
    return audio, file_rate


def read_audio(path: Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file as float32 ``[2, samples]`` at ``sample_rate``.

    A mono file is used for both ears (with a warning); another sample rate is
    resampled with soxr (noted in the log).

    Raises:
        DataError: naming the file, when it is missing, empty, undecodable,
            has more than two channels or holds non-finite samples.
    """
    audio, file_rate = _decode(path)
    if file_rate != sample_rate:
        if (file_rate, sample_rate) not in _RESAMPLE_NOTED:
            _RESAMPLE_NOTED.add((file_rate, sample_rate))
            logger.info("audio at %d Hz (e.g. %s) is resampled to %d Hz", file_rate, path, sample_rate)
        audio = soxr.resample(audio.T, file_rate, sample_rate, quality="HQ").T
    return np.ascontiguousarray(audio, dtype=np.float32)


def _load_check_cache(path: Path | None) -> dict[str, list]:
    """The audio-check cache: resolved path -> [size, mtime_ns, silent]."""
    if path is None or not Path(path).is_file():
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        logger.warning("ignoring unreadable audio-check cache %s (%s); checking again", path, e)
        return {}
    if not isinstance(data, dict) or data.get("version") != AUDIO_CHECK_CACHE_VERSION \
            or not isinstance(data.get("files"), dict):
        return {}
    return data["files"]


def _save_check_cache(path: Path, new: dict[str, list]) -> None:
    """Merge ``new`` entries into the cache file (other runs may have added some)."""
    files = {**_load_check_cache(path), **new}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(Path(path), json.dumps(
        {"version": AUDIO_CHECK_CACHE_VERSION, "files": files}, separators=(",", ":")))


def _seconds(path: Path) -> float | None:
    """An audio file's duration from its header (nothing decoded); None when unreadable."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError):
        return None
    return info.frames / info.samplerate if info.samplerate > 0 else None


def _too_short(seconds: float, samples: int, rate: int, what: str) -> str:
    return (f"{what} is too short to process: {samples} sample(s) ({seconds:.3f} s at {rate} Hz); "
            f"at least {MIN_AUDIO_S} s is needed")


def _reference_check(signal: str, seconds: float, reference: Path | None
                     ) -> tuple[Problem | None, str | None]:
    """The unprocessed reference beside a signal, which Stage 2's STOI reads: a problem when it
    is too short to score against, a note when the signal is far longer than it."""
    if reference is None or not reference.is_file():
        return None, None
    ref_seconds = _seconds(reference)
    if ref_seconds is None:
        return None, None  # an undecodable reference is found where it is decoded
    if ref_seconds < MIN_AUDIO_S:
        info = sf.info(str(reference))
        return Problem(signal, _too_short(ref_seconds, info.frames, info.samplerate,
                                          f"its unprocessed reference {reference}"), str(reference)), None
    if seconds > LONGER_THAN_REFERENCE * ref_seconds and seconds - ref_seconds >= 1.0:
        return None, (f"signal {signal}: audio is {seconds:.1f} s long, its unprocessed reference "
                      f"{reference} {ref_seconds:.1f} s: STOI compares only the first "
                      f"{ref_seconds:.1f} s; check that they belong together")
    return None, None


def _check_audio(signal: str, path: Path, reference: Path | None, cache: dict[str, list]
                 ) -> tuple[Problem | None, list[str], tuple[str, list] | None, bool]:
    """(problem, notes, new cache entry, whether it was decoded) for one file; an unchanged
    file that passed before (same size and mtime) is not decoded again. ``reference`` (the
    unprocessed file beside a signal, or None) is checked from its header."""
    key = str(Path(path).resolve())
    try:
        stat = Path(path).stat()
    except OSError:
        stat = None
    silent_note = f"signal {signal}: audio is silent ({path}); it is scored, but check it"
    entry = cache.get(key)
    if stat is not None and entry is not None and entry[:2] == [stat.st_size, stat.st_mtime_ns]:
        seconds = entry[3] if len(entry) > 3 else _seconds(path)  # entries of older checks lack it
        if seconds is not None and seconds < MIN_AUDIO_S:
            info = sf.info(str(path))
            return Problem(signal, _too_short(seconds, info.frames, info.samplerate, f"audio {path}"),
                           str(path)), [], None, False
        problem, note = _reference_check(signal, seconds, reference) if seconds else (None, None)
        return problem, [n for n in (silent_note if entry[2] else None, note) if n], None, False
    try:
        audio, rate = _decode(path)
    except DataError as e:
        return Problem(signal, str(e), str(path)), [], None, True
    seconds = audio.shape[1] / rate
    if seconds < MIN_AUDIO_S:
        short = _too_short(seconds, audio.shape[1], rate, f"audio {path}")
        return Problem(signal, short, str(path)), [], None, True
    problem, note = _reference_check(signal, seconds, reference)
    silent = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) < SILENCE_RMS
    new = (key, [stat.st_size, stat.st_mtime_ns, silent, seconds]) if stat is not None else None
    return problem, [n for n in (silent_note if silent else None, note) if n], new, True


def check_audio_files(layout: SplitLayout, signals: list[str], *,
                      input_kinds: tuple[str, ...] = ("signals",), workers: int = 4,
                      check_cache: Path | None = None) -> tuple[list[Problem], list[str]]:
    """Decode each signal's audio files of ``input_kinds``; return (problems, notes).

    Audio is decoded at the file's own rate (resampling cannot make a valid
    file invalid). With ``check_cache``, files that passed before and have
    not changed since (same size and mtime) are not decoded again; the cache
    file is updated with the new passes.
    """
    cache = _load_check_cache(check_cache)
    jobs = [(s, layout.audio_path(s, kind), layout.audio_path(s, "unprocessed") if kind == "signals" else None)
            for s in signals for kind in input_kinds]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(tqdm(pool.map(lambda job: _check_audio(*job, cache), jobs), total=len(jobs),
                            desc=f"checking {layout.split} audio", unit="file", leave=False,
                            disable=len(jobs) < 100))
    new = dict(entry for _, _, entry, _ in results if entry is not None)
    if check_cache is not None and new:
        _save_check_cache(check_cache, new)
    decoded = sum(1 for *_, fresh in results if fresh)
    if jobs:
        logger.info("checked %d audio file(s) of split %r: %d decoded, %d unchanged since "
                    "their last check", len(jobs), layout.split, decoded, len(jobs) - decoded)
    return ([p for p, *_ in results if p is not None],
            [n for _, notes, *_ in results for n in notes])
