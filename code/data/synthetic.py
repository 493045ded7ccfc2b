"""Whether a data set's labels are made up: a property the data set declares.

A data set whose listener labels are synthetic (the shipped demos) holds a marker file,
``SYNTHETIC_LABELS.txt``, in its metadata folder; the demo builders write it. Every place
that prints figures measured against such labels (``main.py``'s "vs listeners" line,
``compute_csvs.py``'s table and figure, the listening page) asks ``labels_are_synthetic``,
so a copy of the demo in any folder, under any name, still says so; a real data set never
carries the file.
"""

from __future__ import annotations

from pathlib import Path

SYNTHETIC_MARKER = "SYNTHETIC_LABELS.txt"  # in <data set>/.../metadata/
MARKER_TEXT = ("The listener labels of this data set are SYNTHETIC: made up from how its audio was "
               "built, not heard by listeners. Figures measured on them prove the mechanics, never "
               "quality. (Tools read this file's presence; keep it with the metadata.)\n")
SYNTHETIC_NOTE = "SYNTHETIC labels: these figures prove the mechanics, never quality"


def labels_are_synthetic(metadata_dir: str | Path | None) -> bool:
    """True when ``metadata_dir`` (a data set's metadata folder) declares synthetic labels."""
    return bool(metadata_dir) and (Path(metadata_dir) / SYNTHETIC_MARKER).is_file()


def write_marker(metadata_dir: Path) -> Path:
    """Declare ``metadata_dir``'s labels synthetic (the demo builders call this)."""
    path = Path(metadata_dir) / SYNTHETIC_MARKER
    path.write_text(MARKER_TEXT, encoding="utf-8")
    return path
