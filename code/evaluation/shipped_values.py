"""What a value read from a data set's shipped store must look like to be used.

A data set may ship precomputed Stage-2 values (``<cadenza_data>/stage2_store/``, the layout of
``code/evaluation/cache.py``). Its keys say which audio, settings and code a value claims to
come from, so a stale value is never found; but a value written by hand under the right key
would be. So every value read from there is checked here first: its shape, and each number
within the range its measure can take. A value that fails is refused (and computed afresh);
what cannot be checked (the words of a transcript) is why ``--no-trust-shipped-store`` exists.
"""

from __future__ import annotations

import math

Ranges = dict[str, tuple[float, float]]  # the range of each measure, by the first part of its column name

# The report's music quality (``haaqi.left``: haaqi); each Stage-2 pair feature declares its own
# ranges in ``code/evaluation/features/registry.py``, passed in as ``pair_ranges``.
QUALITY_RANGES: dict[str, Ranges] = {"haaqi": {"haaqi": (0.0, 1.0)}}
CONFIDENCE_RANGES = {"avg_logprob": (-math.inf, 0.0), "no_speech_prob": (0.0, 1.0)}
UNIT = (0.0, 1.0)  # a words-correct score
EARS = 2


def _number_problem(name: str, value: object, bounds: tuple[float, float], *, nullable: bool) -> str | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return f"{name} is {value!r}, not a number"
    if not bounds[0] <= value <= bounds[1]:
        return f"{name} {value!r} is outside {bounds[0]:g}..{bounds[1]:g}"
    return None


def _features_problem(value: dict, ranges: Ranges) -> str | None:
    features = value.get("features")
    if not isinstance(features, dict) or not features:
        return "no 'features' object"
    for name, number in features.items():
        bounds = ranges.get(str(name).split(".")[0])
        if bounds is None:
            return f"unknown measure {name!r} (known: {sorted(ranges)})"
        problem = _number_problem(name, number, bounds, nullable=True)  # null: undefined (e.g. silence)
        if problem:
            return problem
    return None


def _transcript_problem(value: dict) -> str | None:
    ears = value.get("ears")
    if not isinstance(ears, list) or len(ears) != EARS or not all(isinstance(e, dict) for e in ears):
        return f"'ears' is not a list of {EARS} transcripts"
    for ear in ears:
        if not isinstance(ear.get("text"), str):
            return f"a transcript's text is {ear.get('text')!r}, not text"
        for name, bounds in CONFIDENCE_RANGES.items():
            problem = _number_problem(name, ear.get(name), bounds, nullable=True)
            if problem:
                return problem
    return None


def _score_problem(value: dict) -> str | None:
    scores = value.get("ear_correctness")
    if not isinstance(scores, list) or len(scores) != EARS:
        return f"'ear_correctness' is not a list of {EARS} scores"
    for score in scores:
        problem = _number_problem("words correct", score, UNIT, nullable=False)
        if problem:
            return problem
    return None


def _embedding_problem(value: dict) -> str | None:
    dim = value.get("dim")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        return f"'dim' is {dim!r}, not a positive width"
    if not all(isinstance(value.get(ear), str) for ear in ("left", "right")):
        return "an ear's vector is missing"
    return None


CHECKS = {"transcript": _transcript_problem, "score": _score_problem, "embedding": _embedding_problem}


def shipped_value_problem(kind: str, value: dict, pair_ranges: dict[str, Ranges] | None = None) -> str | None:
    """Why ``value`` (of ``kind``, read from a shipped store) cannot be used, or None.
    ``pair_ranges``: ``{store kind: ranges}`` of the pair values (the Stage-2 pair features'
    declared ranges; the report's HAAQI is always known). Kinds without a check (a file's
    digest, say) are never taken from a shipped store."""
    ranges = {**QUALITY_RANGES, **(pair_ranges or {})}.get(kind)
    if ranges is not None:
        return _features_problem(value, ranges)
    check = CHECKS.get(kind)
    if check is None:
        return f"{kind!r} values are not taken from a data set's store"
    return check(value)
