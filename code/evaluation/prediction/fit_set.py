"""The fit set: the labelled records a predictor learns from, and their features.

Records come from the splits ``--fit-split`` names (every record whose metadata
carries the target). Their features are, in this order of preference:

1. ``--train-scores`` files (feature JSONL, comma-separated), refused when they
   were made with other ASR settings than the run's;
2. the predicted split's own features, when it is the fit split (``--scores`` route);
3. the official precomputed Whisper scores shipped in pyclarity, when the run
   uses the official ASR settings (openai-whisper ``base.en``), one ASR model,
   a one-column predictor and the CLIP1 training split they cover;
4. computed here from the audio the listeners heard (``signals``), with the
   run's ASR settings, cached in ``results/_train_scores/`` for every model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from code.config import asr_models, fit_splits, parse_shard
from code.data.layout import SplitData
from code.data.metadata import target_0_1
from code.data.validation import validate_split
from code.errors import DataError
from code.evaluation.asr.scoring import OFFICIAL_TRAIN_SCORES
from code.evaluation.asr.settings import ASRSettings, asr_label, asr_settings
from code.evaluation.features.extract import split_table
from code.evaluation.prediction.capabilities import EMBEDDINGS
from code.evaluation.prediction.predictors import predictor_class
from code.evaluation.table import FeatureTable, read_feature_file, read_feature_files
from code.io_utils import read_jsonl
from code.keys import settings_digest

logger = logging.getLogger(__name__)

TRAIN_SCORES_DIR = "_train_scores"  # under results/: fit-set features shared by every model


@dataclass
class FitSet:
    """What a predictor is fitted on.

    ``columns`` (predicted-split name -> fit name) is set when the fit features
    come from a file whose column is named otherwise (the official scores);
    ``feature`` names the column single-feature predictors use, when it is fixed.
    """

    records: list[dict]
    table: FeatureTable
    target_0_100: np.ndarray
    columns: dict[str, str] | None = None
    feature: str | None = None


def labelled(records: list[dict], target: str = "correctness") -> bool:
    """True when every record carries the target (listener labels)."""
    return bool(records) and all(target in r for r in records)


def fit_records(cfg, split: SplitData) -> tuple[list[SplitData], list[dict]]:
    """The fit splits (checked, metadata only unless one is the predicted split) and
    their labelled records.

    Raises:
        DataError: when a fit split has no labelled record.
    """
    parts, records = [], []
    for name in fit_splits(cfg):
        if name == cfg.split:
            part = split
        else:
            part = validate_split(Path(cfg.data_root), name, challenge=cfg.challenge,
                                  check_audio=False, skip_invalid=cfg.skip_invalid, target=cfg.target)
        mine = [r for r in part.records if cfg.target in r]
        if not mine:
            hint = (" (only CLIP2 training metadata has phoneme_correctness; use --target correctness)"
                    if cfg.target == "phoneme_correctness" else "; choose another with --fit-split")
            raise DataError(f"fit split {name!r} has no record with {cfg.target!r} labels "
                            f"({part.layout.metadata_file}){hint}")
        if len(mine) < len(part.records):
            logger.info("fit split %r: %d of %d records carry %r labels", name, len(mine),
                        len(part.records), cfg.target)
        parts.append(part)
        records += mine
    return parts, records


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


def _files(text: str) -> list[Path]:
    return [Path(p.strip()) for p in text.split(",") if p.strip()]


def fit_set(cfg, split: SplitData, *, predicted: FeatureTable, audio_route: bool = True) -> FitSet:
    """The records, features and targets (0..100) a predictor is fitted on.

    ``predicted`` is the predicted split's feature table (its columns decide
    which official file fits, and it is reused when the split is the fit split
    on the ``--scores`` route). A fit split's own table comes from its audio
    (``split_table``: ASR features, or encoder embeddings for whisper-head).
    """
    parts, records = fit_records(cfg, split)
    signals = [r["signal"] for r in records]
    target = np.array([100.0 * target_0_1(r, cfg.target) for r in records])
    if cfg.train_scores:
        if audio_route:
            for path in _files(cfg.train_scores):
                for model in asr_models(cfg):
                    check_train_scores_match(path, asr_settings(cfg, model))
        table, missing = read_feature_files(_files(cfg.train_scores), signals, skip_invalid=cfg.skip_invalid)
        logger.info("fit features (%d columns) from %s", len(table.names), cfg.train_scores)
        return _without(records, target, table, missing)
    if not audio_route:
        if [p.layout.split for p in parts] == [cfg.split]:
            return FitSet(records, predicted, target)
        if len(predicted.names) == 1 and predicted.names[0] in OFFICIAL_TRAIN_SCORES:
            table, missing = read_feature_files([OFFICIAL_TRAIN_SCORES[predicted.names[0]]], signals,
                                                skip_invalid=cfg.skip_invalid)
            logger.info("fit features: the official precomputed training file %s",
                        OFFICIAL_TRAIN_SCORES[predicted.names[0]].name)
            return _without(records, target, table, missing)
        raise DataError(f"no fit-set features for columns {predicted.names}: pass the fit split's "
                        "feature files with --train-scores")
    official = _official(cfg, parts, signals)
    if official is not None:
        return FitSet(records, official, target,
                      columns={f"asr.{asr_label(asr_models(cfg)[0])}.better_ear": "whisper.mixture"},
                      feature="whisper.mixture")
    tables = []
    for part in parts:
        mine = [r for r in part.records if cfg.target in r]
        paths = {r["signal"]: part.layout.audio_path(r["signal"], "signals") for r in mine}
        folder = Path(cfg.results_dir) / TRAIN_SCORES_DIR
        desc = f"Stage 2: fit set ({part.layout.split})"
        tables.append(split_table(cfg, SplitData(part.layout, mine), paths, cache_folder=folder,
                                  desc=desc, embeddings=_embeddings(cfg)))
    table = _stack(tables)
    if set(table.names) != set(predicted.names):
        # e.g. the fit split has unprocessed audio and the predicted split not: keep shared columns
        shared = [n for n in table.names if n in predicted.names]
        logger.info("fit and predicted features differ; using the %d shared column(s)", len(shared))
        table = FeatureTable(table.signals, shared, table.values[:, [table.names.index(n) for n in shared]])
        return FitSet(records, table, target, columns={n: n for n in shared})
    return FitSet(records, table, target)


def fit_share(cfg, split: SplitData) -> None:
    """A ``--shard K/N`` job's share of the fit set: the features of the fit splits'
    labelled records K-1, K-1+N, ... computed into the results folder's store (the
    predicted split, when it is a fit split, is already this shard's part). Nothing is
    fitted; the final run without ``--shard`` finds every value in the store."""
    parts, records = fit_records(cfg, split)
    if cfg.train_scores or _official(cfg, parts, [r["signal"] for r in records]) is not None:
        return  # the fit features come from files: nothing to compute
    k, n = parse_shard(cfg.shard)
    for part in parts:
        mine = [r for r in part.records if cfg.target in r]
        if part is not split:
            mine = mine[k - 1:: n]
        paths = {r["signal"]: part.layout.audio_path(r["signal"], "signals") for r in mine}
        split_table(cfg, SplitData(part.layout, mine), paths,
                    cache_folder=Path(cfg.results_dir) / TRAIN_SCORES_DIR,
                    desc=f"Stage 2: fit set ({part.layout.split}, shard {cfg.shard})", embeddings=_embeddings(cfg))


def _embeddings(cfg) -> bool:
    """Whether the run's predictor reads Whisper encoder embeddings instead of features."""
    return predictor_class(cfg.predictor).takes == EMBEDDINGS


