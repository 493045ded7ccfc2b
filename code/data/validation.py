"""Check a whole split before any heavy work: its layout, metadata, responses and audio."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import soundfile as sf

from code.config import TARGETS
from code.data.audio import check_audio_files
from code.data.layout import DataRoot, SplitData, SplitLayout, locate_split
from code.data.metadata import check_records, check_responses, load_metadata, load_responses, record_name
from code.errors import LISTED_PROBLEMS, DataError, Problem, problem_listing

logger = logging.getLogger(__name__)

# Shortest audio the pipeline can score: STOI works on 25.6 ms frames at 10 kHz after removing
# up to --stoi-max-lag-s of misalignment, and pystoi fails outright on fewer than one frame.
MIN_AUDIO_S = 0.1
# A signal this many times as long as its unprocessed reference (and a second or more longer)
# is warned about: STOI compares only their common length.
LONGER_THAN_REFERENCE = 1.5


def _length(path: Path) -> tuple[int, int] | None:
    """(frames, rate) from an audio file's header (nothing decoded); None when unreadable."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError):
        return None  # the decoding check names it
    return (info.frames, info.samplerate) if info.samplerate > 0 else None


def _too_short(path: Path, frames: int, rate: int, what: str = "audio") -> str:
    return (f"{what} {path} is too short to process: {frames} sample(s) ({frames / rate:.3f} s at "
            f"{rate} Hz); at least {MIN_AUDIO_S} s is needed")


def _length_check(layout: SplitLayout, signal: str, kind: str) -> tuple[Problem | None, str | None]:
    """A problem when a signal's audio, or the unprocessed reference Stage 2's STOI reads
    beside a signal, is too short to score; a note when a signal is far longer than its
    reference."""
    path = layout.audio_path(signal, kind)
    length = _length(path) if path.is_file() else None
    if length is None:
        return None, None
    if length[0] < MIN_AUDIO_S * length[1]:
        return Problem(signal, _too_short(path, *length), str(path)), None
    reference = layout.audio_path(signal, "unprocessed")
    ref = _length(reference) if kind == "signals" and reference.is_file() else None
    if ref is None:
        return None, None
    if ref[0] < MIN_AUDIO_S * ref[1]:
        return Problem(signal, _too_short(reference, *ref, "its unprocessed reference"), str(reference)), None
    seconds, ref_seconds = length[0] / length[1], ref[0] / ref[1]
    if seconds > LONGER_THAN_REFERENCE * ref_seconds and seconds - ref_seconds >= 1.0:
        return None, (f"signal {signal}: audio is {seconds:.1f} s long, its unprocessed reference "
                      f"{reference} {ref_seconds:.1f} s: STOI compares only the first "
                      f"{ref_seconds:.1f} s; check that they belong together")
    return None, None


def check_audio_lengths(layout: SplitLayout, signals: list[str], *, input_kinds: tuple[str, ...],
                        workers: int = 4) -> tuple[list[Problem], list[str]]:
    """(problems, notes) of ``_length_check`` for each signal's audio of ``input_kinds``,
    read from the files' headers."""
    jobs = [(s, kind) for s in signals for kind in input_kinds]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(lambda job: _length_check(layout, *job), jobs))
    return [p for p, _ in results if p is not None], [n for _, n in results if n is not None]


def check_references(layout: SplitLayout, signals: list[str], *, require: bool = False,
                     workers: int = 4, check_cache: Path | None = None) -> list[Problem]:
    """Problems of the unprocessed references Stage 2 reads beside ``signals``' audio: one
    that does not decode, or, with ``require``, is missing.

    Raises:
        DataError: with ``require``, when the split has no unprocessed audio at all.
    """
    paths = {s: layout.audio_path(s, "unprocessed") for s in signals}
    present = [s for s, p in paths.items() if p.is_file() or p.is_symlink()]
    if require and signals and not present:
        raise DataError(f"--haspi compares each signal with its unprocessed audio, and split "
                        f"{layout.split!r} has none (looked in {layout.audio_dir / 'unprocessed'}); "
                        "drop --haspi, or use a split with unprocessed audio")
    missing = [Problem(s, f"--haspi needs its unprocessed reference, which is missing: {paths[s]}",
                       str(paths[s])) for s in signals if s not in present] if require else []
    problems, _ = check_audio_files(layout, present, input_kinds=("unprocessed",), workers=workers,
                                    check_cache=check_cache)
    return missing + [Problem(p.signal, f"its unprocessed reference (Stage 2 compares with it): {p.reason}",
                              p.path) for p in problems]


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
    references: str = "",
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
    Unprocessed audio among ``input_kinds`` is what the model hears before the
    hearing-loss simulator: audio too quiet for the simulator is a problem
    (``code.data.levels``). ``references``: the unprocessed references Stage 2
    compares with (STOI, HASPI) are decoded too: ``"check"`` those present,
    ``"require"`` every record's (``--haspi``: a missing one is a problem; a split
    with none raises).

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
            check_cache=check_cache, simulated=("unprocessed",))
        problems += audio_problems
        notes += audio_notes
    if check_audio and references and "unprocessed" not in input_kinds:
        problems += check_references(layout, [r["signal"] for r in selected], require=references == "require",
                                     workers=workers, check_cache=check_cache)
    if check_audio and input_kinds:
        undecodable = {p.signal for p in problems}
        length_problems, length_notes = check_audio_lengths(
            layout, [r["signal"] for r in selected if r["signal"] not in undecodable],
            input_kinds=input_kinds, workers=workers)
        problems += length_problems
        notes += length_notes
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
