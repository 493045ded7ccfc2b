"""The experiment as plain steps: check the data, Stage 1, Stage 2, predict, write.

``run(cfg)`` takes the ``ExperimentConfig`` of ``main.py`` (any object with
its fields) and does what it says; everything here is callable from tests.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from pathlib import Path

from code import hearing_loss
from code.data_loading import (
    CHALLENGES,
    INPUT_KINDS,
    SPLITS,
    TARGETS,
    DataError,
    SplitData,
    resolve_data_root,
    validate_split,
)
from code.enhancement import check_outputs_current, enhance_split, output_dir, scored_path
from code.evaluation.asr import ENGINES, ASRSettings
from code.evaluation.fit_set import FitSet, fit_records, fit_set, labelled
from code.evaluation.evaluation_helper import asr_label, split_features
from code.evaluation.features import FeatureTable, read_feature_files
from code.evaluation.predictors import PREDICTORS, fit_predict
from code.evaluation.report import report_rows, write_report
from code.io_utils import write_json_atomic
from code.evaluation.submission import log_metrics, write_outputs
from code.models.hearing_aid_models import DEFAULT_AUDIOGRAMS, MODELS, audiogram_from_levels

logger = logging.getLogger(__name__)

RECOMPUTE = ("none", "1", "2", "all")
SIMULATOR_CHOICES = tuple(getattr(hearing_loss, "SIMULATORS", ("fast", "reference")))


def model_names(cfg) -> list[str]:
    return [m.strip() for m in cfg.models.split(",") if m.strip()] or [cfg.model]


def stages(cfg) -> set[str]:
    """The stages ``--stages`` asks for, e.g. ``"1,2"`` -> {"1", "2"}."""
    return set(cfg.stages.replace(" ", "").split(","))


def fit_splits(cfg) -> list[str]:
    """The labelled splits ``--fit-split`` names, e.g. ``"train,valid"``."""
    return [s.strip() for s in cfg.fit_split.split(",") if s.strip()]


def asr_models(cfg) -> list[str]:
    return [m.strip() for m in cfg.asr_models.split(",") if m.strip()] or [cfg.asr_model]


def parse_shard(shard: str) -> tuple[int, int] | None:
    """``"K/N"`` -> (K, N), 1 <= K <= N; ``""`` -> None."""
    if not shard:
        return None
    try:
        k, n = (int(x) for x in shard.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like K/N (e.g. 3/10), got {shard!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"--shard K/N needs 1 <= K <= N, got {shard!r}")
    return k, n


def did_you_mean(value: str, choices) -> str:
    """``"; did you mean 'X'?"`` for the closest choice (case-insensitive), else ``""``."""
    by_lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(value.lower(), list(by_lower), n=1, cutoff=0.5)
    return f"; did you mean {by_lower[close[0]]!r}?" if close else ""


def _one_of(option: str, value: str, choices) -> str | None:
    if value in choices:
        return None
    return f"{option} must be one of {list(choices)}, got {value!r}{did_you_mean(value, choices)}"


def check_config(cfg) -> str | None:
    """A one-line reason when the config cannot work, before any heavy work."""
    for option, value, choices in (
            ("--split", cfg.split, SPLITS), ("--input", cfg.input, INPUT_KINDS),
            ("--asr-engine", cfg.asr_engine, ENGINES), ("--recompute", cfg.recompute, RECOMPUTE),
            ("--msbg", cfg.msbg, SIMULATOR_CHOICES), ("--target", cfg.target, TARGETS),
            ("--predictor", cfg.predictor, PREDICTORS)):
        problem = _one_of(option, value, choices)
        if problem:
            return problem
    if cfg.challenge and cfg.challenge not in CHALLENGES:
        return _one_of("--challenge", cfg.challenge, CHALLENGES)
    for name in model_names(cfg):
        if name not in MODELS:
            return (f"unknown model {name!r}{did_you_mean(name, MODELS)} "
                    f"Registered models: {sorted(MODELS)}")
    for split in fit_splits(cfg) or [""]:
        problem = _one_of("--fit-split", split, SPLITS)
        if problem:
            return problem
    if not stages(cfg) <= {"1", "2"} or not stages(cfg):
        return f"--stages must be 1, 2 or 1,2; got {cfg.stages!r}"
    for category in cfg.audiograms:
        if category not in DEFAULT_AUDIOGRAMS:
            return f"audiograms: unknown category {category!r}; expected {list(DEFAULT_AUDIOGRAMS)}"
    if cfg.folds < 2:
        return f"--folds must be at least 2 (out-of-fold predictions need 2 or more folds), got {cfg.folds}"
    if cfg.scores and cfg.shard:
        return "--scores and --shard do not go together (--scores needs no audio work)"
    if cfg.input == "unprocessed" and cfg.sample_rate != 44100:
        return "--input unprocessed runs the hearing-loss simulator, which needs --sample-rate 44100"
    if cfg.tag and ("/" in cfg.tag or "\\" in cfg.tag or cfg.tag.startswith(".")):
        return f"--tag must be a plain name (no '/', no leading '.'), got {cfg.tag!r}"
    if cfg.team_id and not cfg.team_id.replace("-", "").isalnum():
        return f"--team-id must be letters and digits (e.g. T001), got {cfg.team_id!r}"
    try:
        parse_shard(cfg.shard)
    except ValueError as e:
        return str(e)
    return None


def audiogram_table(cfg) -> dict:
    """The category -> Audiogram table: pyclarity defaults, overridden by ``cfg.audiograms``."""
    table = dict(DEFAULT_AUDIOGRAMS)
    for category, spec in cfg.audiograms.items():
        try:
            table[category] = audiogram_from_levels(spec["levels"], spec["frequencies"])
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"audiograms[{category!r}] needs 'levels' and 'frequencies' lists: {e}") from e
    return table


def asr_settings(cfg, model: str | None = None) -> ASRSettings:
    return ASRSettings(engine=cfg.asr_engine, model=model or cfg.asr_model,
                       compute_type=cfg.asr_compute_type, device=cfg.asr_device,
                       batch_size=cfg.asr_batch_size)


def submission_tag(cfg, model: str) -> str:
    """The name a model's CSVs carry: ``NLR1``, ``NLR1-<tag>``, ``NLR1-unprocessed``."""
    name = f"{model}-{cfg.tag}" if cfg.tag else model
    return name if cfg.input == "signals" else f"{name}-unprocessed"


