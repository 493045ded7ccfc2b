"""Load and check a CLIP split: metadata records and their stereo audio.

Two challenges, each with its layout (``<signal>`` files may be ``.flac`` or ``.wav``)::

    CLIP1 (ICASSP 2026)                          CLIP2 (ICASSP 2027)
    <root>/cadenza_data/                         <root>/cadenza_data/clip2/
        metadata/<split>_metadata.json               metadata/<split>_metadata.json
        <split>/signals/<signal>.flac                metadata/train_responses.json
        <split>/unprocessed/<signal>_unproc.flac     <split>/signals/<signal>.flac
                                                     <split>/unprocessed/<signal>_unproc.flac

CLIP1 also comes with the official recipe's ``cadenza_data/audio/<split>/...``.
The data root may be the folder holding ``cadenza_data/``, ``cadenza_data/``
itself or (CLIP2) its ``clip2/`` folder; the challenge is read from the layout
(``resolve_data_root``). A data root holding only ``metadata/`` is enough for
work that needs no audio (``check_audio=False``).

Audio is handled as float32 arrays of shape ``[2, samples]`` (left, right) at
``SAMPLE_RATE`` unless another rate is configured. Ground truth (``correctness``,
``phoneme_correctness``) is 0..1.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from code.io_utils import write_text_atomic

logger = logging.getLogger(__name__)

SAMPLE_RATE = 44100
HEARING_LOSS_CATEGORIES = ("No Loss", "Mild", "Moderate")
CHALLENGES = ("clip1", "clip2")
SPLITS = ("train", "valid", "eval")
INPUT_KINDS = ("signals", "unprocessed")
REQUIRED_FIELDS = ("signal", "prompt", "hearing_loss")
TARGETS = ("correctness", "phoneme_correctness")  # ground-truth fields, 0..1
# One listener response in <split>_responses.json (CLIP2): field -> kind of value.
RESPONSE_FIELDS = {"response_id": "id", "original_response": "text", "response": "text",
                   "hits": "count", "correctness": "fraction",
                   "phoneme_hits": "count", "phoneme_correctness": "fraction"}
LABEL_TOLERANCE = 1e-3  # metadata label vs mean of its listener responses
AUDIO_EXTENSIONS = (".flac", ".wav")
SILENCE_RMS = 1e-5  # below this RMS (about -100 dBFS) a signal counts as silent
AUDIO_CHECK_CACHE_VERSION = 1


_RESAMPLE_NOTED: set[tuple[int, int]] = set()  # rate pairs already noted in the log
_ROOTS_NOTED: set[tuple[Path, str]] = set()  # resolved data roots already logged


class DataError(Exception):
    """The data set is not in the shape the pipeline needs."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one record or file."""

    signal: str | None
    reason: str
    path: str | None = None

    def __str__(self) -> str:
        where = f"signal {self.signal}" if self.signal else "metadata"
        return f"{where}: {self.reason}" + (f" ({self.path})" if self.path else "")

    def to_dict(self) -> dict:
        return {"signal": self.signal, "reason": self.reason, "path": self.path}


@dataclass(frozen=True)
class DataRoot:
    """A resolved data root: the challenge and the folder holding ``metadata/``
    and the split folders (``cadenza_data/`` for CLIP1, ``cadenza_data/clip2/``
    for CLIP2)."""

    challenge: str  # "clip1" | "clip2"
    base: Path

    @property
    def metadata_dir(self) -> Path:
        return self.base / "metadata"


@dataclass(frozen=True)
class SplitLayout:
    """Where one split's metadata and audio live."""

    split: str
    metadata_file: Path
    audio_dir: Path  # holds signals/ and unprocessed/ (may not exist for metadata-only work)
    challenge: str = "clip1"

    @property
    def responses_file(self) -> Path:
        """The split's listener-responses file (CLIP2 ``train_responses.json``); may not exist."""
        return self.metadata_file.parent / f"{self.split}_responses.json"

    def audio_path(self, signal: str, input_kind: str = "signals") -> Path:
        """Path of a signal's audio; the ``.flac`` name when neither file exists."""
        if input_kind not in INPUT_KINDS:
            raise ValueError(f"input kind must be one of {INPUT_KINDS}, got {input_kind!r}")
        stem = signal if input_kind == "signals" else f"{signal}_unproc"
        folder = self.audio_dir / input_kind
        for ext in AUDIO_EXTENSIONS:
            candidate = folder / f"{stem}{ext}"
            if candidate.exists():
                return candidate
        return folder / f"{stem}{AUDIO_EXTENSIONS[0]}"


