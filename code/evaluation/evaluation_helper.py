"""Stage 2: transcribe audio with Whisper, score words correct, calibrate, write CSVs.

- ``score_audio``: per signal, transcribe each ear (mono 16 kHz), score each
  ear against the prompt with the official CLIP1 scorer, keep the better ear.
  Results are appended as they come to a JSONL cache keyed by split, ASR
  settings and the audio file's content, so reruns transcribe nothing twice.
- ``training_pairs`` / ``predict``: fit the 0..100 logistic calibration on
  (ASR score, correctness x 100) of the training split, scored with the same
  ASR settings; on the training split itself, predictions are out-of-fold.
- ``write_submission``: ``submission_<Model>_<split>.csv`` (with header) and
  ``evalai_<Model>_<split>.csv`` (without), written atomically.
"""

from __future__ import annotations

import csv
import io
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from code.data_loading import DataError, read_audio
from code.evaluation.asr import ASRSettings, make_engine, split_ears
from code.evaluation.calibration import LogisticCalibration, out_of_fold_predictions
from code.evaluation.scoring import RECIPE_DIR, LyricScorer
from code.io_utils import append_jsonl, file_digest, read_jsonl, repair_jsonl, settings_digest, write_text_atomic

logger = logging.getLogger(__name__)

PRECOMPUTED_DIR = RECIPE_DIR / "precomputed"
OFFICIAL_TRAIN_SCORES = {
    "whisper.mixture": PRECOMPUTED_DIR / "cadenza_data.train.whisper.jsonl",
    "stoi": PRECOMPUTED_DIR / "cadenza_data.train.stoi.jsonl",
}
SUBMISSION_HEADER = ("signal_ID", "intelligibility_score")


@dataclass(frozen=True)
class ScoreItem:
    """A signal to score: its ID, lyric line and the audio file to transcribe."""

    signal: str
    prompt: str
    path: Path


def asr_cache_file(folder: Path, split: str, settings: ASRSettings, shard: str | None = None) -> Path:
    """The JSONL cache of one split's scores under one set of ASR settings."""
    suffix = f".shard{shard.replace('/', 'of')}" if shard else ""
    return Path(folder) / f"scores.{split}.{settings_digest(settings.cache_key())}{suffix}.jsonl"


def _load_cache(cache_file: Path) -> dict[tuple[str, str], dict]:
    """Cached records of this cache file and its shards, by (signal, audio digest)."""
    repair_jsonl(cache_file)
    stem = cache_file.name.split(".shard")[0].removesuffix(".jsonl")
    index = {}
    for path in sorted(cache_file.parent.glob(f"{stem}*.jsonl")):
        for record in read_jsonl(path):
            index[(record.get("signal"), record.get("audio"))] = record
    return index


def _prefetch(items: list[tuple[ScoreItem, str]], sample_rate: int, batch: int
              ) -> Iterator[list[tuple[ScoreItem, str, list[np.ndarray]]]]:
    """Yield batches of (item, digest, ears), loading the next batch while the
    current one is transcribed."""

    def load(chunk):
        return [(item, digest, split_ears(read_audio(item.path, sample_rate), sample_rate))
                for item, digest in chunk]

    chunks = [items[i: i + batch] for i in range(0, len(items), batch)]
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(load, chunks[0]) if chunks else None
        for i in range(len(chunks)):
            current = future.result()
            future = pool.submit(load, chunks[i + 1]) if i + 1 < len(chunks) else None
            yield current


