"""The hearing-aid report of a ``--models`` run: each model's predicted intelligibility and,
with ``--input unprocessed``, its music quality (HAAQI of its output against the unprocessed
audio, ``code.evaluation.quality.aid_quality``), each against ``--baseline``, and the
combined score with ``--alpha``."""

from __future__ import annotations

import logging
from pathlib import Path

from code.data.layout import SplitData, resolve_data_root
from code.data.synthetic import SYNTHETIC_NOTE, labels_are_synthetic
from code.enhancement_plan import model_output_path
from code.evaluation.features.extract import stage2_store
from code.evaluation.outputs.report import change_text, report_rows, write_report
from code.evaluation.outputs.report_names import report_labels
from code.evaluation.quality.aid_quality import QualityItem, aid_quality
from code.runs import run_suffix

logger = logging.getLogger(__name__)


def model_quality(cfg, split: SplitData, audiograms: dict, out_dir: Path, model: str, *,
                  recompute: bool) -> dict[str, float]:
    """``{signal: HAAQI 0..1}`` (mean of the ears; NaN where undefined) of one model's outputs
    in ``out_dir``, kept in the results folder's store (shards share the values)."""
    items = [QualityItem(r["signal"], model_output_path(out_dir, r["signal"]),
                         split.layout.audio_path(r["signal"], "unprocessed"), audiograms[r["hearing_loss"]])
             for r in split.records]
    store = stage2_store(Path(cfg.results_dir), split, trust_shipped=cfg.trust_shipped_store)
    values = aid_quality(items, store=store, sample_rate=cfg.sample_rate,
                         recompute=recompute, desc=f"Stage 2: {model} HAAQI", jobs=cfg.jobs)
    return {signal: v["haaqi"] for signal, v in values.items()}


def report_name(cfg) -> str:
    """``hearing_aid_report_<split>_<input>[_<tag>][_<run suffix>][_<report settings>]``: the
    report's settings (baseline, quality, alpha) enter the name when not the defaults, so
    two reports of one run never share a file."""
    suffix = run_suffix(cfg)
    labels = report_labels(cfg)
    return "_".join([f"hearing_aid_report_{cfg.split}_{cfg.input}", *([cfg.tag] if cfg.tag else []),
                     *([suffix] if suffix else []), *labels])


def write_hearing_aid_report(cfg, predictions: dict[str, dict[str, float]], records: list[dict],
                             quality: dict[str, dict[str, float]] | None = None) -> None:
    """``results/<report_name>.csv`` and ``.png`` (and, with quality, ``_tradeoff.png``):
    models by hearing loss, with each model's paired change against ``cfg.baseline`` (95%
    bootstrap interval over prompts); the log gives the same figures."""
    baseline = cfg.baseline
    rows = report_rows(predictions, records, baseline=baseline, quality=quality, alpha=cfg.alpha)
    base = Path(cfg.results_dir) / report_name(cfg)
    chain = ("unprocessed -> model -> hearing-loss simulation -> Whisper" if cfg.input == "unprocessed"
             else "signals -> model -> Whisper")
    tradeoff = base.with_name(base.name + "_tradeoff.png") if quality else None
    # with_name, not with_suffix: a name may hold a dot (alpha0.3)
    synthetic = labels_are_synthetic(resolve_data_root(Path(cfg.data_root), cfg.challenge).metadata_dir)
    title = f"{cfg.split}: {chain}" + (f"\n{SYNTHETIC_NOTE}" if synthetic else "")
    write_report(rows, base.with_name(base.name + ".csv"), base.with_name(base.name + ".png"),
                 title, tradeoff_path=tradeoff)
    if baseline not in predictions:
        logger.warning("report: no change against %r: it is not among --models %s (add it, e.g. "
                       "--models %s)", baseline, ",".join(predictions), ",".join([baseline, *predictions]))
    for row in rows:
        if row["model"] != baseline and row["baseline"]:
            logger.info("report: %s %-8s n=%d mean %.1f [%.1f, %.1f]; change vs %s %s (95%% CI, "
                        "prompts resampled)", row["model"], row["hearing_loss"], row["n"],
                        row["mean_intelligibility"], row["ci95_low"], row["ci95_high"], baseline,
                        change_text(row))
        if quality:
            logger.info("report: %s %-8s HAAQI (0..1) n=%d mean %.3f [%.3f, %.3f]%s", row["model"],
                        row["hearing_loss"], row["haaqi_n"], row["mean_haaqi"], row["haaqi_ci95_low"],
                        row["haaqi_ci95_high"], _quality_change(row, baseline))
    logger.info("wrote %s.csv and %s.png%s", base, base, f" and {tradeoff}" if tradeoff else "")


def _quality_change(row: dict, baseline: str) -> str:
    if row["model"] == baseline or not row["baseline"]:
        return f"; combined (alpha {row['alpha']:g}) {row['combined']:.3f}"
    return (f"; change vs {baseline} {change_text(row, 'haaqi_change', 3)}; combined (alpha "
            f"{row['alpha']:g}) {row['combined']:.3f}, change {change_text(row, 'combined_change', 3)}")
