"""The runs a comparison holds: each submission matched with its own split's labels (from
its provenance, or by its signal IDs for a bare CSV), one row of figures per run and split,
and each run paired with the baseline model's run of the same settings."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from code.config import SPLITS
from code.data.layout import resolve_data_root
from code.data.synthetic import labels_are_synthetic
from code.errors import DataError
from code.evaluation.comparison.compare import (
    covering_split,
    load_labels,
    metrics_by_category,
    overall_metrics,
    paired_difference,
)
from code.evaluation.comparison.metrics import read_submission
from code.keys import file_digest
from code.runs import command_for, setting_label

log = logging.getLogger(__name__)

SHOWN_SETTINGS = ("predictor", "fit_split", "data_set")  # settings the table has a column for


def metadata_files(data_root: Path, challenge: str = "") -> dict[str, Path]:
    """``{split: metadata file}`` of the data root (the folder holding ``cadenza_data/``,
    ``cadenza_data/`` itself, or CLIP2's ``cadenza_data/clip2/``).

    Raises:
        DataError: listing the paths looked for, when the root holds no CLIP metadata.
    """
    folder = resolve_data_root(Path(data_root), challenge).metadata_dir
    return {split: folder / f"{split}_metadata.json" for split in SPLITS}


def _labels_of(record: dict, cache: dict) -> tuple[dict | None, str]:
    """The labels of a run's own data set and split (from its provenance), or why there are none."""
    data = record["data_set"]
    path = Path(data.get("metadata_file", ""))
    config = record.get("config") if isinstance(record.get("config"), dict) else {}
    key = (str(path), record.get("target", "correctness"), bool(config.get("skip_invalid")))
    if key not in cache:
        if not path.is_file():
            cache[key] = (None, f"its data set's metadata {path} is gone")
        else:
            try:
                labels, _ = load_labels({record["split"]: path}, target=key[1], skip_invalid=key[2])
            except DataError as e:
                cache[key] = (None, str(e))
            else:
                note = ""
                if data.get("metadata_digest") and file_digest(path) != data["metadata_digest"]:
                    note = f"{path} changed since the run (scored against its labels now)"
                cache[key] = ((labels.get(record["split"]), note) if labels else
                              (None, f"{data.get('name')} ({record.get('challenge', '?').upper()}) "
                                     f"{record['split']} has no labels ({key[1]})"))
    return cache[key]


def row_settings(s) -> dict:
    """What sets a run apart, for the table and for pairing."""
    record = s.provenance
    if record is None:
        return {"model": s.name, "run": s.name, "data_set": "?", "challenge": "?", "input": "?",
                "predictor": "?", "fit": "?", "other": [], "tag": "", "match": ("bare",),
                "settings": {}, "synthetic": False}
    diffs = record.get("differs_from_defaults", {})
    config = record.get("config", {})
    other = ([f"tag={record['tag']}"] if record.get("tag") else []) + [
        setting_label(k, v) for k, v in diffs.items()
        if k not in ("predictor", "fit_split")]
    data = record["data_set"]
    match = (data.get("metadata_dir"), record.get("challenge"), record["split"], record.get("input"),
             record.get("tag"), json.dumps(diffs, sort_keys=True))
    return {"model": record["model"], "run": record["run"], "data_set": data.get("name", "?"),
            "challenge": record.get("challenge", "?"), "input": record.get("input", "?"),
            "predictor": config.get("predictor", "?"),
            "fit": "+".join(sorted(p.strip() for p in config.get("fit_split", "?").split(","))),
            "other": other, "tag": record.get("tag", ""), "match": match, "config": config,
            "settings": {**({"tag": record["tag"]} if record.get("tag") else {}),
                         **{k: v for k, v in diffs.items() if k not in SHOWN_SETTINGS}},
            "synthetic": labels_are_synthetic(data.get("metadata_dir"))}


def compare_all(submissions, labels, unlabelled=(), *, use_provenance: bool = True):
    """Rows of figures, one per run (or bare CSV) and split; submissions that cannot be
    scored, with why; broken ones. A run is scored against its own data set's split (its
    provenance); a bare CSV against the ``labels`` split holding most of its signals."""
    rows, seen, without_labels, broken, cache = [], {}, [], [], {}
    for s in submissions:
        if s.error:
            broken.append(s)
            continue
        if s.provenance is not None and use_provenance:
            truth, why = _labels_of(s.provenance, cache)
            split = s.provenance["split"]
            if truth is None:
                without_labels.append((s, why))
                continue
            if why:
                log.warning("%s: %s", s.path, why)
        else:
            split = covering_split(s.predictions, labels)
            if split is None:
                without_labels.append((s, f"no labels for its signals ({'split(s) ' + ', '.join(unlabelled) + ' have none' if unlabelled else 'no labelled split matches'})"))
                continue
            truth = labels[split]
        settings = row_settings(s) if use_provenance else row_settings(
            type(s)(s.path, s.name, s.predictions))
        key = (settings["match"], settings["run"], split)
        if key in seen:  # the same run twice (e.g. a copy elsewhere): keep the first
            log.info("%s: same run and split as %s; listed once", s.path, seen[key]["path"])
            continue
        figures = overall_metrics(s.predictions, truth)
        row = {"name": settings["run"], **settings, "split": split, "path": str(s.path), **figures,
               "per_hearing_loss": metrics_by_category(s.predictions, truth),
               "scale_warning": all(0.0 <= v <= 1.0 for v in s.predictions.values()),
               "predictions": s.predictions, "truth": truth}
        seen[key] = row
        rows.append(row)
    return rows, without_labels, broken


def paired(baseline: str, rows: list[dict], *, target: str = "correctness") -> tuple[list, list[str]]:
    """Each run paired with the ``baseline`` model's run that matches it in everything but
    the model (data set, split, input, tag and every other setting); bare CSVs with the bare
    baseline CSV of their split. Returns the differences and, for runs without such a
    baseline, a line saying so with the command that would make it."""
    if not baseline:
        return [], []
    if baseline.endswith(".csv") and Path(baseline).is_file():
        predictions = read_submission(Path(baseline))
        bases = [{"name": Path(baseline).name, "predictions": predictions, "path": baseline}]
        diffs = []
        for r in rows:
            if r["path"] != baseline and covering_split(predictions, {"x": r["truth"]}):
                d = paired_difference(r["predictions"], predictions, r["truth"],
                                      names=(f"{r['name']} ({r['split']})", bases[0]["name"]))
                if d is not None:
                    diffs.append(d)
        return diffs, []
    by_match = {(r["match"], r["split"]): r for r in rows if r["model"] == baseline}
    diffs, missing = [], []
    for r in rows:
        if r["model"] == baseline:
            continue
        base = by_match.get((r["match"], r["split"]))
        if base is None:
            if "config" in r:
                missing.append(f"{r['name']} ({r['split']}): no {baseline} run with the same settings "
                               f"to pair with; make it with: {command_for(r['config'], model=baseline)}")
            else:
                missing.append(f"{r['name']} ({r['split']}): no {baseline} CSV of the same split to pair with")
            continue
        d = paired_difference(r["predictions"], base["predictions"], r["truth"],
                              names=(f"{r['name']} ({r['split']})", base["name"]))
        if d is not None:
            diffs.append(d)
    return diffs, missing