@dataclass
class SplitData:
    """A checked split: the records to process and what was left out."""

    layout: SplitLayout
    records: list[dict]
    skipped: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _root_candidates(data_root: Path) -> list[tuple[str, Path]]:
    """(challenge, base) pairs to look for, most specific first; "" = read from the folder."""
    return [
        ("clip2", data_root / "cadenza_data" / "clip2"),  # the folder holding cadenza_data/
        ("clip1", data_root / "cadenza_data"),
        ("clip2", data_root / "clip2"),  # data_root is cadenza_data/
        ("", data_root),  # data_root is cadenza_data/ (CLIP1) or clip2/ (CLIP2)
    ]


def _challenge_of(base: Path) -> str:
    """CLIP2 when the folder is named ``clip2`` or holds a responses file, else CLIP1."""
    if base.name == "clip2" or (base / "metadata" / "train_responses.json").is_file():
        return "clip2"
    return "clip1"


def resolve_data_root(data_root: Path, challenge: str = "") -> DataRoot:
    """Find the metadata folder under ``data_root`` and which challenge it is.

    ``data_root`` may be the folder holding ``cadenza_data/``, ``cadenza_data/``
    itself or CLIP2's ``cadenza_data/clip2/``. ``challenge`` ("clip1" or
    "clip2") overrides what the layout says; "" reads it from the layout.

    Raises:
        DataError: for an unknown ``challenge``; when no metadata folder is
            found (the message lists every path looked for); or when both a
            CLIP1 and a CLIP2 data set are found and ``challenge`` is "".
    """
    if challenge not in ("", *CHALLENGES):
        raise DataError(f"challenge must be one of {CHALLENGES} (or '' to read it from the "
                        f"layout), got {challenge!r}")
    data_root = Path(data_root)
    found: list[DataRoot] = []
    for kind, base in _root_candidates(data_root):
        if (base / "metadata").is_dir():
            found.append(DataRoot(kind or _challenge_of(base), base))
    found = list(dict.fromkeys(found))  # cadenza_data/ can be reached two ways
    if not found:
        looked = "\n  ".join(f"{base / 'metadata'}/ ({kind.upper() or 'CLIP1 or CLIP2'})"
                             for kind, base in _root_candidates(data_root))
        raise DataError(
            f"{data_root} is not a CLIP data root: no metadata folder at any of\n  {looked}\n"
            "(expected <root>/cadenza_data/metadata/ for CLIP1 or "
            "<root>/cadenza_data/clip2/metadata/ for CLIP2)")
    if challenge:
        matching = [r for r in found if r.challenge == challenge]
        if not matching:
            logger.warning("%s looks like %s data; reading it as %s as asked", found[0].base,
                           found[0].challenge.upper(), challenge.upper())
            matching = [DataRoot(challenge, found[0].base)]
        root = matching[0]
    else:
        kinds = {r.challenge for r in found}
        if len(kinds) > 1:
            listing = ", ".join(f"{r.challenge.upper()} at {r.base}" for r in found)
            raise DataError(f"{data_root} holds more than one data set ({listing}); "
                            "say which with --challenge clip1 or --challenge clip2")
        root = found[0]
    if (root.base, root.challenge) not in _ROOTS_NOTED:
        _ROOTS_NOTED.add((root.base, root.challenge))
        logger.info("data root %s: %s layout (metadata in %s)", data_root,
                    root.challenge.upper(), root.metadata_dir)
    return root


