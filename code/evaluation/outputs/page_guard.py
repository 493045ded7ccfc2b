"""What a shared page may show: the records every run predicted, and audio that lies
inside the data set's or the results folder.

A page is shared (``zip -r`` of its folder): it links to the data set's audio and the
runs' audio, and copies the data set's into ``<page>_files/``. So a file reached through a
symbolic link that points elsewhere (``leak01.flac -> /etc/passwd``) is neither linked nor
copied: ``shareable`` resolves every link and keeps only regular files inside the data
set's folder or a run's results folder. Records the runs left out (``--skip-invalid``) are
left out of the page too, and listed with the reason their run gave
(``skipped_<run>_<split>.json``).
"""

from __future__ import annotations

import html
import json
import logging
import os
from pathlib import Path

from code.errors import LISTED_PROBLEMS, shown
from code.keys import file_digest

logger = logging.getLogger(__name__)


def _skip_reasons(run) -> dict[str, str]:
    """``{signal: reason}`` from the run's ``skipped_<run>_<split>.json`` (empty without one)."""
    path = run.csv.with_name(f"skipped_{run.name}_{run.split}.json")
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(p.get("signal")): str(p.get("reason", "")) for p in items if isinstance(p, dict)} \
        if isinstance(items, list) else {}


def shown_records(runs: list, records: list[dict]) -> tuple[list[dict], list[tuple[str, str]]]:
    """The metadata records the page shows (those every run has a prediction for, with a
    text prompt and hearing-loss category) and ``(signal, why)`` for the others."""
    reasons: dict[str, str] = {}
    for run in runs:
        for signal, why in _skip_reasons(run).items():
            reasons.setdefault(signal, f"skipped by {run.name}: {why}")
    kept, left_out = [], []
    for r in records:
        signal = r.get("signal")
        missing = [run.name for run in runs if signal not in run.predictions]
        if not isinstance(signal, str):
            left_out.append((shown(signal), "no signal ID"))
        elif missing:
            left_out.append((signal, reasons.get(signal, f"no prediction in {', '.join(missing)}")))
        elif not isinstance(r.get("prompt"), str) or not isinstance(r.get("hearing_loss"), str):
            left_out.append((signal, "its metadata record has no text prompt or hearing_loss now"))
        else:
            kept.append(r)
    if left_out:
        logger.warning("html report: %d record(s) of the metadata left out of the page (e.g. %s: %s)",
                       len(left_out), *left_out[0])
    return kept, left_out


def share_roots(runs: list) -> list[Path]:
    """The folders whose files a page may link to: the data set's (the folder holding its
    metadata folder) and each run's results folder, links resolved."""
    roots = {Path(os.path.realpath(run.csv.parent)) for run in runs}
    folder = runs[0].provenance.get("data_set", {}).get("metadata_dir")
    if isinstance(folder, str) and folder:
        roots.add(Path(os.path.realpath(Path(folder).parent)))
    return sorted(roots)


def shareable(path: Path, roots: list[Path]) -> bool:
    """Whether ``path``, every link resolved, is a regular file inside one of ``roots``."""
    real = Path(os.path.realpath(path))
    return real.is_file() and any(root == real or root in real.parents for root in roots)


def metadata_changed(runs: list) -> list[str]:
    """A sentence per run whose data set's metadata differs from the one it was run with
    (the digest in its provenance): its scores used the old prompts."""
    notes = []
    for run in runs:
        data = run.provenance.get("data_set", {})
        path, digest = Path(str(data.get("metadata_file", ""))), data.get("metadata_digest")
        try:
            now = file_digest(path) if digest else None
        except OSError:
            now = None
        if now is not None and now != digest:
            notes.append(f"{run.name}: {path} changed since the run (digest {digest}, now {now})")
    if notes:
        logger.warning("html report: %s: the page marks words against the metadata as it is now",
                       "; ".join(notes))
    return notes


def notes_html(left_out: list[tuple[str, str]], refused: list[Path], changed: list[str],
               disagree: list[str] = ()) -> str:
    """The page's warnings for the records left out, the audio not linked, metadata edited
    after the runs and signals whose word marks differ from their scores; empty when there
    is none."""
    def listing(items: list[str]) -> str:
        more = f"<li>... and {len(items) - LISTED_PROBLEMS} more</li>" if len(items) > LISTED_PROBLEMS else ""
        return "<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in items[:LISTED_PROBLEMS]) + more + "</ul>"

    parts = []
    if changed or disagree:
        parts.append("<p class='warning' role='alert'><b>Metadata changed since the runs.</b> The "
                     "predictions and words-correct scores were made with the prompts of the run; "
                     "the words are marked here against the metadata as it is now, so marks and "
                     "scores may disagree. Remake the runs to mark them again.</p>"
                     + listing(changed + [f"{len(disagree)} signal(s) whose marks differ from their "
                                          f"scores: {', '.join(disagree[:20])}{' ...' if len(disagree) > 20 else ''}"]
                                 * bool(disagree)))
    if left_out:
        parts.append(f"<p class='warning'><b>{len(left_out)} record(s) left out</b> of the split's "
                     "metadata: no run has a prediction for them (e.g. skipped as invalid with "
                     "<code>--skip-invalid</code>).</p>" + listing([f"{s}: {why}" for s, why in left_out]))
    if refused:
        parts.append(f"<p class='warning'><b>{len(refused)} audio file(s) not linked:</b> each "
                     "resolves outside the data set's and the results folders (a symbolic link "
                     "pointing elsewhere, or no regular file), so the page neither links nor copies "
                     "it.</p>" + listing([str(p) for p in refused]))
    return "".join(parts)