def _official(cfg, parts: list[SplitData], signals: list[str]) -> FeatureTable | None:
    """The official precomputed training scores, when this run may use them."""
    if not (asr_settings(cfg).is_official_baseline() and len(asr_models(cfg)) == 1
            and predictor_class(cfg.predictor).fits_precomputed and not cfg.feature
            and [p.layout.split for p in parts] == ["train"] and cfg.challenge == "clip1"):
        return None
    _, rows = read_feature_file(OFFICIAL_TRAIN_SCORES["whisper.mixture"])
    scores = {s: row["whisper.mixture"] for s, row in rows.items()}
    if not all(s in scores for s in signals):
        logger.info("official precomputed training scores do not cover this training set; computing")
        return None
    logger.info("fit features: the official precomputed Whisper base.en training scores")
    return FeatureTable(signals, ["whisper.mixture"], np.array([[scores[s]] for s in signals]))


def _without(records, target, table: FeatureTable, missing) -> FitSet:
    if missing:
        bad = {p.signal for p in missing}
        keep = [i for i, r in enumerate(records) if r["signal"] not in bad]
        records = [records[i] for i in keep]
        target = target[keep]
    return FitSet(records, table, target)


def _stack(tables: list[FeatureTable]) -> FeatureTable:
    if len(tables) == 1:
        return tables[0]
    names = [n for n in tables[0].names if all(n in t.names for t in tables)]
    values = np.vstack([t.values[:, [t.names.index(n) for n in names]] for t in tables])
    return FeatureTable([s for t in tables for s in t.signals], names, values)
