"""Write a run's predictions: the submission CSVs, the config and fitted predictor beside
them, the organisers' file names with ``--team-id``, and figures when labels exist."""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import numpy as np

from code.data.layout import SplitData
from code.data.metadata import target_0_1
from code.data.synthetic import SYNTHETIC_NOTE, labels_are_synthetic
from code.evaluation.comparison.metrics import clip_metrics
from code.io_utils import write_json_atomic, write_text_atomic
from code.models.hearing_aid_models import trained_weights_used
from code.runs import PROVENANCE_SUFFIX, provenance

logger = logging.getLogger(__name__)

OFFICIAL_PREFIX = {"clip1": "ICASSP2026", "clip2": "ICASSP2027"}
OFFICIAL_HEADER = ("signal_id", "intelligibility_score")  # as both submission pages give it
# The recipe's header (pyclarity's CLIP1 baseline predict.py writes signal_ID): what
# submission_*.csv carries, so files from the recipe and from here read alike.
SUBMISSION_HEADER = ("signal_ID", "intelligibility_score")


def official_names(challenge: str, split: str, team_id: str) -> tuple[str, str]:
    """The organisers' file name (with header) and the headerless leaderboard copy's name."""
    name = f"{OFFICIAL_PREFIX[challenge]}_{split}_{team_id}"
    return f"{name}.csv", f"{name}_leaderboard.csv"


def _csv(rows: list[tuple[str, str]], header: tuple[str, str] | None) -> str:
    """The one CSV writer of predictions: ``header`` (or none, for upload copies), then rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def prediction_rows(predictions: dict[str, float], records: list[dict]) -> list[tuple[str, str]]:
    """One ``(signal, score)`` row per record, in metadata order, scores 0..100 as text.

    Raises:
        ValueError: when a record lacks a prediction or a score is not finite in 0..100.
    """
    rows = []
    for record in records:
        value = predictions.get(record["signal"])
        if value is None or not np.isfinite(value) or not 0.0 <= value <= 100.0:
            raise ValueError(f"signal {record['signal']}: prediction {value!r} is not in 0..100")
        rows.append((record["signal"], f"{value:.6f}"))
    return rows


def write_submission(predictions: dict[str, float], records: list[dict], results_dir: Path,
                     tag: str, split: str) -> tuple[Path, Path]:
    """Write ``submission_<tag>_<split>.csv`` (``SUBMISSION_HEADER``) and
    ``evalai_<tag>_<split>.csv`` (no header), atomically.

    Raises:
        ValueError: when a record lacks a prediction or a score is not finite in 0..100.
    """
    rows = prediction_rows(predictions, records)
    paths = (Path(results_dir) / f"submission_{tag}_{split}.csv",
             Path(results_dir) / f"evalai_{tag}_{split}.csv")
    for path, header in zip(paths, (SUBMISSION_HEADER, None)):
        write_text_atomic(path, _csv(rows, header))
    return paths


def write_outputs(cfg, split: SplitData, predictions: dict[str, float], tag: str, *,
                  predictor=None, model: str | None = None) -> list[Path]:
    """``submission_<tag>_<split>.csv`` + ``evalai_`` copy, the provenance (``.run.json``:
    config, data set, code version, and the trained weights a model loaded) and the fitted
    predictor beside them, the skipped list, and (``cfg.team_id``) the official files. ``tag`` is the
    run's name (``code.runs.run_name``); ``model`` the hearing-aid model (default ``cfg.model``)."""
    results = Path(cfg.results_dir)
    csv_path, evalai_path = write_submission(predictions, split.records, results, tag, cfg.split)
    stem = csv_path.with_suffix("")
    record = provenance(cfg, model or cfg.model, split.layout.metadata_file)
    weights = trained_weights_used(results, model or cfg.model, tag=cfg.tag)
    if weights is not None:
        record["trained_weights"] = weights
    write_json_atomic(Path(f"{stem}{PROVENANCE_SUFFIX}"), record)
    written = [csv_path, evalai_path, Path(f"{stem}{PROVENANCE_SUFFIX}")]
    if predictor is not None:
        written += predictor.save(Path(f"{stem}.predictor"))
    if split.skipped:
        skipped = results / f"skipped_{tag}_{cfg.split}.json"
        write_json_atomic(skipped, [p.to_dict() for p in split.skipped])
        logger.warning("the submission LACKS %d invalid record(s); list with reasons: %s",
                       len({p.signal for p in split.skipped}), skipped)
    logger.info("wrote %s and %s (%d rows)", csv_path, evalai_path, len(split.records))
    if cfg.team_id:
        rows = prediction_rows(predictions, split.records)
        named, board = official_names(cfg.challenge or "clip1", cfg.split, cfg.team_id)
        write_text_atomic(results / named, _csv(rows, OFFICIAL_HEADER))
        write_text_atomic(results / board, _csv(rows, None))
        write_json_atomic(results / Path(named).with_suffix(PROVENANCE_SUFFIX).name, record)
        lacking = " (it LACKS the skipped records: the organisers expect every signal)" if split.skipped else ""
        logger.info("to send: %s (submission page, header %s) and %s (leaderboard upload, no "
                    "header)%s", results / named, ",".join(OFFICIAL_HEADER), results / board, lacking)
        written += [results / named, results / board]
    return written


def log_metrics(cfg, split: SplitData, predictions: dict[str, float], fits) -> dict | None:
    """Log RMSE/NCC/KT against the predicted split's labels, when it has them."""
    labelled = [r for r in split.records if cfg.target in r]
    if not labelled:
        return None
    p = np.array([predictions[r["signal"]] for r in labelled])
    y = np.array([100.0 * target_0_1(r, cfg.target) for r in labelled])
    figures = clip_metrics(p, y)
    fitted = {r["signal"] for r in fits.records}
    prompts = {r["prompt"] for r in fits.records}
    inside = sum(1 for r in labelled if r["signal"] in fitted or r["prompt"] in prompts)
    how = (f"{inside} of them out-of-fold ({cfg.folds} folds grouped by track, or by prompt where the "
           "metadata names no track, as logged above: no prediction saw its own label, prompt or track)"
           if inside else f"fitted on {cfg.fit_split} only")
    synthetic = (f" ({SYNTHETIC_NOTE})" if labels_are_synthetic(split.layout.metadata_file.parent)
                 else "")
    logger.info("%s vs listeners (%s, %d labelled records; %s): RMSE %.2f, NCC %.3f, KT %.3f%s",
                cfg.split, cfg.target, len(labelled), how, figures["RMSE"], figures["NCC"],
                figures["KT"], synthetic)
    return figures