def locate_split(data_root: Path | DataRoot, split: str, *, challenge: str = "",
                 need_audio: bool = True) -> SplitLayout:
    """Find a split's metadata file and audio folder under ``data_root``.

    ``data_root`` is a path (resolved with ``resolve_data_root``) or a
    resolved ``DataRoot``. With ``need_audio=False`` no audio folder is needed
    (the layout then names where it would be).

    Raises:
        DataError: when ``data_root`` is not a CLIP layout, the split's
            metadata file is missing, or (``need_audio``) no audio folder is
            found; the message lists the paths that were looked for.
    """
    if split not in SPLITS:
        raise DataError(f"split must be one of {SPLITS}, got {split!r}")
    root = data_root if isinstance(data_root, DataRoot) else resolve_data_root(data_root, challenge)
    metadata_file = root.metadata_dir / f"{split}_metadata.json"
    if not metadata_file.is_file():
        present = sorted(p.name for p in root.metadata_dir.glob("*_metadata.json"))
        raise DataError(f"no metadata file for split {split!r} at {metadata_file} "
                        f"({root.challenge.upper()} layout; {root.metadata_dir} holds "
                        f"{', '.join(present) or 'no *_metadata.json file'})")
    candidates = [root.base / split, root.base / "audio" / split]
    for audio_dir in candidates:
        if audio_dir.is_dir():
            return SplitLayout(split, metadata_file, audio_dir, root.challenge)
    if not need_audio:
        return SplitLayout(split, metadata_file, candidates[0], root.challenge)
    looked = " or ".join(str(c) for c in candidates)
    raise DataError(f"no audio folder for split {split!r}: looked for {looked}")


def _load_json(path: Path, what: str) -> object:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{what} file {path} is not valid JSON: {e}") from e


def load_metadata(path: Path) -> list[dict]:
    """Read a metadata JSON file: a list of record dicts.

    Raises:
        DataError: naming the file, when it is missing, not JSON or not a list of objects.
    """
    records = _load_json(path, "metadata")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataError(f"metadata file {path} must hold a JSON list of records (objects)")
    return records


def load_responses(path: Path) -> dict[str, list]:
    """Read a listener-responses file (CLIP2 ``train_responses.json``): a JSON
    object mapping each signal ID to its list of responses. The responses
    themselves are checked by ``check_responses``.

    Raises:
        DataError: naming the file, when it is missing, not JSON or not an object.
    """
    responses = _load_json(path, "responses")
    if not isinstance(responses, dict):
        raise DataError(f"responses file {path} must hold a JSON object mapping signal IDs "
                        f"to lists of responses, got a {type(responses).__name__}")
    return responses


def record_name(index: int, record: dict) -> str:
    """How problems name a record: its signal ID, or its position when it has none."""
    signal = record.get("signal")
    return str(signal) if signal is not None and str(signal).strip() else f"record #{index}"


def _is_fraction(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and 0.0 <= value <= 1.0)


def _signal_problem(signal: object) -> str | None:
    if not isinstance(signal, str):
        return f"'signal' must be a string, got {signal!r}"
    if not signal.strip():
        return f"empty signal ID {signal!r}"
    if "/" in signal or "\\" in signal or signal in (".", ".."):
        return f"signal ID {signal!r} is not a plain file name"
    return None


def check_records(records: list[dict], *, require_correctness: bool = False,
                  target: str = "correctness") -> list[Problem]:
    """Check metadata records; return every problem found (empty when all is well).

    Ground-truth fields (``correctness``, ``phoneme_correctness``) are checked
    wherever present (each must lie in 0..1); ``target`` is required only when
    ``require_correctness`` is set (ground truth, training).

    Raises:
        DataError: for a ``target`` not in ``TARGETS``.
    """
    if target not in TARGETS:
        raise DataError(f"target must be one of {TARGETS}, got {target!r}")
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for index, record in enumerate(records):
        signal = record.get("signal")
        name = record_name(index, record)
        for key in REQUIRED_FIELDS:
            if key not in record:
                problems.append(Problem(name, f"missing required field {key!r}"))
        if "signal" in record and (reason := _signal_problem(signal)):
            problems.append(Problem(name, reason))
        if isinstance(signal, str) and signal.strip():
            if signal in seen:
                problems.append(Problem(signal, f"duplicate signal ID (also record #{seen[signal]})"))
            seen.setdefault(signal, index)
        prompt = record.get("prompt")
        if "prompt" in record and (not isinstance(prompt, str) or not prompt.strip()):
            problems.append(Problem(name, "empty prompt"))
        loss = record.get("hearing_loss")
        if "hearing_loss" in record and loss not in HEARING_LOSS_CATEGORIES:
            problems.append(Problem(
                name, f"unknown hearing_loss {loss!r}; expected one of {list(HEARING_LOSS_CATEGORIES)}"))
        for key in TARGETS:
            if key in record or (require_correctness and key == target):
                value = record.get(key)
                if value is None:
                    problems.append(Problem(name, f"missing {key!r} (needed as ground truth)"))
                elif not _is_fraction(value):
                    problems.append(Problem(name, f"{key} {value!r} is not a number in 0..1"))
    return problems


