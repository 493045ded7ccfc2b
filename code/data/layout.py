"""Where a CLIP data set's files are: the data root, the challenge, each split's
metadata file and audio folder.

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
(``resolve_data_root``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from code.config import CHALLENGES, INPUT_KINDS, SPLITS
from code.errors import DataError, Problem

logger = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".flac", ".wav")

_ROOTS_NOTED: set[tuple[Path, str]] = set()  # resolved data roots already logged


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