def _shard_filter(shard: str):
    parsed = parse_shard(shard)
    if parsed is None:
        return None
    k, n = parsed
    return lambda records: records[k - 1:: n]


def _split(cfg, *, input_kinds: tuple[str, ...], shard: str = "") -> SplitData:
    return validate_split(Path(cfg.data_root), cfg.split, challenge=cfg.challenge,
                          input_kinds=input_kinds, check_audio=bool(input_kinds),
                          sample_rate=cfg.sample_rate, skip_invalid=cfg.skip_invalid,
                          target=cfg.target, records_filter=_shard_filter(shard),
                          check_cache=Path(cfg.results_dir) / ".audio_checks.json")


def run_from_scores(cfg) -> None:
    """Stage 2 from per-signal feature files: metadata only, no audio."""
    split = _split(cfg, input_kinds=())
    files = [Path(p.strip()) for p in cfg.scores.split(",") if p.strip()]
    table, missing = read_feature_files(files, [r["signal"] for r in split.records],
                                        skip_invalid=cfg.skip_invalid)
    if missing:
        split = dataclasses.replace(split, records=[r for r in split.records if r["signal"] in set(table.signals)],
                                    skipped=split.skipped + missing)
    fits = fit_set(cfg, split, predicted=table, audio_route=False)
    _predict_and_write(cfg, split, table, fits, submission_tag(cfg, cfg.model),
                       feature=cfg.feature or fits.feature)


def _predict_and_write(cfg, split: SplitData, table: FeatureTable, fits: FitSet, tag: str,
                       feature: str | None) -> dict[str, float]:
    """Fit the predictor, predict the split (out-of-fold where it meets the fit set),
    write the submission and log figures when the split has labels."""
    signals = [r["signal"] for r in split.records]
    predict_table = table.select(signals) if fits.columns is None else _columns(table, fits.columns, split)
    if fits.columns and feature in fits.columns:
        feature = fits.columns[feature]
    predictions, predictor = fit_predict(
        cfg.predictor, fit_table=fits.table, fit_records=fits.records,
        fit_target_0_100=fits.target_0_100, predict_table=predict_table,
        predict_records=split.records, n_folds=cfg.folds, seed=cfg.seed, feature=feature,
        options=predictor_options(cfg))
    write_outputs(cfg, split, predictions, tag, predictor=predictor)
    log_metrics(cfg, split, predictions, fits)
    return predictions


def _columns(table: FeatureTable, columns: dict[str, str], split: SplitData) -> FeatureTable:
    """The predicted split's table reduced and renamed to the fit set's columns
    (``{predicted name: fit name}``), e.g. the better-ear score as the official column."""
    rows = table.select([r["signal"] for r in split.records])
    kept = [rows.names.index(name) for name in columns]
    return FeatureTable(rows.signals, list(columns.values()), rows.values[:, kept])