def _response_problems(signal: str, responses: object, where: str) -> list[Problem]:
    if not isinstance(responses, list) or not responses:
        return [Problem(signal, f"responses in {where} must be a non-empty list, got {responses!r}")]
    problems: list[Problem] = []
    ids: set[str] = set()
    for i, response in enumerate(responses):
        label = f"response #{i} in {where}"
        if not isinstance(response, dict):
            problems.append(Problem(signal, f"{label} is not an object: {response!r}"))
            continue
        for key, kind in RESPONSE_FIELDS.items():
            if key not in response:
                problems.append(Problem(signal, f"{label} lacks {key!r}"))
                continue
            value = response[key]
            if kind == "id" and (not isinstance(value, str) or not value.strip()):
                problems.append(Problem(signal, f"{label}: response_id {value!r} is not a name"))
            elif kind == "id" and value in ids:
                problems.append(Problem(signal, f"{label}: duplicate response_id {value!r}"))
            elif kind == "text" and not isinstance(value, str):
                problems.append(Problem(signal, f"{label}: {key} {value!r} is not a string"))
            elif kind == "count" and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < 0):
                problems.append(Problem(signal, f"{label}: {key} {value!r} is not a count >= 0"))
            elif kind == "fraction" and not _is_fraction(value):
                problems.append(Problem(signal, f"{label}: {key} {value!r} is not a number in 0..1"))
            if kind == "id" and isinstance(value, str):
                ids.add(value)
    return problems


def check_responses(responses: dict[str, list], records: list[dict], *,
                    source: str = "responses file") -> list[Problem]:
    """Check listener responses (CLIP2 ``train_responses.json``) against the
    split's metadata records; return every problem found, named by signal.

    Each signal must map to a non-empty list of responses with the fields of
    ``RESPONSE_FIELDS`` (counts >= 0, fractions in 0..1, distinct
    ``response_id``); every signal must be in the metadata, every record
    must have responses, and a record's ``correctness`` and
    ``phoneme_correctness`` must equal the mean over its responses (within
    ``LABEL_TOLERANCE``). ``source`` names the file in the messages.
    """
    problems: list[Problem] = []
    by_signal = {r["signal"]: r for r in records if isinstance(r.get("signal"), str)}
    for signal, listed in responses.items():
        if signal not in by_signal:
            problems.append(Problem(signal, f"has responses in {source} but is not in the metadata"))
            continue
        found = _response_problems(signal, listed, source)
        problems += found
        if found:
            continue
        record = by_signal[signal]
        for key in TARGETS:
            if _is_fraction(record.get(key)):
                mean = sum(r[key] for r in listed) / len(listed)
                if abs(mean - record[key]) > LABEL_TOLERANCE:
                    problems.append(Problem(signal, f"metadata {key} {record[key]!r} differs from "
                                                    f"the mean of its responses in {source} ({mean:.4f})"))
    for signal in by_signal:
        if signal not in responses:
            problems.append(Problem(signal, f"no listener responses in {source}"))
    return problems


def target_0_1(record: dict, target: str = "correctness") -> float:
    """A record's ground truth on the 0..1 scale: ``correctness`` (words, the
    challenge's target) or ``phoneme_correctness`` (CLIP2 training metadata).

    Raises:
        DataError: naming the signal, for an unknown ``target`` or when the
            record lacks a valid value for it.
    """
    if target not in TARGETS:
        raise DataError(f"target must be one of {TARGETS}, got {target!r}")
    value = record.get(target)
    if value is None:
        raise DataError(f"signal {record.get('signal')}: no {target!r} in its metadata"
                        + (" (only CLIP2 training metadata has phoneme_correctness)"
                           if target == "phoneme_correctness" else ""))
    if not _is_fraction(value):
        raise DataError(f"signal {record.get('signal')}: {target} {value!r} is not a number in 0..1")
    return float(value)


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