def score_audio(items: list[ScoreItem], *, settings: ASRSettings, cache_file: Path,
                split: str, sample_rate: int = 44100, desc: str = "Stage 2") -> dict[str, float]:
    """Score each item (better ear's words correct, 0..1); reuse cached results.

    Returns ``{signal: score}`` for all ``items``.

    Raises:
        DataError: naming the file, for audio that is missing or unreadable.
    """
    cache = _load_cache(cache_file)
    scores: dict[str, float] = {}
    todo: list[tuple[ScoreItem, str]] = []
    for item in items:
        if not item.path.is_file():
            raise DataError(f"signal {item.signal}: audio to score not found: {item.path}")
        digest = file_digest(item.path)
        cached = cache.get((item.signal, digest))
        if cached is not None:
            scores[item.signal] = float(cached["score"])
        else:
            todo.append((item, digest))
    logger.info("%s: %d signal(s) to transcribe, %d reused from %s",
                desc, len(todo), len(scores), cache_file.parent)
    if not todo:
        return scores

    engine = make_engine(settings)
    scorer = LyricScorer()
    asr_key = settings_digest(settings.cache_key())
    with tqdm(total=len(todo), desc=desc, unit="signal") as bar:
        for batch in _prefetch(todo, sample_rate, max(1, settings.batch_size // 2)):
            ears = [ear for _, _, pair in batch for ear in pair]
            texts = engine.transcribe(ears)
            for j, (item, digest, _) in enumerate(batch):
                pair = texts[2 * j: 2 * j + 2]
                ear_scores = [scorer.score(item.prompt, text).correctness for text in pair]
                record = {"signal": item.signal, "split": split, "asr": asr_key, "audio": digest,
                          "transcripts": pair, "ear_correctness": ear_scores,
                          "score": max(ear_scores)}
                append_jsonl(cache_file, record)
                scores[item.signal] = record["score"]
                bar.update()
    return scores


def read_score_file(path: Path) -> tuple[str, dict[str, float]]:
    """Read a precomputed score JSONL (one ``{"signal": ..., "<name>": score}`` per line).

    Returns the score name and ``{signal: score}``. Also reads this project's
    own cache files (name ``score``).

    Raises:
        DataError: naming the file, when it is missing, empty or inconsistent.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"score file not found: {path}")
    records = read_jsonl(path)
    if not records:
        raise DataError(f"score file {path} holds no records")
    if "score" in records[0]:
        name = "score"
    else:
        names = [k for k in records[0] if k != "signal"]
        if len(names) != 1:
            raise DataError(f"score file {path}: expected one score field beside 'signal', "
                            f"got {names}")
        name = names[0]
    scores = {}
    for lineno, record in enumerate(records, start=1):
        value = record.get(name)
        if "signal" not in record or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise DataError(f"score file {path}, record {lineno}: needs 'signal' and a finite "
                            f"{name!r}, got {record}")
        scores[record["signal"]] = float(value)
    return name, scores


def training_pairs(train_records: list[dict], train_scores: dict[str, float]
                   ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(ASR score 0..1, correctness x 100, prompt) for every training record that has a score.

    Raises:
        DataError: when fewer than 3 training records have a score.
    """
    rows = [(train_scores[r["signal"]], 100.0 * float(r["correctness"]), r["prompt"])
            for r in train_records if r["signal"] in train_scores]
    missing = len(train_records) - len(rows)
    if missing:
        logger.warning("%d of %d training signals have no training score; calibrating on %d",
                       missing, len(train_records), len(rows))
    if len(rows) < 3:
        raise DataError(f"only {len(rows)} training signals have scores: cannot calibrate "
                        "(are the training scores for this data set?)")
    x, y, prompts = zip(*rows)
    return np.array(x), np.array(y), list(prompts)


def predict(records: list[dict], scores: dict[str, float], train_records: list[dict],
            train_scores: dict[str, float], *, split: str, n_folds: int = 5,
            seed: int = 0) -> dict[str, float]:
    """Predicted intelligibility (0..100) for each record.

    On ``split == "train"`` each prediction is out-of-fold: calibrated on
    training pairs whose prompts lie in other folds.
    """
    x_fit, y_fit, fit_prompts = training_pairs(train_records, train_scores)
    x = np.array([scores[r["signal"]] for r in records])
    if split != "train":
        model = LogisticCalibration.fit(x_fit, y_fit)
        logger.info("calibration: x0=%.3f k=%.3f on %d training pairs", model.x0, model.k, len(x_fit))
        return dict(zip((r["signal"] for r in records), model.predict(x).tolist()))
    prompts = [r["prompt"] for r in records]
    predicted = out_of_fold_predictions(x_fit, y_fit, fit_prompts, x, prompts,
                                        n_folds=n_folds, seed=seed)
    return dict(zip((r["signal"] for r in records), predicted.tolist()))


def write_submission(predictions: dict[str, float], records: list[dict], results_dir: Path,
                     tag: str, split: str) -> tuple[Path, Path]:
    """Write ``submission_<tag>_<split>.csv`` (header) and ``evalai_<tag>_<split>.csv``
    (no header), one row per record in metadata order, atomically.

    Raises:
        ValueError: when a record lacks a prediction or a score is not finite in 0..100.
    """
    rows = []
    for record in records:
        value = predictions.get(record["signal"])
        if value is None or not np.isfinite(value) or not 0.0 <= value <= 100.0:
            raise ValueError(f"signal {record['signal']}: prediction {value!r} is not in 0..100")
        rows.append((record["signal"], f"{value:.6f}"))
    paths = (Path(results_dir) / f"submission_{tag}_{split}.csv",
             Path(results_dir) / f"evalai_{tag}_{split}.csv")
    for path, header in zip(paths, (SUBMISSION_HEADER, None)):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if header:
            writer.writerow(header)
        writer.writerows(rows)
        write_text_atomic(path, buffer.getvalue())
    return paths
