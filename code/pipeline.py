"""The experiment as plain steps: check the data, Stage 1, Stage 2, CSVs.

``run(cfg)`` takes the ``ExperimentConfig`` of ``main.py`` (any object with
its fields) and does what it says; everything here is callable from tests.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from code.data_loading import INPUT_KINDS, SPLITS, DataError, SplitData, validate_split
from code.enhancement import enhance_split, output_dir, scored_path
from code.evaluation.asr import ENGINES, ASRSettings
from code.evaluation.evaluation_helper import (
    OFFICIAL_TRAIN_SCORES,
    ScoreItem,
    asr_cache_file,
    predict,
    read_score_file,
    score_audio,
    write_submission,
)
from code.evaluation.report import report_rows, write_report
from code.io_utils import read_jsonl, settings_digest, write_json_atomic
from code.models.hearing_aid_models import DEFAULT_AUDIOGRAMS, MODELS, audiogram_from_levels

logger = logging.getLogger(__name__)

TRAIN_SCORES_DIR = "_train_scores"  # under results/: shared by every model


def model_names(cfg) -> list[str]:
    return [m.strip() for m in cfg.models.split(",") if m.strip()] or [cfg.model]


def stages(cfg) -> set[str]:
    """The stages ``--stages`` asks for, e.g. ``"1,2"`` -> {"1", "2"}."""
    return set(cfg.stages.replace(" ", "").split(","))


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


def check_config(cfg) -> str | None:
    """A one-line reason when the config cannot work, before any heavy work."""
    if cfg.split not in SPLITS:
        return f"--split must be one of {SPLITS}, got {cfg.split!r}"
    if cfg.input not in INPUT_KINDS:
        return f"--input must be one of {INPUT_KINDS}, got {cfg.input!r}"
    for name in model_names(cfg):
        if name not in MODELS:
            return f"unknown model {name!r}; registered models: {sorted(MODELS)}"
    if cfg.asr_engine not in ENGINES:
        return f"--asr-engine must be one of {ENGINES}, got {cfg.asr_engine!r}"
    if not stages(cfg) <= {"1", "2"}:
        return f"--stages must be 1, 2 or 1,2; got {cfg.stages!r}"
    for category in cfg.audiograms:
        if category not in DEFAULT_AUDIOGRAMS:
            return f"audiograms: unknown category {category!r}; expected {list(DEFAULT_AUDIOGRAMS)}"
    if cfg.scores and cfg.shard:
        return "--scores and --shard do not go together (--scores needs no audio work)"
    if cfg.input == "unprocessed" and cfg.sample_rate != 44100:
        return "--input unprocessed runs the MSBG simulator, which needs --sample-rate 44100"
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


def asr_settings(cfg) -> ASRSettings:
    return ASRSettings(engine=cfg.asr_engine, model=cfg.asr_model,
                       compute_type=cfg.asr_compute_type, device=cfg.asr_device,
                       batch_size=cfg.asr_batch_size)


def submission_tag(model: str, input_kind: str) -> str:
    return model if input_kind == "signals" else f"{model}-unprocessed"


def _shard(records: list[dict], shard: str) -> list[dict]:
    parsed = parse_shard(shard)
    if parsed is None:
        return records
    k, n = parsed
    return records[k - 1:: n]


def _train_split(cfg) -> SplitData:
    """The training split, with ground truth, for calibration."""
    return validate_split(Path(cfg.data_root), "train", check_audio=False,
                          require_correctness=True, skip_invalid=cfg.skip_invalid,
                          sample_rate=cfg.sample_rate)


def training_scores(cfg, train: SplitData, *, shard: str = "") -> dict[str, float]:
    """Scores of the training signals (as the listeners heard them) under the run's
    ASR settings: from ``--train-scores``, the official precomputed file when the
    settings are the official baseline's and it covers this training set, or
    computed here once and cached for every model (only the shard's part
    with ``shard``)."""
    settings = asr_settings(cfg)
    if cfg.train_scores:
        check_train_scores_match(Path(cfg.train_scores), settings)
        _, scores = read_score_file(Path(cfg.train_scores))
        logger.info("training scores from %s", cfg.train_scores)
        return scores
    if settings.is_official_baseline():
        _, official = read_score_file(OFFICIAL_TRAIN_SCORES["whisper.mixture"])
        if all(r["signal"] in official for r in train.records):
            logger.info("training scores: the official precomputed Whisper base.en file")
            return official
        logger.info("official precomputed training scores do not cover this training set; computing")
    items = [ScoreItem(r["signal"], r["prompt"], train.layout.audio_path(r["signal"], "signals"))
             for r in _shard(train.records, shard)]
    folder = Path(cfg.results_dir) / TRAIN_SCORES_DIR
    return score_audio(items, settings=settings, split="train", sample_rate=cfg.sample_rate,
                       cache_file=asr_cache_file(folder, "train", settings, shard),
                       desc="Stage 2: training scores")


def check_train_scores_match(path: Path, settings: ASRSettings) -> None:
    """Refuse training scores made with other ASR settings than the run's.

    Raises:
        DataError: for the official precomputed files when the run is not the
            official baseline's settings, or for this project's score files
            whose recorded ASR settings differ.
    """
    official = {p.resolve() for p in OFFICIAL_TRAIN_SCORES.values()}
    if path.resolve() in official and not settings.is_official_baseline():
        raise DataError(
            f"training scores {path} are the official openai-whisper base.en scores, but this "
            f"run uses {settings.engine} {settings.model}: calibration needs the same ASR "
            "settings (use --asr-engine openai-whisper --asr-model base.en, or drop --train-scores)")
    wanted = settings_digest(settings.cache_key())
    recorded = {r["asr"] for r in read_jsonl(path) if "asr" in r}
    if recorded and recorded != {wanted}:
        raise DataError(f"training scores {path} were made with other ASR settings "
                        f"({sorted(recorded)}) than this run's ({wanted}); drop --train-scores "
                        "to score the training split with this run's settings")


def _write_outputs(cfg, split: SplitData, predictions: dict[str, float], tag: str) -> None:
    csv_path, evalai_path = write_submission(predictions, split.records, Path(cfg.results_dir),
                                             tag, cfg.split)
    write_json_atomic(csv_path.with_suffix(".config.json"), dataclasses.asdict(cfg))
    if split.skipped:
        skipped = Path(cfg.results_dir) / f"skipped_{tag}_{cfg.split}.json"
        write_json_atomic(skipped, [p.to_dict() for p in split.skipped])
        logger.warning("the submission LACKS %d invalid record(s); list with reasons: %s",
                       len({p.signal for p in split.skipped}), skipped)
    logger.info("wrote %s and %s (%d rows)", csv_path, evalai_path, len(split.records))


def run_from_scores(cfg) -> None:
    """Stage 2 from precomputed per-signal scores: no audio needed."""
    split = validate_split(Path(cfg.data_root), cfg.split, check_audio=False,
                           require_correctness=cfg.split == "train", skip_invalid=cfg.skip_invalid)
    name, scores = read_score_file(Path(cfg.scores))
    missing = [r["signal"] for r in split.records if r["signal"] not in scores]
    if missing:
        raise DataError(f"score file {cfg.scores} lacks {len(missing)} signal(s) of split "
                        f"{cfg.split!r}, e.g. {missing[:3]}")
    train_file = Path(cfg.train_scores) if cfg.train_scores else OFFICIAL_TRAIN_SCORES.get(name)
    if train_file is None:
        raise DataError(f"no official training scores named {name!r}; pass --train-scores PATH")
    train_name, train_scores = read_score_file(train_file)
    if train_name != name and not cfg.train_scores:
        raise DataError(f"training scores {train_file} hold {train_name!r}, not {name!r}")
    train = split if cfg.split == "train" else _train_split(cfg)
    predictions = predict(split.records, scores, train.records, train_scores, split=cfg.split,
                          n_folds=cfg.folds, seed=cfg.seed)
    _write_outputs(cfg, split, predictions, cfg.model)


def run(cfg) -> None:
    """Run the experiment ``cfg`` describes."""
    if cfg.scores:
        run_from_scores(cfg)
        return
    wanted = stages(cfg)
    table = audiogram_table(cfg)
    input_kinds = (cfg.input,) if "1" in wanted else ()
    split = validate_split(Path(cfg.data_root), cfg.split, input_kinds=input_kinds,
                           sample_rate=cfg.sample_rate, skip_invalid=cfg.skip_invalid,
                           require_correctness=cfg.split == "train")
    train = None
    if "2" in wanted:
        train = split if cfg.split == "train" else _train_split(cfg)
    records = _shard(split.records, cfg.shard)
    settings = asr_settings(cfg)
    all_predictions: dict[str, dict[str, float]] = {}
    for model in model_names(cfg):
        out_dir = output_dir(Path(cfg.results_dir), model, cfg.input)
        if "1" in wanted:
            summary = enhance_split(dataclasses.replace(split, records=records), model_name=model,
                                    audiograms=table, results_dir=Path(cfg.results_dir),
                                    input_kind=cfg.input, sample_rate=cfg.sample_rate,
                                    jobs=cfg.jobs)
            write_json_atomic(out_dir / f"config_{cfg.split}.json", dataclasses.asdict(cfg))
            logger.info("Stage 1 %s: %d enhanced, %d reused", model, summary.done, summary.reused)
        if "2" not in wanted:
            continue
        items = [ScoreItem(r["signal"], r["prompt"], scored_path(out_dir, r["signal"], cfg.input))
                 for r in records]
        scores = score_audio(items, settings=settings, split=cfg.split,
                             sample_rate=cfg.sample_rate, desc=f"Stage 2: {model}",
                             cache_file=asr_cache_file(out_dir, cfg.split, settings, cfg.shard))
        train_scores = training_scores(cfg, train, shard=cfg.shard)
        if cfg.shard:
            logger.info("shard %s done; a final run without --shard writes the CSV", cfg.shard)
            continue
        predictions = predict(split.records, scores, train.records, train_scores,
                              split=cfg.split, n_folds=cfg.folds, seed=cfg.seed)
        _write_outputs(cfg, split, predictions, submission_tag(model, cfg.input))
        all_predictions[model] = predictions
    if len(all_predictions) > 1:
        write_hearing_aid_report(cfg, all_predictions, split.records)


def write_hearing_aid_report(cfg, predictions: dict[str, dict[str, float]], records: list[dict]) -> None:
    """``results/hearing_aid_report_<split>.csv`` and ``.png``: models by hearing loss."""
    rows = report_rows(predictions, records)
    base = Path(cfg.results_dir) / f"hearing_aid_report_{cfg.split}"
    chain = "unprocessed -> model -> MSBG -> Whisper" if cfg.input == "unprocessed" else "signals -> model -> Whisper"
    write_report(rows, base.with_suffix(".csv"), base.with_suffix(".png"),
                 f"{cfg.split}: {chain}")
    for row in rows:
        if row["model"] != "identity":
            logger.info("report: %s %-8s n=%d mean %.1f (change vs identity %+.1f)", row["model"],
                        row["hearing_loss"], row["n"], row["mean_intelligibility"],
                        row["change_vs_identity"])
    logger.info("wrote %s.csv and %s.png", base, base)