def _check_audio(signal: str, path: Path, cache: dict[str, list]
                 ) -> tuple[Problem | None, str | None, tuple[str, list] | None, bool]:
    """(problem, note, new cache entry, whether it was decoded) for one file; an
    unchanged file that passed before (same size and mtime) is not decoded again."""
    key = str(Path(path).resolve())
    try:
        stat = Path(path).stat()
    except OSError:
        stat = None
    silent_note = f"signal {signal}: audio is silent ({path}); it is scored, but check it"
    entry = cache.get(key)
    if stat is not None and entry is not None and entry[:2] == [stat.st_size, stat.st_mtime_ns]:
        return None, silent_note if entry[2] else None, None, False
    try:
        audio, _ = _decode(path)
    except DataError as e:
        return Problem(signal, str(e), str(path)), None, None, True
    silent = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) < SILENCE_RMS
    new = (key, [stat.st_size, stat.st_mtime_ns, silent]) if stat is not None else None
    return None, silent_note if silent else None, new, True


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
    jobs = [(s, layout.audio_path(s, kind)) for s in signals for kind in input_kinds]
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
            [n for _, n, *_ in results if n is not None])


def validate_split(
    data_root: Path | DataRoot,
    split: str,
    *,
    challenge: str = "",
    input_kinds: tuple[str, ...] = ("signals",),
    sample_rate: int = SAMPLE_RATE,
    check_audio: bool = True,
    require_correctness: bool = False,
    target: str = "correctness",
    skip_invalid: bool = False,
    workers: int = 4,
    records_filter: Callable[[list[dict]], list[dict]] | None = None,
    check_cache: Path | None = None,
) -> SplitData:
    """Locate, read and check a split before any heavy work.

    Checks the metadata (required fields, signal IDs, duplicates, hearing-loss
    categories, ground-truth ranges), the listener-responses file when the
    split has one (CLIP2 ``train_responses.json``) and, when ``check_audio``,
    decodes the audio files of ``input_kinds``. All problems are collected.

    ``records_filter`` (e.g. a shard) picks, from the records whose metadata
    passed, the ones this run processes: only their audio is checked and
    only they are returned. ``check_cache`` (a JSON file) remembers audio
    checks of unchanged files so a rerun does not decode them again.
    ``sample_rate`` is accepted for symmetry with the readers; checks decode
    at each file's own rate. ``require_correctness`` requires the ``target``
    field ("correctness" or "phoneme_correctness") in every record.

    Raises:
        DataError: listing every problem, unless ``skip_invalid`` is set, in
            which case the invalid records are dropped and listed in
            ``SplitData.skipped``. Problems not tied to one record (an
            unreadable metadata file, a missing folder, a target the
            metadata lacks entirely) always raise.
    """
    layout = locate_split(data_root, split, challenge=challenge,
                          need_audio=check_audio and bool(input_kinds))
    records = load_metadata(layout.metadata_file)
    if not records:
        raise DataError(f"metadata file {layout.metadata_file} holds no records")
    if target not in TARGETS:
        raise DataError(f"target must be one of {TARGETS}, got {target!r}")
    if require_correctness and not any(target in r for r in records):
        raise DataError(
            f"missing {target!r} in every record of {layout.metadata_file}: "
            f"the ground truth (target {target!r}) needs it"
            + (" (only CLIP2 training metadata has it; use --target correctness)"
               if target == "phoneme_correctness" else ""))
    problems = check_records(records, require_correctness=require_correctness, target=target)
    notes: list[str] = []
    if layout.responses_file.is_file():
        responses = load_responses(layout.responses_file)
        problems += check_responses(responses, records, source=layout.responses_file.name)
    elif layout.challenge == "clip2" and split == "train":
        notes.append(f"no listener responses file {layout.responses_file}; responses not checked")
    bad = {p.signal for p in problems}
    selected = [r for i, r in enumerate(records) if record_name(i, r) not in bad]
    if records_filter is not None:
        selected = records_filter(selected)
    if check_audio and input_kinds:
        audio_problems, audio_notes = check_audio_files(
            layout, [r["signal"] for r in selected], input_kinds=input_kinds, workers=workers,
            check_cache=check_cache)
        problems += audio_problems
        notes += audio_notes
    for note in notes:
        logger.warning(note)
    if problems and not skip_invalid:
        listing = "\n  ".join(str(p) for p in problems)
        raise DataError(
            f"{len(problems)} problem(s) in split {split!r} ({layout.metadata_file}):\n  {listing}\n"
            "Fix them, or pass --skip-invalid to leave those records out."
        )
    bad = {p.signal for p in problems}
    kept = [r for r in selected if r["signal"] not in bad]
    for p in problems:
        logger.warning("skipping invalid record: %s", p)
    return SplitData(layout, kept, skipped=problems, notes=notes)