def run(cfg) -> None:
    """Run the experiment ``cfg`` describes."""
    root = resolve_data_root(Path(cfg.data_root), cfg.challenge)
    cfg = dataclasses.replace(cfg, challenge=root.challenge)
    if cfg.scores:
        run_from_scores(cfg)
        return
    wanted = stages(cfg)
    table = audiogram_table(cfg)
    split = _split(cfg, input_kinds=(cfg.input,) if "1" in wanted else (), shard=cfg.shard)
    if "2" in wanted:
        fit_records(cfg, split)  # labels to fit on exist: say so before any heavy work
    recompute_1 = cfg.recompute in ("1", "all")
    recompute_2 = cfg.recompute in ("2", "all")
    all_predictions: dict[str, dict[str, float]] = {}
    fits: FitSet | None = None
    written: list[str] = []
    for model in model_names(cfg):
        out_dir = output_dir(Path(cfg.results_dir), model, cfg.input, cfg.tag)
        stage1 = dict(model_name=model, audiograms=table, results_dir=Path(cfg.results_dir),
                      input_kind=cfg.input, sample_rate=cfg.sample_rate, simulator=cfg.msbg,
                      tag=cfg.tag)
        if "1" in wanted:
            summary = enhance_split(split, jobs=cfg.jobs, recompute=recompute_1,
                                    device=cfg.device or None, batch_size=cfg.batch_size, **stage1)
            write_json_atomic(out_dir / f"config_{cfg.split}.json", dataclasses.asdict(cfg))
            logger.info("Stage 1 %s: %d enhanced, %d reused", model, summary.done, summary.reused)
        else:
            stale = check_outputs_current(split, **stage1)
            if stale:
                raise DataError(
                    f"Stage 2 only, but the audio of {len(stale)} signal(s) in {out_dir} was not made "
                    f"by this run's Stage-1 settings (e.g. {stale[:3]}): another configuration of "
                    f"{model} wrote it, or it is missing or damaged. Run Stage 1 too (--stages 1,2), "
                    "or keep configurations apart with --tag NAME")
        if "2" not in wanted:
            continue
        paths = {r["signal"]: scored_path(out_dir, r["signal"], cfg.input) for r in split.records}
        features = stage2_table(cfg, split, paths, cache_folder=out_dir, desc=f"Stage 2: {model}")
        fits = fits or fit_set(cfg, split, predicted=features, features_of=stage2_table)
        if cfg.shard:
            logger.info("shard %s done; a final run without --shard writes the CSV", cfg.shard)
            continue
        default_feature = (None if cfg.predictor == "whisper-head"
                           else f"asr.{asr_label(asr_models(cfg)[0])}.better_ear")
        predictions = _predict_and_write(cfg, split, features, fits, submission_tag(cfg, model),
                                         feature=cfg.feature or fits.feature or default_feature)
        all_predictions[model] = predictions
        written.append(submission_tag(cfg, model))
    if len(all_predictions) > 1:
        write_hearing_aid_report(cfg, all_predictions, split.records)
    if written:
        how = ("python compute_csvs.py" if labelled(split.records, cfg.target)
               else f"python main.py --split {cfg.fit_split.split(',')[0]} --models "
                    f"{','.join(model_names(cfg))} then python compute_csvs.py (split {cfg.split!r} has no labels)")
        logger.info("done: %d submission(s) in %s (%s); to compare with listeners: %s",
                    len(written), cfg.results_dir, ", ".join(f"submission_{w}_{cfg.split}.csv" for w in written), how)


def stage2_table(cfg, split: SplitData, paths: dict, *, cache_folder: Path, desc: str) -> FeatureTable:
    """What the predictor reads for a split's audio: the feature table of every ASR
    model (and STOI/eSTOI), or, for ``whisper-head``, the Whisper encoder embeddings."""
    recompute = cfg.recompute in ("2", "all")
    if cfg.predictor == "whisper-head":
        from code.evaluation.embeddings import encoder_embeddings

        return encoder_embeddings([(r["signal"], paths[r["signal"]]) for r in split.records],
                                  settings=asr_settings(cfg), sample_rate=cfg.sample_rate,
                                  cache_file=Path(cache_folder) / f"embeddings.{split.layout.split}.jsonl",
                                  recompute=recompute, desc=f"{desc} (encoder)")
    return split_features(split, paths, settings=[asr_settings(cfg, m) for m in asr_models(cfg)],
                          cache_folder=cache_folder, sample_rate=cfg.sample_rate, shard=cfg.shard,
                          recompute=recompute, desc=desc)


def predictor_options(cfg) -> dict | None:
    """Extra settings a predictor takes: the device of the whisper-head's training."""
    return {"device": cfg.asr_device} if cfg.predictor == "whisper-head" else None


def write_hearing_aid_report(cfg, predictions: dict[str, dict[str, float]], records: list[dict]) -> None:
    """``results/hearing_aid_report_<split>_<input>[_<tag>].csv`` and ``.png``: models by
    hearing loss (named by input kind, so the two routes never overwrite each other)."""
    rows = report_rows(predictions, records)
    name = f"hearing_aid_report_{cfg.split}_{cfg.input}" + (f"_{cfg.tag}" if cfg.tag else "")
    base = Path(cfg.results_dir) / name
    chain = ("unprocessed -> model -> hearing-loss simulation -> Whisper" if cfg.input == "unprocessed"
             else "signals -> model -> Whisper")
    write_report(rows, base.with_suffix(".csv"), base.with_suffix(".png"), f"{cfg.split}: {chain}")
    for row in rows:
        if row["model"] != "identity":
            logger.info("report: %s %-8s n=%d mean %.1f (change vs identity %+.1f)", row["model"],
                        row["hearing_loss"], row["n"], row["mean_intelligibility"],
                        row["change_vs_identity"])
    logger.info("wrote %s.csv and %s.png", base, base)
