"""Load and check a CLIP split: metadata records and their stereo audio.

Layouts accepted under a data root (``<signal>`` files may be ``.flac`` or ``.wav``)::

    <root>/cadenza_data/metadata/{train,valid,eval}_metadata.json
    <root>/cadenza_data/<split>/signals/<signal>.flac
    <root>/cadenza_data/<split>/unprocessed/<signal>_unproc.flac

or the official recipe's variant with ``<root>/cadenza_data/audio/<split>/...``.

Audio is handled as float32 arrays of shape ``[2, samples]`` (left, right) at
``SAMPLE_RATE`` unless another rate is configured.
"""

from __future__ import annotations

import functools
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
from torch.utils.data import DataLoader, Dataset

logger = logging.getLogger(__name__)

SAMPLE_RATE = 44100
HEARING_LOSS_CATEGORIES = ("No Loss", "Mild", "Moderate")
SPLITS = ("train", "valid", "eval")
INPUT_KINDS = ("signals", "unprocessed")
REQUIRED_FIELDS = ("signal", "prompt", "hearing_loss")
AUDIO_EXTENSIONS = (".flac", ".wav")
SILENCE_RMS = 1e-5  # below this RMS (about -100 dBFS) a signal counts as silent


_RESAMPLE_NOTED: set[tuple[int, int]] = set()  # rate pairs already noted in the log


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
class SplitLayout:
    """Where one split's metadata and audio live."""

    split: str
    metadata_file: Path
    audio_dir: Path  # holds signals/ and unprocessed/

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


def locate_split(data_root: Path, split: str) -> SplitLayout:
    """Find a split's metadata file and audio folder under ``data_root``.

    Raises:
        DataError: when ``data_root`` is not a CLIP layout; the message lists
            the paths that were looked for.
    """
    if split not in SPLITS:
        raise DataError(f"split must be one of {SPLITS}, got {split!r}")
    data_root = Path(data_root)
    base = data_root / "cadenza_data"
    metadata_file = base / "metadata" / f"{split}_metadata.json"
    candidates = [base / split, base / "audio" / split]
    if not metadata_file.is_file():
        raise DataError(
            f"{data_root} is not a CLIP data root: no metadata file at {metadata_file} "
            f"(expected <root>/cadenza_data/metadata/{split}_metadata.json)"
        )
    for audio_dir in candidates:
        if audio_dir.is_dir():
            return SplitLayout(split, metadata_file, audio_dir)
    looked = " or ".join(str(c) for c in candidates)
    raise DataError(f"no audio folder for split {split!r}: looked for {looked}")


