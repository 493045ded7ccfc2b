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
of the key matches, so stale seeds are recomputed, never used.
"""

from __future__ import annotations

import json
from pathlib import Path

from code.io_utils import atomic_path
from code.keys import file_digest, key_of

STORE_DIR = ".cache"  # under the results folder


class Store:
    """The content-addressed store under ``root`` (``<results>/.cache``), with
    optional read-only ``seeds`` (stores of the same layout) read after it."""

    def __init__(self, root: Path, seeds: tuple[Path, ...] = ()) -> None:
        self.root = Path(root)
        self.seeds = tuple(Path(s) for s in seeds)
        self._known: dict[tuple[str, str], dict] = {}  # values read or written in this process

    def _path(self, base: Path, kind: str, key: str) -> Path:
        return base / kind / key[:2] / f"{key}.json"

    def get(self, kind: str, key: str) -> dict | None:
        """The value stored under ``key``, or None (absent or unreadable)."""
        if (kind, key) in self._known:
            return self._known[(kind, key)]
        for base in (self.root, *self.seeds):
            try:
                value = json.loads(self._path(base, kind, key).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(value, dict):
                self._known[(kind, key)] = value
                return value
        return None

    def put(self, kind: str, key: str, value: dict) -> None:
        """Store ``value`` under ``key``: written to a temporary file, then renamed (not
        flushed to disk: a value lost to a crash is computed again)."""
        with atomic_path(self._path(self.root, kind, key), durable=False) as tmp:
            tmp.write_text(json.dumps(value, separators=(",", ":")), encoding="utf-8")
        self._known[(kind, key)] = value

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
        known = self.get("file-digest", key)
        if known is not None and isinstance(known.get("digest"), str):
            return known["digest"]
        digest = file_digest(path)
        self.put("file-digest", key, {"digest": digest})
        return digest


def results_store(results_dir: Path, seeds: tuple[Path, ...] = ()) -> Store:
    """The store every model, tag and data root under ``results_dir`` shares."""
    return Store(Path(results_dir) / STORE_DIR, seeds)
