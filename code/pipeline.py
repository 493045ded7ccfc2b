"""The experiment as plain steps: check the data, Stage 1, Stage 2, predict, write.

``run(cfg)`` takes the ``ExperimentConfig`` of ``main.py`` (any object with
its fields) and does what it says; everything here is callable from tests.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import shlex
import tempfile
from pathlib import Path

import numpy as np

from code.config import (
    HEARING_LOSS_CATEGORIES,
    ExperimentConfig,
    asr_models,
    check_config,
    model_names,
    parse_shard,
    recompute_stage,
    stages,
)
from code.config_fields import RESOURCES, fields_with_role
from code.data.layout import SplitData, resolve_data_root
from code.data.validation import validate_split
from code.enhancement import enhance_split
from code.enhancement_plan import check_outputs_current, output_dir, scored_path
from code.errors import ConfigError, DataError, shown
from code.evaluation.asr.embeddings import embedding_columns
from code.evaluation.asr.engines import ensure_available
from code.evaluation.asr.settings import asr_label, asr_settings, model_path_problem
from code.evaluation.evaluation_helper import (
    FitSet,
    fit_records,
    fit_set,
    fit_share,
    labelled,
    predict_and_write,
    predictor_options,
    split_table,
)
from code.evaluation.outputs.html_report import write_html_reports
from code.evaluation.outputs.report_names import quality_wanted
from code.evaluation.prediction.capabilities import EMBEDDINGS
from code.evaluation.prediction.predictors import make_predictor, predictor_class
from code.evaluation.quality.aid_quality import quality_audiogram_problem
from code.evaluation.table import FeatureTable, read_feature_files
from code.io_utils import write_json_atomic
from code.keys import settings_digest
from code.models.audiograms import DEFAULT_AUDIOGRAMS, audiogram_from_levels, common_frequencies
from code.models.hearing_aid_models import unknown_model
from code.pipeline_report import model_quality, report_name, write_hearing_aid_report
from code.runs import run_name
from code.training.train import train_models

logger = logging.getLogger(__name__)


def preflight(cfg) -> None:
    """What ``check_config`` cannot see without heavy imports, checked before any work:
    the registries (models, predictors), the devices, and every ASR model's availability.

    Raises:
        ConfigError: naming the option and what to do.
        ASRError: for a Whisper model that cannot be had here.
    """
    problem = check_config(cfg)  # main.py has checked already; a caller of run() may not have
    if problem:
        raise ConfigError(problem)
    for name in model_names(cfg):  # registrations the source reader of check_config cannot see
        problem = unknown_model(name)
        if problem:
            raise ConfigError(problem)
    for model in asr_models(cfg):  # a model path holds a model's files: their names are looked at, none is read
        problem = model_path_problem(cfg.asr_engine, model, option="--asr-models" if cfg.asr_models else "--asr-model")
        if problem:
            raise ConfigError(problem)
    try:  # a registered predictor, with the settings --predictor-options names
        predictor = make_predictor(cfg.predictor, options=predictor_options(cfg))
    except ValueError as e:
        raise ConfigError(str(e)) from e
    if predictor.takes == EMBEDDINGS and len(asr_models(cfg)) > 1:
        raise ConfigError(f"--predictor {cfg.predictor} reads one Whisper encoder; --asr-models names "
                          f"{len(asr_models(cfg))} ({cfg.asr_models!r}): give one")
    if cfg.predictor_options:
        _trial_fit(cfg, predictor)
    try:  # the categories --audiograms leaves out keep pyclarity's audiograms
        common_frequencies(audiogram_table(cfg))
    except ValueError as e:
        raise ConfigError(f"--audiograms: {e}; the categories it leaves out keep pyclarity's "
                          "audiograms") from e
    if quality_wanted(cfg) and not cfg.scores:  # HAAQI needs the listeners' 250..6000 Hz, in Stage 2
        problem = quality_audiogram_problem(audiogram_table(cfg))
        if problem:
            raise ConfigError(problem)
    check_writable(Path(cfg.results_dir))
    wanted = stages(cfg)
    needs_asr = "2" in wanted and not cfg.scores
    devices = [("--device", cfg.device)] if "1" in wanted and not cfg.scores else []
    if needs_asr or predictor_class(cfg.predictor).trains_on_device:
        devices.append(("--asr-device", cfg.asr_device))
    for option, device in devices:
        if not device.startswith("cuda"):
            continue
        import torch

        if cfg.asr_engine == "faster-whisper" and option == "--asr-device":
            import ctranslate2

            count = ctranslate2.get_cuda_device_count()
        else:
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= count:
            raise ConfigError(f"{option} {device}: this machine has {count} CUDA device(s) usable "
                              f"here; use {option} cpu" + (f" or cuda:0..{count - 1}" if count else ""))
    if needs_asr:
        option = "--asr-models" if cfg.asr_models else "--asr-model"
        for model in asr_models(cfg):
            ensure_available(asr_settings(cfg, model), option=option)


TRIAL_RECORDS = 40  # made-up records a predictor is fitted on to try its --predictor-options


def _trial_fit(cfg, predictor) -> None:
    """Fit the predictor on made-up features, so that settings it refuses (a negative
    learning rate) are found before any audio work, not after hours of it."""
    rng = np.random.default_rng(0)
    names = embedding_columns(4) if predictor.takes == EMBEDDINGS else ["asr.trial.better_ear"]
    records = [{"signal": f"trial{i}", "prompt": f"trial prompt {i % 8}", "n_words": 3,
                "hearing_loss": HEARING_LOSS_CATEGORIES[i % len(HEARING_LOSS_CATEGORIES)]}
               for i in range(TRIAL_RECORDS)]
    table = FeatureTable([r["signal"] for r in records], names,
                         rng.uniform(0.05, 0.95, (TRIAL_RECORDS, len(names))))
    try:
        predictor.fit(table, rng.uniform(0, 100, TRIAL_RECORDS), records)
        predictor.predict(table, records)
    except (ValueError, TypeError, RuntimeError) as e:
        raise ConfigError(f"--predictor-options {shown(cfg.predictor_options)}: the {cfg.predictor} "
                          f"predictor refuses them: {e}") from e


def check_writable(results_dir: Path) -> None:
    """Make ``results_dir`` and write (and remove) a file there, so that a read-only or full
    file system or a forbidden folder stops the run before any work.

    Raises:
        OSError: naming the path and the cause.
    """
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write_check.", dir=results_dir)
    except OSError as e:
        raise OSError(e.errno, e.strerror, e.filename if e.errno == errno.ENOTDIR else str(results_dir)) from e
    try:
        os.write(fd, b"0" * 4096)
        os.fsync(fd)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(results_dir)) from e
    finally:
        os.close(fd)
        os.unlink(probe)


def audiogram_table(cfg) -> dict:
    """The category -> Audiogram table: pyclarity defaults, overridden by ``cfg.audiograms``."""
    table = dict(DEFAULT_AUDIOGRAMS)
    for category, spec in cfg.audiograms.items():
        try:
            table[category] = audiogram_from_levels(spec["levels"], spec["frequencies"])
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"audiograms[{category!r}] needs 'levels' and 'frequencies' lists: {e}") from e
    return table


def resume_advice(cfg, argv: list[str]) -> str:
    """What to run after an interruption: the same command, whatever it was. Finished
    signals are kept; with ``--recompute`` the parts already redone are recorded
    (``RecomputeProgress``), so the same command goes on instead of starting over."""
    command = " ".join(["python main.py", *map(shlex.quote, argv)])
    if cfg.recompute == "none":
        return f"finished work is kept; to continue, run the same command again: {command}"
    return (f"finished work is kept, and what --recompute {cfg.recompute} has already redone is "
            f"recorded; to continue (not start over), run the same command again: {command}")


class RecomputeProgress:
    """What a ``--recompute`` run has redone so far, per model and stage, kept in
    ``results/.recompute_<run>.json`` until the run ends, so that the same command run
    again after an interruption goes on where it stopped instead of starting over
    (the model and stage it was in are redone from their start)."""

    def __init__(self, cfg):
        kept = {k: v for k, v in dataclasses.asdict(cfg).items()  # all but the resources
                if k not in fields_with_role(ExperimentConfig, RESOURCES)}
        self.path = Path(cfg.results_dir) / f".recompute_{settings_digest(kept)}.json"
        self.cfg = cfg
        try:
            self.done = set(json.loads(self.path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            self.done = set()
        if self.done:
            logger.info("--recompute %s goes on from an interrupted run: %s already redone",
                        cfg.recompute, ", ".join(sorted(self.done)))

    def wanted(self, stage: str, what: str) -> bool:
        return recompute_stage(self.cfg, stage) and f"{what} stage {stage}" not in self.done

    def cfg_for(self, stage: str, what: str):
        """``cfg`` with ``recompute`` cleared when this part is already redone."""
        if self.cfg.recompute == "none" or self.wanted(stage, what):
            return self.cfg
        return dataclasses.replace(self.cfg, recompute="none")

    def mark(self, stage: str, what: str) -> None:
        if self.cfg.recompute != "none":
            self.done.add(f"{what} stage {stage}")
            write_json_atomic(self.path, sorted(self.done))

    def finish(self) -> None:
        self.path.unlink(missing_ok=True)


def _shard_filter(shard: str):
    parsed = parse_shard(shard)
    if parsed is None:
        return None
    k, n = parsed
    return lambda records: records[k - 1:: n]


def _split(cfg, *, input_kinds: tuple[str, ...], shard: str = "", references: str = "") -> SplitData:
    return validate_split(Path(cfg.data_root), cfg.split, challenge=cfg.challenge,
                          input_kinds=input_kinds, check_audio=bool(input_kinds or references),
                          skip_invalid=cfg.skip_invalid, references=references,
                          target=cfg.target, records_filter=_shard_filter(shard),
                          check_cache=Path(cfg.results_dir) / ".audio_checks.json")


def _haspi_fit_references(cfg, parts: list[SplitData]) -> None:
    """``--haspi`` makes HASPI a column of the fit set too: every labelled record of the fit
    splits needs its unprocessed audio (the predicted split's are checked with its audio).

    Raises:
        DataError: naming the fit split and a missing file.
    """
    for part in parts:
        if part.layout.split == cfg.split:
            continue
        mine = [r["signal"] for r in part.records if cfg.target in r]
        missing = [part.layout.audio_path(s, "unprocessed") for s in mine]
        missing = [p for p in missing if not p.is_file()]
        if missing:
            raise DataError(f"--haspi compares each signal with its unprocessed audio, and fit split "
                            f"{part.layout.split!r} lacks it for {len(missing)} of its {len(mine)} labelled "
                            f"record(s) (e.g. {missing[0]}): HASPI would be left out of the fit set. "
                            "Drop --haspi, or fit on a split with unprocessed audio (--fit-split)")


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
    name = run_name(cfg, cfg.model)
    predict_and_write(cfg, split, table, fits, name, feature=cfg.feature or fits.feature)
    _say_done(cfg, split, [name])


def run(cfg) -> None:
    """Run the experiment ``cfg`` describes."""
    preflight(cfg)
    root = resolve_data_root(Path(cfg.data_root), cfg.challenge)
    cfg = dataclasses.replace(cfg, challenge=root.challenge)
    if cfg.scores:
        run_from_scores(cfg)
        return
    wanted = stages(cfg)
    table = audiogram_table(cfg)
    if cfg.train:
        train_models(cfg, table)  # results/_training/<Model>[-<tag>].pt, which Stage 1's model then loads
    split = _split(cfg, input_kinds=(cfg.input,) if "1" in wanted else (), shard=cfg.shard,
                   references=("require" if cfg.haspi else "check") if "2" in wanted else "")
    if "2" in wanted:
        parts, _ = fit_records(cfg, split)  # labels to fit on exist: say so before any heavy work
        if cfg.haspi and not cfg.train_scores:
            _haspi_fit_references(cfg, parts)
    progress = RecomputeProgress(cfg)
    all_predictions: dict[str, dict[str, float]] = {}
    quality: dict[str, dict[str, float]] = {}  # {model: {signal: HAAQI}}, with quality_wanted
    fits: FitSet | None = None
    shared_fit = False
    written: list[str] = []
    for model in model_names(cfg):
        out_dir = output_dir(Path(cfg.results_dir), model, cfg.input, cfg.tag)
        stage1 = dict(model_name=model, audiograms=table, results_dir=Path(cfg.results_dir),
                      input_kind=cfg.input, sample_rate=cfg.sample_rate, simulator=cfg.msbg,
                      tag=cfg.tag)
        if "1" in wanted:
            summary = enhance_split(split, jobs=cfg.jobs, recompute=progress.wanted("1", model),
                                    device=cfg.device or None, batch_size=cfg.batch_size, **stage1)
            progress.mark("1", model)
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
        features = split_table(progress.cfg_for("2", model), split, paths, cache_folder=out_dir,
                               desc=f"Stage 2: {model}",
                               embeddings=predictor_class(cfg.predictor).takes == EMBEDDINGS)
        if quality_wanted(cfg):
            quality[model] = model_quality(cfg, split, table, out_dir, model,
                                           recompute=recompute_stage(progress.cfg_for("2", model), "2"))
        progress.mark("2", model)
        if cfg.shard:  # this job's share of the fit set too; the final run fits and writes
            if not shared_fit:
                fit_share(progress.cfg_for("2", "fit set"), split)
                shared_fit = True
            progress.mark("2", "fit set")
            logger.info("shard %s done; a final run without --shard writes the CSV", cfg.shard)
            continue
        fits = fits or fit_set(progress.cfg_for("2", "fit set"), split, predicted=features)
        progress.mark("2", "fit set")
        default_feature = (None if predictor_class(cfg.predictor).takes == EMBEDDINGS
                           else f"asr.{asr_label(asr_models(cfg)[0])}.better_ear")
        name = run_name(cfg, model)  # the files' name (code.runs): data set, home and settings read once
        predictions = predict_and_write(cfg, split, features, fits, name,
                                        feature=cfg.feature or fits.feature or default_feature,
                                        model=model)
        all_predictions[model] = predictions
        written.append(name)
    progress.finish()
    if len(all_predictions) > 1:
        write_hearing_aid_report(cfg, all_predictions, split.records, quality or None)
        write_html_reports([Path(cfg.results_dir) / f"submission_{w}_{cfg.split}.csv" for w in written],
                           Path(cfg.results_dir), baseline=getattr(cfg, "baseline", "identity"),
                           report=Path(cfg.results_dir) / report_name(cfg))
    if written:
        _say_done(cfg, split, written)


def _say_done(cfg, split: SplitData, written: list[str]) -> None:
    """The run's closing line: what it wrote and how to compare it with listeners."""
    results = shlex.quote(str(cfg.results_dir))
    if labelled(split.records, cfg.target):
        how = f"python compute_csvs.py {results}"
    elif cfg.scores:
        how = (f"the same command with --split {cfg.fit_split.split(',')[0]} and that split's score "
               f"files (out-of-fold), then python compute_csvs.py {results} (split {cfg.split!r} has no labels)")
    else:
        how = (f"python main.py --split {cfg.fit_split.split(',')[0]} --models "
               f"{','.join(model_names(cfg))} --results-dir {results} then python compute_csvs.py "
               f"{results} (split {cfg.split!r} has no labels)")
    logger.info("done: %d submission(s) in %s (%s); to compare with listeners: %s",
                len(written), cfg.results_dir, ", ".join(f"submission_{w}_{cfg.split}.csv" for w in written), how)
