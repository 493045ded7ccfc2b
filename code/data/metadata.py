"""A split's metadata records and CLIP2 listener responses: reading and checking.

Ground truth (``correctness``, ``phoneme_correctness``) is 0..1.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from code.config import HEARING_LOSS_CATEGORIES, TARGETS
from code.errors import DataError, Problem, shown

REQUIRED_FIELDS = ("signal", "prompt", "hearing_loss")
# One listener response in <split>_responses.json (CLIP2): field -> kind of value.
RESPONSE_FIELDS = {"response_id": "id", "original_response": "text", "response": "text",
                   "hits": "count", "correctness": "fraction",
                   "phoneme_hits": "count", "phoneme_correctness": "fraction"}
LABEL_TOLERANCE = 1e-3  # metadata label vs mean of its listener responses
# A signal ID names files (<signal>_unproc.flac, results/<Model>/<signal>.wav); file names may
# hold 255 bytes on common file systems, so the ID gets this many (UTF-8), room for suffixes.
MAX_SIGNAL_BYTES = 200


def _load_json(path: Path, what: str) -> object:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{what} file {path} is not valid JSON: {e}") from e
    except RecursionError:
        raise DataError(f"{what} file {path} nests its JSON too deeply to read; expected "
                        + ("a list of flat records" if what == "metadata" else "flat objects")) from None


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
        return f"'signal' must be a string, got {shown(signal)}"
    if not signal.strip():
        return f"empty signal ID {shown(signal)}"
    if "/" in signal or "\\" in signal or signal in (".", ".."):
        return f"signal ID {shown(signal)} is not a plain file name"
    if not signal.isprintable():
        where = next(i for i, c in enumerate(signal) if not c.isprintable())
        return (f"signal ID {shown(signal)} holds a control character ({signal[where]!r} at position "
                f"{where}); it names files, so it must be printable characters only")
    if len(signal.encode("utf-8")) > MAX_SIGNAL_BYTES:
        return (f"signal ID {shown(signal)} is too long to name a file: "
                f"{len(signal.encode('utf-8'))} bytes, at most {MAX_SIGNAL_BYTES}")
    return None


def _prompt_problem(prompt: object) -> str | None:
    """Why a prompt cannot be scored (the words-correct score needs words), else None."""
    if not isinstance(prompt, str) or not prompt.strip():
        return "empty prompt"
    if not any(c.isalpha() for c in prompt):
        return f"prompt {shown(prompt)} has no words (no letters): nothing to score against"
    return None


def _field_problems(name: str, record: dict) -> list[Problem]:
    """Checks of the optional fields the predictors read: ``n_words`` (a positive
    integer, equal to the prompt's word count) and ``fma`` (the track: a name)."""
    problems = []
    if "n_words" in record:
        value = record["n_words"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(Problem(name, f"n_words {shown(value)} is not a positive integer"))
        elif isinstance(record.get("prompt"), str) and record["prompt"].strip() \
                and value != len(record["prompt"].split()):
            problems.append(Problem(name, f"n_words {value} differs from the {len(record['prompt'].split())} "
                                          f"words of its prompt {shown(record['prompt'])}"))
    if "fma" in record and (not isinstance(record["fma"], str) or not record["fma"].strip()):
        problems.append(Problem(name, f"fma (the track) {shown(record['fma'])} is not a non-empty string"))
    return problems


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
        if "prompt" in record and (reason := _prompt_problem(record["prompt"])):
            problems.append(Problem(name, reason))
        loss = record.get("hearing_loss")
        if "hearing_loss" in record and loss not in HEARING_LOSS_CATEGORIES:
            problems.append(Problem(
                name, f"unknown hearing_loss {shown(loss)}; expected one of {list(HEARING_LOSS_CATEGORIES)}"))
        problems += _field_problems(name, record)
        for key in TARGETS:
            if key in record or (require_correctness and key == target):
                value = record.get(key)
                if value is None:
                    problems.append(Problem(name, f"missing {key!r} (needed as ground truth)"))
                elif not _is_fraction(value):
                    problems.append(Problem(name, f"{key} {shown(value)} is not a number in 0..1"))
    return problems


def _response_problems(signal: str, responses: object, where: str) -> list[Problem]:
    if not isinstance(responses, list) or not responses:
        return [Problem(signal, f"responses in {where} must be a non-empty list, got {shown(responses)}")]
    problems: list[Problem] = []
    ids: set[str] = set()
    for i, response in enumerate(responses):
        label = f"response #{i} in {where}"
        if not isinstance(response, dict):
            problems.append(Problem(signal, f"{label} is not an object: {shown(response)}"))
            continue
        for key, kind in RESPONSE_FIELDS.items():
            if key not in response:
                problems.append(Problem(signal, f"{label} lacks {key!r}"))
                continue
            value = response[key]
            if kind == "id" and (not isinstance(value, str) or not value.strip()):
                problems.append(Problem(signal, f"{label}: response_id {shown(value)} is not a name"))
            elif kind == "id" and value in ids:
                problems.append(Problem(signal, f"{label}: duplicate response_id {shown(value)}"))
            elif kind == "text" and not isinstance(value, str):
                problems.append(Problem(signal, f"{label}: {key} {shown(value)} is not a string"))
            elif kind == "count" and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < 0):
                problems.append(Problem(signal, f"{label}: {key} {shown(value)} is not a count >= 0"))
            elif kind == "fraction" and not _is_fraction(value):
                problems.append(Problem(signal, f"{label}: {key} {shown(value)} is not a number in 0..1"))
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
