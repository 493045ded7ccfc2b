"""One cache for Stage 2: every value named by the hash of everything that made it.

A value (a transcript, a words-correct score, STOI/eSTOI, an encoder embedding,
a file's digest) is stored as one small JSON file,
``<results>/.cache/<kind>/<ab>/<key>.json``, where ``key`` is the SHA-256 of

- the content of its inputs (audio files by their digest, never by path or signal ID),
- the settings that change it (ASR engine, model identity, compute type, audio route,
  sample rate, prompt, lag window, ...), and
- the code that computes it (``code.keys.code_digest``: the functions that compute it,
  the project code they call, and the versions of the packages they call).

So identical audio is transcribed once whatever its signal ID, model folder, tag or
data root; editing the STOI alignment recomputes STOI and nothing else; concurrent
shards share the store (each value is written to a temporary name and renamed, so a
reader never sees half a file; an unreadable entry is treated as missing and written
again). Nothing is ever pruned: delete ``results/.cache/`` to start afresh.

Read-only seed stores (e.g. a data set's shipped precomputed values, same layout)
are consulted after the results store; their entries are found only when every part
of the key matches, so stale seeds are recomputed, never used. A seed's value is also
checked (``seed_check``, e.g. each score within its range) before it is used: one that
fails is refused, logged, and so computed afresh; ``from_seed`` tells callers which values
came from a seed, so logs count them apart. File digests are never taken from a seed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from code.io_utils import atomic_path
from code.keys import file_digest, key_of

logger = logging.getLogger(__name__)

STORE_DIR = ".cache"  # under the results folder


class Store:
    """The content-addressed store under ``root`` (``<results>/.cache``), with
    optional read-only ``seeds`` (stores of the same layout) read after it; a seed's value
    is used only when ``seed_check(kind, value)`` finds no problem in it."""

    def __init__(self, root: Path, seeds: tuple[Path, ...] = (),
                 seed_check: Callable[[str, dict], str | None] | None = None) -> None:
        self.root = Path(root)
        self.seeds = tuple(Path(s) for s in seeds)
        self.seed_check = seed_check
        self._known: dict[tuple[str, str], dict] = {}  # values read or written in this process
        self._seeded: set[tuple[str, str]] = set()  # of those, the ones a seed gave
        self.refused: dict[str, int] = {}  # per kind: seed values refused by seed_check

    def _path(self, base: Path, kind: str, key: str) -> Path:
        return base / kind / key[:2] / f"{key}.json"

    def get(self, kind: str, key: str, *, seeds: bool = True) -> dict | None:
        """The value stored under ``key``, or None (absent, unreadable, or a seed's value
        refused by ``seed_check``); ``seeds=False`` reads the results store alone."""
        if (kind, key) in self._known:
            return self._known[(kind, key)]
        for base in (self.root, *(self.seeds if seeds else ())):
            try:
                value = json.loads(self._path(base, kind, key).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if not isinstance(value, dict):
                continue
            if base != self.root:
                problem = self.seed_check(kind, value) if self.seed_check else None
                if problem:
                    self._refuse(base, kind, key, problem)
                    continue
                self._seeded.add((kind, key))
            self._known[(kind, key)] = value
            return value
        return None

    def _refuse(self, base: Path, kind: str, key: str, problem: str) -> None:
        self.refused[kind] = self.refused.get(kind, 0) + 1
        log = logger.warning if self.refused[kind] == 1 else logger.debug
        log("the data set's store %s holds %r values that cannot be right (e.g. %s: %s); each such value is "
            "refused and computed afresh (--no-trust-shipped-store: use none of that store)",
            base, kind, self._path(base, kind, key).relative_to(base), problem)

    def from_seed(self, kind: str, key: str) -> bool:
        """Whether the value ``get`` gave for ``key`` came from a seed store."""
        return (kind, key) in self._seeded

    def put(self, kind: str, key: str, value: dict) -> None:
        """Store ``value`` under ``key``: written to a temporary file, then renamed (not
        flushed to disk: a value lost to a crash is computed again)."""
        with atomic_path(self._path(self.root, kind, key), durable=False) as tmp:
            tmp.write_text(json.dumps(value, separators=(",", ":")), encoding="utf-8")
        self._known[(kind, key)] = value
        self._seeded.discard((kind, key))

    def count(self, kind: str) -> int:
        """How many values of ``kind`` the results store holds (for logs and tests)."""
        folder = self.root / kind
        return sum(1 for _ in folder.glob("*/*.json")) if folder.is_dir() else 0

    def digest(self, path: Path) -> str:
        """``file_digest(path)``, remembered in the store by (resolved path, size,
        modification time), so an unchanged file is read once."""
        path = Path(path).resolve()
        stat = path.stat()
        key = key_of("file-digest", path=str(path), size=stat.st_size, mtime_ns=stat.st_mtime_ns)
        known = self.get("file-digest", key, seeds=False)
        if known is not None and isinstance(known.get("digest"), str):
            return known["digest"]
        digest = file_digest(path)
        self.put("file-digest", key, {"digest": digest})
        return digest


def results_store(results_dir: Path, seeds: tuple[Path, ...] = (),
                  seed_check: Callable[[str, dict], str | None] | None = None) -> Store:
    """The store every model, tag and data root under ``results_dir`` shares."""
    return Store(Path(results_dir) / STORE_DIR, seeds, seed_check)