def load_metadata(path: Path) -> list[dict]:
    """Read a metadata JSON file: a list of record dicts.

    Raises:
        DataError: naming the file, when it is missing, not JSON or not a list of objects.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"metadata file not found: {path}")
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"metadata file {path} is not valid JSON: {e}") from e
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataError(f"metadata file {path} must hold a JSON list of records (objects)")
    return records


def record_name(index: int, record: dict) -> str:
    """How problems name a record: its signal ID, or its position when it has none."""
    signal = record.get("signal")
    return str(signal) if signal else f"record #{index}"


def check_records(records: list[dict], *, require_correctness: bool = False) -> list[Problem]:
    """Check metadata records; return every problem found (empty when all is well).

    ``correctness`` is checked wherever present (it must lie in 0..1) and is
    required only when ``require_correctness`` is set (ground truth, training).
    """
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for index, record in enumerate(records):
        signal = record.get("signal")
        name = record_name(index, record)
        for key in REQUIRED_FIELDS:
            if key not in record:
                problems.append(Problem(name, f"missing required field {key!r}"))
        if signal is not None and not isinstance(signal, str):
            problems.append(Problem(name, f"'signal' must be a string, got {signal!r}"))
        if isinstance(signal, str):
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
        if "correctness" in record or require_correctness:
            value = record.get("correctness")
            if value is None:
                problems.append(Problem(name, "missing 'correctness' (needed as ground truth)"))
            elif (not isinstance(value, (int, float)) or isinstance(value, bool)
                  or not np.isfinite(value) or not 0.0 <= value <= 1.0):
                problems.append(Problem(name, f"correctness {value!r} is not a number in 0..1"))
    return problems


def _fit_channels(data: np.ndarray, path: Path) -> np.ndarray:
    """Turn a ``[samples, channels]`` array into ``[2, samples]``."""
    channels = data.shape[1]
    if channels == 1:
        logger.warning("%s is mono: using it for both ears", path)
        return np.repeat(data.T, 2, axis=0)
    if channels != 2:
        raise DataError(f"{path} has {channels} channels; expected stereo (2) or mono (1)")
    return data.T


def read_audio(path: Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file as float32 ``[2, samples]`` at ``sample_rate``.

    A mono file is used for both ears (with a warning); another sample rate is
    resampled with soxr (noted in the log).

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
    if file_rate != sample_rate:
        if (file_rate, sample_rate) not in _RESAMPLE_NOTED:
            _RESAMPLE_NOTED.add((file_rate, sample_rate))
            logger.info("audio at %d Hz (e.g. %s) is resampled to %d Hz", file_rate, path, sample_rate)
        audio = soxr.resample(audio.T, file_rate, sample_rate, quality="HQ").T
    return np.ascontiguousarray(audio, dtype=np.float32)


def _check_audio(signal: str, path: Path, sample_rate: int) -> tuple[Problem | None, str | None]:
    try:
        audio = read_audio(path, sample_rate)
    except DataError as e:
        return Problem(signal, str(e), str(path)), None
    if float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) < SILENCE_RMS:
        return None, f"signal {signal}: audio is silent ({path}); it is scored, but check it"
    return None, None


def validate_split(
    data_root: Path,
    split: str,
    *,
    input_kinds: tuple[str, ...] = ("signals",),
    sample_rate: int = SAMPLE_RATE,
    check_audio: bool = True,
    require_correctness: bool = False,
    skip_invalid: bool = False,
    workers: int = 4,
) -> SplitData:
    """Locate, read and check a split before any heavy work.

    Checks the metadata (required fields, duplicate IDs, hearing-loss
    categories, correctness range) and, when ``check_audio``, decodes every
    audio file of ``input_kinds``. All problems are collected.

    Raises:
        DataError: listing every problem, unless ``skip_invalid`` is set, in
            which case the invalid records are dropped and listed in
            ``SplitData.skipped``. Problems not tied to one record (an
            unreadable metadata file, a missing folder) always raise.
    """
    layout = locate_split(data_root, split)
    records = load_metadata(layout.metadata_file)
    if not records:
        raise DataError(f"metadata file {layout.metadata_file} holds no records")
    problems = check_records(records, require_correctness=require_correctness)
    notes: list[str] = []
    if check_audio:
        jobs = [(str(r["signal"]), layout.audio_path(str(r["signal"]), kind))
                for r in records if isinstance(r.get("signal"), str) for kind in input_kinds]
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = list(pool.map(lambda job: _check_audio(*job, sample_rate), jobs))
        problems += [p for p, _ in results if p is not None]
        notes += [n for _, n in results if n is not None]
    for note in notes:
        logger.warning(note)
    if problems and not skip_invalid:
        listing = "\n  ".join(str(p) for p in problems)
        raise DataError(
            f"{len(problems)} problem(s) in split {split!r} ({layout.metadata_file}):\n  {listing}\n"
            "Fix them, or pass --skip-invalid to leave those records out."
        )
    bad = {p.signal for p in problems}
    kept = [r for i, r in enumerate(records) if record_name(i, r) not in bad]
    for p in problems:
        logger.warning("skipping invalid record: %s", p)
    return SplitData(layout, kept, skipped=problems, notes=notes)


class CLIPDataset(Dataset):
    """One split's records with their audio, as torch tensors.

    Each item is a dict: ``audio`` (float32 tensor ``[2, T]``), ``length`` (T),
    ``record`` (the metadata dict) and, when ``with_unprocessed``,
    ``unprocessed`` (``[2, T']``).
    """

    def __init__(self, layout: SplitLayout, records: list[dict], *,
                 input_kind: str = "signals", sample_rate: int = SAMPLE_RATE,
                 with_unprocessed: bool = False) -> None:
        if input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {input_kind!r}")
        self.layout = layout
        self.records = records
        self.input_kind = input_kind
        self.sample_rate = sample_rate
        self.with_unprocessed = with_unprocessed

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        path = self.layout.audio_path(record["signal"], self.input_kind)
        audio = torch.from_numpy(read_audio(path, self.sample_rate))
        item = {"audio": audio, "length": audio.shape[-1], "record": record}
        if self.with_unprocessed:
            unproc = self.layout.audio_path(record["signal"], "unprocessed")
            item["unprocessed"] = torch.from_numpy(read_audio(unproc, self.sample_rate))
        return item


def _pad_stack(tensors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([t.shape[-1] for t in tensors], dtype=torch.long)
    out = torch.zeros(len(tensors), 2, int(lengths.max()), dtype=torch.float32)
    for i, t in enumerate(tensors):
        out[i, :, : t.shape[-1]] = t
    return out, lengths


def collate_clip(items: list[dict], sample_rate: int = SAMPLE_RATE) -> dict:
    """Batch items: ``audio`` ``[B, 2, T_max]`` zero-padded, ``lengths`` ``[B]``,
    ``sample_rate``, ``records`` (list of dicts), and ``unprocessed`` /
    ``unprocessed_lengths`` when the items carry them."""
    audio, lengths = _pad_stack([it["audio"] for it in items])
    batch = {"audio": audio, "lengths": lengths, "sample_rate": sample_rate,
             "records": [it["record"] for it in items]}
    if "unprocessed" in items[0]:
        batch["unprocessed"], batch["unprocessed_lengths"] = _pad_stack(
            [it["unprocessed"] for it in items])
    return batch


def make_dataloader(dataset: CLIPDataset, *, batch_size: int = 8,
                    num_workers: int = 0) -> DataLoader:
    """A DataLoader over ``dataset`` in metadata order, batched by ``collate_clip``."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=functools.partial(collate_clip, sample_rate=dataset.sample_rate),
    )
