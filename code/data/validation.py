"""Check a whole split before any heavy work: its layout, metadata, responses and audio."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from code.config import TARGETS
from code.data.audio import check_audio_files
from code.data.layout import DataRoot, SplitData, locate_split
from code.data.metadata import check_records, check_responses, load_metadata, load_responses, record_name
from code.errors import LISTED_PROBLEMS, DataError, problem_listing

logger = logging.getLogger(__name__)


def validate_split(
    data_root: Path | DataRoot,
    split: str,
    *,
    challenge: str = "",
    input_kinds: tuple[str, ...] = ("signals",),
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
    Checks decode at each file's own rate (resampling cannot make a valid file
    invalid). ``require_correctness`` requires the ``target``
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
    for note in notes[:LISTED_PROBLEMS]:
        logger.warning(note)
    if len(notes) > LISTED_PROBLEMS:
        logger.warning("... and %d more such warning(s)", len(notes) - LISTED_PROBLEMS)
    if problems and not skip_invalid:
        listing = problem_listing(problems)
        raise DataError(
            f"{len(problems)} problem(s) in split {split!r} ({layout.metadata_file}):\n  {listing}\n"
            "Fix them, or pass --skip-invalid to leave those records out."
        )
    bad = {p.signal for p in problems}
    kept = [r for r in selected if r["signal"] not in bad]
    for p in problems[:LISTED_PROBLEMS]:
        logger.warning("skipping invalid record: %s", p)
    if len(problems) > LISTED_PROBLEMS:
        logger.warning("... and %d more invalid record(s) skipped (all are listed in the run's "
                       "skipped_*.json beside its submission)", len(problems) - LISTED_PROBLEMS)
    return SplitData(layout, kept, skipped=problems, notes=notes)
