"""Values computed from a pair of audio files (an output and its reference), kept in the store.

STOI/eSTOI and HASPI (Stage-2 features) and HAAQI (the report's music quality) all compare
a file with its unprocessed reference. ``pair_values`` reads each pair's values from the
store or computes them: keyed by both files' content, the rate, the code, the run's
``settings`` and each item's own ``parts`` (e.g. its audiogram); identical pairs are computed
once; NaN (a value that is undefined) is stored as null and read back as NaN. With ``jobs``
the values are computed by worker processes (``code.evaluation.pair_workers``) and each is
stored as soon as it arrives.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from code.evaluation.pair_workers import pair_results
from code.keys import key_of

logger = logging.getLogger(__name__)

PairItem = tuple[str, Path, Path, dict]  # (signal, audio, reference, the item's own key parts)


def pair_values(kind: str, label: str, items: list[PairItem], *, store, sample_rate: int,
                recompute: bool, code: str, settings: dict,
                compute: Callable[..., dict[str, float]], jobs: int = 1) -> dict[str, dict[str, float]]:
    """``{signal: compute(audio, reference, sample_rate, **parts)}`` for each item, both files
    read at ``sample_rate``; logged as ``label`` with a tqdm bar for what is computed, by
    ``jobs`` processes (0: every available core; more than 1: ``compute`` must be picklable)."""
    out: dict[str, dict[str, float]] = {}
    todo: dict[str, list] = {}  # key -> [(paths, parts), signals with that pair and parts]
    shipped = 0  # of the reused: read from the data set's store
    for signal, path, reference, parts in items:
        key = key_of(kind, audio=store.digest(path), reference=store.digest(reference),
                     sample_rate=sample_rate, code=code, **settings, **parts)
        cached = None if recompute or key in todo else store.get(kind, key)
        if cached is not None and isinstance(cached.get("features"), dict):
            out[signal] = {k: math.nan if v is None else float(v) for k, v in cached["features"].items()}
            shipped += store.from_seed(kind, key)
        else:
            todo.setdefault(key, [(path, reference, parts), []])[1].append(signal)
    if items:
        logger.info("%s: %d signal(s) to compute, %d reused%s", label, len(todo), len(out),
                    f" ({shipped} from the data set's store)" if shipped else "")
    keys, computed = list(todo), {}
    for index, values in tqdm(pair_results([todo[key][0] for key in keys], compute, sample_rate, jobs=jobs),
                              total=len(keys), desc=label, unit="signal", disable=not todo):
        store.put(kind, keys[index], {"features": {k: None if math.isnan(v) else v for k, v in values.items()}})
        computed[index] = values
    for index, key in enumerate(keys):  # in the items' order, whatever order they finished in
        for signal in todo[key][1]:
            out[signal] = computed[index]
    return out