class CLIPDataset(Dataset):
    """One split's records with their audio, as torch tensors.

    Each item is a dict: ``signals`` (float32 tensor ``[2, T]``: the
    ``input_kind`` audio), ``length`` (T), ``record`` (the metadata dict),
    ``audiogram_levels`` (float32 ``[F]`` dB HL, when an audiogram table is
    given) and, when ``with_unprocessed``, ``unprocessed`` (``[2, T']``).
    Decoding and resampling happen here, so in DataLoader worker processes.
    """

    def __init__(self, layout: SplitLayout, records: list[dict], *,
                 input_kind: str = "signals", sample_rate: int = SAMPLE_RATE,
                 with_unprocessed: bool = False,
                 audiogram_levels: Mapping[str, Sequence[float]] | None = None,
                 audiogram_frequencies: Sequence[float] | None = None) -> None:
        if input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {input_kind!r}")
        self.layout = layout
        self.records = records
        self.input_kind = input_kind
        self.sample_rate = sample_rate
        self.with_unprocessed = with_unprocessed
        self.audiogram_levels = ({k: torch.tensor(list(v), dtype=torch.float32)
                                  for k, v in audiogram_levels.items()}
                                 if audiogram_levels is not None else None)
        self.audiogram_frequencies = (torch.tensor(list(audiogram_frequencies), dtype=torch.float32)
                                      if audiogram_frequencies is not None else None)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        path = self.layout.audio_path(record["signal"], self.input_kind)
        audio = torch.from_numpy(read_audio(path, self.sample_rate))
        item = {"signals": audio, "length": audio.shape[-1], "record": record}
        if self.audiogram_levels is not None:
            category = record.get("hearing_loss")
            if category not in self.audiogram_levels:
                raise DataError(f"signal {record['signal']}: no audiogram for hearing_loss "
                                f"{category!r}; the table has {sorted(self.audiogram_levels)}")
            item["audiogram_levels"] = self.audiogram_levels[category]
        if self.with_unprocessed:
            unproc = self.layout.audio_path(record["signal"], "unprocessed")
            item["unprocessed"] = torch.from_numpy(read_audio(unproc, self.sample_rate))
        return item


def _pad_stack(tensors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = [t.shape[-1] for t in tensors]
    # numpy: plain copies (torch's element-wise ops start thread pools, slow when cores are busy)
    out = np.zeros((len(tensors), 2, max(lengths)), dtype=np.float32)
    for i, t in enumerate(tensors):
        out[i, :, : lengths[i]] = t.numpy()
    return torch.from_numpy(out), torch.tensor(lengths, dtype=torch.long)


def collate_clip(items: list[dict], sample_rate: int = SAMPLE_RATE,
                 audiogram_frequencies: torch.Tensor | None = None) -> dict:
    """Batch items into one dict:

    - ``signals``: float32 ``[B, 2, T_max]``, each item zero-padded after its end;
    - ``lengths``: int64 ``[B]``, each item's own length in samples;
    - ``metadata``: the B metadata records;
    - ``sample_rate``: int;
    - ``audiogram_levels``: float32 ``[B, F]`` dB HL and ``audiogram_frequencies``
      float32 ``[F]`` Hz, when the items carry audiograms;
    - ``unprocessed`` / ``unprocessed_lengths`` when the items carry them.
    """
    signals, lengths = _pad_stack([it["signals"] for it in items])
    metadata = [it["record"] for it in items]
    batch = {"signals": signals, "lengths": lengths, "metadata": metadata,
             "sample_rate": sample_rate}
    if "audiogram_levels" in items[0]:
        batch["audiogram_levels"] = torch.stack([it["audiogram_levels"] for it in items])
        batch["audiogram_frequencies"] = audiogram_frequencies
    if "unprocessed" in items[0]:
        batch["unprocessed"], batch["unprocessed_lengths"] = _pad_stack(
            [it["unprocessed"] for it in items])
    return batch


def make_dataloader(dataset: CLIPDataset, *, batch_size: int = 4,
                    num_workers: int = 0) -> DataLoader:
    """A DataLoader over ``dataset`` in metadata order, batched by ``collate_clip``.

    ``num_workers`` processes decode and resample ahead of the consumer (0: in
    this process); at most two batches per worker are prefetched, so memory
    stays bounded.
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        prefetch_factor=2 if num_workers > 0 else None,
        collate_fn=functools.partial(collate_clip, sample_rate=dataset.sample_rate,
                                     audiogram_frequencies=dataset.audiogram_frequencies),
    )
