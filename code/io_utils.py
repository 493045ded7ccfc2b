"""Crash-safe file output: atomic writes and append-only JSONL (digests: ``code.keys``).

Every file the pipeline produces is either complete or absent. Whole files are
written to a temporary name in the same folder and renamed into place (an
atomic operation on POSIX file systems). Per-signal results are appended to
JSONL files one flushed line at a time; a line torn by a crash is dropped when
the file is read back.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import scipy.io.wavfile

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(path: Path, *, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched; an
    ``OSError`` that names no file (a full disk) is raised naming ``path``. ``durable``:
    flush the file and its folder to disk, so the rename survives a crash (without it, a
    crash may lose the file, never leave half of it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f"{path.suffix}.tmp", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if durable:
            _flush_to_disk(tmp)
        # mkstemp creates 0600; give the file what the umask gives a normal file (0644 under 022).
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
        if durable:
            _flush_to_disk(path.parent)
    except OSError as e:
        _raise_named(e, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _raise_named(error: OSError, path: Path):
    """Raise ``error``, naming ``path`` when it names no file."""
    if error.filename:
        raise error
    raise type(error)(error.errno, error.strerror, str(path)) from error


def current_umask() -> int:
    """The process's umask: from /proc on Linux (no change), else set and restored at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _flush_to_disk(path: Path) -> None:
    """fsync a file (its contents) or a folder (its entries), so a rename survives a crash."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return  # some file systems refuse to open folders; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass  # fsync of a folder is not supported everywhere
    finally:
        os.close(fd)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


def write_wav_atomic(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write ``audio`` (shape ``[channels, samples]``) as 32-bit float WAV.

    Float WAV keeps values above full scale, so nothing is clipped silently. The
    same samples always give the same bytes (libsndfile would add a PEAK chunk with
    a timestamp), so a recomputed identical output keeps its digest and Stage 2
    does not transcribe it again.
    """
    with atomic_path(path) as tmp:
        scipy.io.wavfile.write(tmp, sample_rate, np.ascontiguousarray(np.asarray(audio, dtype=np.float32).T))


def append_jsonl(path: Path, record: dict) -> None:
    """Append one record as a JSON line and flush it to disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True) + "\n"
    try:
        with path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        _raise_named(e, path)


def read_jsonl(path: Path) -> list[dict]:
    """Read a JSONL file, dropping (and logging) lines that do not parse.

    A process killed mid-write leaves at most one torn line at the end; any
    such line is skipped, so the records before it are kept.
    """
    path = Path(path)
    if not path.exists():
        return []
    records = []
    with path.open("r", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("%s:%d: dropping a torn or invalid line", path, lineno)
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def repair_jsonl(path: Path) -> None:
    """Rewrite ``path`` without torn lines, so later appends start on a fresh line."""
    path = Path(path)
    if not path.exists():
        return
    raw = path.read_bytes()
    if not raw or raw.endswith(b"\n"):
        return
    records = read_jsonl(path)
    write_text_atomic(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


@contextlib.contextmanager
def replaced_folder(target: Path) -> Iterator[Path]:
    """Yield a new empty folder beside ``target`` to build into; swap it in for ``target``
    only when the block completes.

    On an exception (or an interruption) the new folder is removed and ``target`` is left
    as it was. On success the old ``target`` is renamed aside, the new folder renamed into
    its place, then the old one removed: ``target`` is never missing except between two
    renames.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    try:
        os.chmod(new, 0o777 & ~current_umask())  # mkdtemp creates 0700
        yield new
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)
