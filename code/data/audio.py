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
from code.data.levels import simulator_level_problem
from code.errors import DataError, Problem
from code.io_utils import write_text_atomic
from code.keys import code_digest

logger = logging.getLogger(__name__)

SILENCE_RMS = 1e-5  # below this RMS (about -100 dBFS) a signal counts as silent

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
    """The audio-check cache: resolved path -> [size, mtime_ns, silent, why the simulator
    cannot take it or None], valid while the
    checking code (``_check_audio`` and what it calls) is unchanged."""
    if path is None or not Path(path).is_file():
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        logger.warning("ignoring unreadable audio-check cache %s (%s); checking again", path, e)
        return {}
    if not isinstance(data, dict) or data.get("code") != code_digest(_check_audio) \
            or not isinstance(data.get("files"), dict):
        return {}
    return data["files"]


def _save_check_cache(path: Path, new: dict[str, list]) -> None:
    """Merge ``new`` entries into the cache file (other runs may have added some)."""
    files = {**_load_check_cache(path), **new}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(Path(path), json.dumps(
        {"code": code_digest(_check_audio), "files": files}, separators=(",", ":")))


def _link_target(path: Path) -> str:
    try:
        return repr(str(path.readlink()))
    except OSError as e:
        return f"unreadable ({e.strerror})"


def _check_audio(signal: str, path: Path, cache: dict[str, list], simulated: bool = False
                 ) -> tuple[Problem | None, str | None, tuple[str, list] | None, bool]:
    """(problem, note, new cache entry, whether it was decoded) for one file; an
    unchanged file that passed before (same size and mtime) is not decoded again.
    ``simulated``: the hearing-loss simulator hears this audio (through the model), so
    audio too quiet for its level calibration is a problem."""
    try:
        key = str(Path(path).resolve())
    except (OSError, RuntimeError):  # a symbolic link loop: decoding names it
        key = None
    try:
        stat = Path(path).stat()
    except OSError:
        stat = None
    silent_note = f"signal {signal}: audio is silent ({path}); it is scored, but check it"
    entry = cache.get(key) if key is not None else None
    if stat is not None and entry is not None and len(entry) == 4 \
            and entry[:2] == [stat.st_size, stat.st_mtime_ns]:
        quiet = Problem(signal, f"audio {entry[3]}", str(path)) if simulated and entry[3] else None
        return quiet, silent_note if entry[2] else None, None, False
    if stat is None and Path(path).is_symlink():
        return Problem(signal, f"audio file {path} is a symbolic link that leads to no file (a loop, or a "
                       f"missing target: {_link_target(Path(path))}); expected an audio file"), None, None, True
    try:
        audio, rate = _decode(path)
    except DataError as e:
        return Problem(signal, str(e), str(path)), None, None, True
    silent = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) < SILENCE_RMS
    if rate != SAMPLE_RATE:  # judged as Stage 1 reads it
        audio = soxr.resample(audio.T, rate, SAMPLE_RATE, quality="HQ").T
    too_quiet = simulator_level_problem(audio, SAMPLE_RATE)
    new = (key, [stat.st_size, stat.st_mtime_ns, silent, too_quiet]) \
        if stat is not None and key is not None else None
    quiet = Problem(signal, f"audio {too_quiet}", str(path)) if simulated and too_quiet else None
    return quiet, silent_note if silent else None, new, True


def check_audio_files(layout: SplitLayout, signals: list[str], *,
                      input_kinds: tuple[str, ...] = ("signals",), workers: int = 4,
                      check_cache: Path | None = None, simulated: tuple[str, ...] = ()
                      ) -> tuple[list[Problem], list[str]]:
    """Decode each signal's audio files of ``input_kinds``; return (problems, notes).
    Audio of a kind in ``simulated`` goes through the hearing-loss simulator (after the
    model): audio too quiet for it (``code.data.levels``) is a problem too.

    Audio is decoded at the file's own rate (resampling cannot make a valid
    file invalid; its level is judged at 44100 Hz, as Stage 1 reads it). With
    ``check_cache``, files that passed before and have not changed since (same
    size and mtime) are not decoded again; the cache file is updated with the
    new passes.
    """
    cache = _load_check_cache(check_cache)
    jobs = [(s, layout.audio_path(s, kind), kind in simulated) for s in signals for kind in input_kinds]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(tqdm(pool.map(lambda job: _check_audio(job[0], job[1], cache, job[2]), jobs),
                            total=len(jobs),
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
            [n for _, n, *_ in results if n is not None])
