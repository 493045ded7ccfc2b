"""Checks of an output path given on the command line, made before any work: a page, a
figure or a JSON file is written only where it can be, and never over something else.

``check_output_file`` refuses a folder, a device or pipe (``/dev/null``), a file of another
kind (an existing CSV given to ``--json``) and a place that cannot be written (a read-only
file system, an immutable or forbidden folder), naming the option and the path.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from code.errors import DataError


def _probe(folder: Path, option: str, given: Path) -> None:
    """Write and remove a file in ``folder``'s nearest existing ancestor.

    Raises:
        OSError: naming the folder and the cause, when it cannot be written.
    """
    existing = Path(os.path.abspath(folder))
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise DataError(f"{option} {given}: {existing} is not a folder, so nothing can be written under it")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write_check.", dir=existing)
    except OSError as e:
        raise OSError(e.errno, f"{option}: cannot write in {existing}: {e.strerror}", str(existing)) from e
    os.close(fd)
    os.unlink(probe)


def check_output_file(path: Path, *, option: str, suffixes: tuple[str, ...]) -> None:
    """Refuse ``path`` as the file ``option`` writes unless it ends with one of ``suffixes``,
    is a regular file or absent, and its folder can be written.

    Raises:
        DataError: a folder, a device or pipe, or another kind of file (the user's input).
        OSError: a place that cannot be written (read-only, immutable or forbidden).
    """
    path = Path(path)
    expected = " or ".join(suffixes)
    if path.is_dir():
        raise DataError(f"{option} {path} is a folder; give a file name ending {expected}")
    if os.path.lexists(path) and not path.is_file():
        raise DataError(f"{option} {path} is not a regular file (a device, a pipe or a broken link); "
                        f"give a file name ending {expected}")
    if path.suffix.lower() not in suffixes:
        over = " (it would write over that file)" if path.exists() else ""
        raise DataError(f"{option} {path}: expected a file name ending {expected}, not "
                        f"{path.suffix or 'no suffix'}{over}")
    _probe(path.parent, option, path)


def check_output_folder(folder: Path, *, option: str) -> None:
    """Refuse ``folder`` as the folder ``option`` writes into unless it is a folder or
    absent, and it can be written.

    Raises:
        DataError: when it is an existing file (the user's input).
        OSError: a place that cannot be written.
    """
    folder = Path(folder)
    if os.path.lexists(folder) and not folder.is_dir():
        raise DataError(f"{option} {folder} exists and is not a folder; give a folder, or a file "
                        "name ending .html")
    _probe(folder, option, folder)


def environment_message(e: OSError) -> str:
    """One line for an output that could not be written: the path, the cause, the fix."""
    fix = {errno.EROFS: "give a path on a writable file system", errno.ENOSPC: "free some space there",
           errno.EACCES: "give a folder you may write to", errno.EPERM: "give a folder you may write to "
           "(it may be immutable: lsattr)"}.get(e.errno, "fix that and run again")
    where = f"{e.filename}: " if e.filename and str(e.filename) not in str(e.strerror) else ""
    return f"{where}{e.strerror or e}; {fix}"
