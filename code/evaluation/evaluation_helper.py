"""Stage 2: transcribe audio with Whisper, score words correct, turn it into features, write CSVs.

- ``score_audio``: per signal, transcribe each ear (mono 16 kHz), score each
  ear against the prompt with the official CLIP1 scorer, keep the better ear.
  Transcripts are appended as they come to a JSONL cache keyed by the audio
  file's content and the ASR settings; scores also by the prompt and scorer, so
  a changed lyric line is re-scored without transcribing again.
- ``split_features``: every per-signal feature of a split (per-ear and better-ear
  scores, ASR confidence, words heard, STOI/eSTOI against the unprocessed audio)
  as one table, also written as ``features.<split>.<asr>.jsonl``. Predictors
  (``code/evaluation/predictors.py``) turn features into 0..100 predictions.
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
from code.evaluation.asr import ASREngine, ASRSettings, make_engine, split_ears
from code.evaluation.features import FeatureTable, write_features_jsonl
from code.evaluation.scoring import RECIPE_DIR, LyricScorer
from code.io_utils import append_jsonl, file_digest, read_jsonl, repair_jsonl, settings_digest, write_text_atomic

logger = logging.getLogger(__name__)

PRECOMPUTED_DIR = RECIPE_DIR / "precomputed"
OFFICIAL_TRAIN_SCORES = {
    "whisper.mixture": PRECOMPUTED_DIR / "cadenza_data.train.whisper.jsonl",
    "stoi": PRECOMPUTED_DIR / "cadenza_data.train.stoi.jsonl",
}
SUBMISSION_HEADER = ("signal_ID", "intelligibility_score")
SCORER_VERSION = "clip1-sentence-scorer:pyclarity-0.9.0"  # change when scoring changes


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
    """Cached records of this cache file and its shards, by (signal, audio digest);
    the last record of a key wins (a re-scored record follows its first scoring)."""
    repair_jsonl(cache_file)
    stem = cache_file.name.split(".shard")[0].removesuffix(".jsonl")
    index = {}
    for path in sorted(cache_file.parent.glob(f"{stem}*.jsonl")):
        for record in read_jsonl(path):
            index[(record.get("signal"), record.get("audio"))] = record
    return index


def _prefetch(items: list[tuple[ScoreItem, str]], sample_rate: int, batch: int, audio_path: str = "soxr"
              ) -> Iterator[list[tuple[ScoreItem, str, list[np.ndarray]]]]:
    """Yield batches of (item, digest, ears), loading the next batch while the
    current one is transcribed."""

    def load(chunk):
        return [(item, digest, split_ears(read_audio(item.path, sample_rate), sample_rate,
                                          audio_path=audio_path))
                for item, digest in chunk]

    chunks = [items[i: i + batch] for i in range(0, len(items), batch)]
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(load, chunks[0]) if chunks else None
        for i in range(len(chunks)):
            current = future.result()
            future = pool.submit(load, chunks[i + 1]) if i + 1 < len(chunks) else None
            yield current


def scoring_key(prompt: str) -> str:
    """What a words-correct score depends on besides the transcript: the lyric line
    and the scorer (its version and contractions table)."""
    return settings_digest({"prompt": prompt, "scorer": SCORER_VERSION})


def _scored(item: ScoreItem, digest: str, split: str, asr_key: str, transcripts: list[dict],
            scorer: LyricScorer) -> dict:
    ear_scores = [scorer.score(item.prompt, t["text"]).correctness for t in transcripts]
    return {"signal": item.signal, "split": split, "asr": asr_key, "audio": digest,
            "scoring": scoring_key(item.prompt), "transcripts": [t["text"] for t in transcripts],
            "confidence": [{k: t[k] for k in ("avg_logprob", "no_speech_prob")} for t in transcripts],
            "ear_correctness": ear_scores, "score": max(ear_scores)}


def score_audio(items: list[ScoreItem], *, settings: ASRSettings, cache_file: Path,
                split: str, sample_rate: int = 44100, desc: str = "Stage 2",
                recompute: bool = False, engine: ASREngine | None = None) -> dict[str, dict]:
    """Score each item: both ears' words correct (0..1) and the better ear's.

    Transcripts are cached by (signal, audio content, ASR settings); the score is
    also keyed by the prompt and scorer, so a changed lyric line is re-scored from
    the stored transcripts without transcribing again. ``recompute`` transcribes
    everything again. ``engine`` defaults to the one ``settings`` name.

    Returns ``{signal: record}`` for all ``items``; ``record["score"]`` is the
    better ear's correctness (0..1), ``record["ear_correctness"]`` both ears'.

    Raises:
        DataError: naming the file, for audio that is missing or unreadable.
    """
    cache = {} if recompute else _load_cache(cache_file)
    records: dict[str, dict] = {}
    todo: list[tuple[ScoreItem, str]] = []
    rescored = 0
    scorer = None
    asr_key = settings_digest(settings.cache_key())
    for item in items:
        if not item.path.is_file():
            raise DataError(f"signal {item.signal}: audio to score not found: {item.path}")
        digest = file_digest(item.path)
        cached = cache.get((item.signal, digest))
        if cached is None or "transcripts" not in cached:
            todo.append((item, digest))
            continue
        if cached.get("scoring") != scoring_key(item.prompt):
            scorer = scorer or LyricScorer()
            confidence = cached.get("confidence") or [{"avg_logprob": 0.0, "no_speech_prob": 0.0}] * 2
            transcripts = [{"text": t, **c} for t, c in zip(cached["transcripts"], confidence)]
            cached = _scored(item, digest, split, asr_key, transcripts, scorer)
            append_jsonl(cache_file, cached)
            rescored += 1
        records[item.signal] = cached
    why = "--recompute" if recompute else "cached by audio content and ASR settings"
    logger.info("%s: %d signal(s) to transcribe, %d reused (%s)%s", desc, len(todo),
                len(records), why, f", {rescored} re-scored for a changed prompt" if rescored else "")
    if not todo:
        return records

    engine = engine or make_engine(settings)
    scorer = scorer or LyricScorer()
    with tqdm(total=len(todo), desc=desc, unit="signal") as bar:
        for batch in _prefetch(todo, sample_rate, max(1, settings.batch_size // 2), settings.audio_path()):
            ears = [ear for _, _, pair in batch for ear in pair]
            heard = engine.transcribe(ears)
            for j, (item, digest, _) in enumerate(batch):
                pair = [{"text": t.text, "avg_logprob": t.avg_logprob, "no_speech_prob": t.no_speech_prob}
                        for t in heard[2 * j: 2 * j + 2]]
                record = _scored(item, digest, split, asr_key, pair, scorer)
                append_jsonl(cache_file, record)
                records[item.signal] = record
                bar.update()
    return records


def asr_features(records: dict[str, dict], label: str) -> dict[str, dict[str, float]]:
    """Per-signal feature columns from ``score_audio`` records, named ``asr.<label>.*``:
    left/right/better-ear correctness (0..1), mean token log-probability and
    no-speech probability per ear, and the words heard in the better ear."""
    out = {}
    for signal, r in records.items():
        left, right = r["ear_correctness"]
        conf = r.get("confidence") or [{"avg_logprob": 0.0, "no_speech_prob": 0.0}] * 2
        better = int(right > left)
        out[signal] = {
            f"asr.{label}.left": left, f"asr.{label}.right": right,
            f"asr.{label}.better_ear": max(left, right),
            f"asr.{label}.logprob_left": conf[0]["avg_logprob"],
            f"asr.{label}.logprob_right": conf[1]["avg_logprob"],
            f"asr.{label}.no_speech_left": conf[0]["no_speech_prob"],
            f"asr.{label}.no_speech_right": conf[1]["no_speech_prob"],
            f"asr.{label}.words_heard": float(len(r["transcripts"][better].split())),
        }
    return out


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


def asr_label(model: str) -> str:
    """How features name a Whisper model: its name, or a checkpoint's file or folder stem."""
    path = Path(model)
    return path.stem if path.exists() else model


def _intrusive_cached(items: list[tuple[str, Path, Path]], cache_file: Path, sample_rate: int,
                      recompute: bool) -> dict[str, dict[str, float]]:
    """STOI/eSTOI per ear of (signal, heard audio, unprocessed reference), cached by both
    files' content in ``cache_file``."""
    from code.evaluation.intrusive import intrusive_features

    cache = {} if recompute else {(r["signal"], r["audio"], r["reference"]): r for r in read_jsonl(cache_file)}
    out, todo = {}, []
    for signal, path, reference in items:
        key = (signal, file_digest(path), file_digest(reference))
        if key in cache:
            out[signal] = cache[key]["features"]
        else:
            todo.append((key, path, reference))
    for key, path, reference in tqdm(todo, desc="Stage 2: STOI/eSTOI", unit="signal",
                                     disable=not todo):
        features = intrusive_features(read_audio(path, sample_rate), read_audio(reference, sample_rate),
                                      sample_rate)
        append_jsonl(cache_file, {"signal": key[0], "audio": key[1], "reference": key[2],
                                  "features": features})
        out[key[0]] = features
    return out


def split_features(split, paths: dict[str, Path], *, settings: list[ASRSettings], cache_folder: Path,
                   sample_rate: int = 44100, shard: str = "", recompute: bool = False,
                   desc: str = "Stage 2") -> FeatureTable:
    """Every per-signal feature of a split's audio, as one table, also written to
    ``<cache_folder>/features.<split>.<digest>.jsonl`` (the shape ``--scores`` reads).

    Columns: per ASR model (``--asr-models``) ``asr.<model>.{left,right,better_ear,
    logprob_left,logprob_right,no_speech_left,no_speech_right,words_heard}``; and,
    when every signal has its unprocessed audio, ``stoi.{left,right}`` and
    ``estoi.{left,right}`` of the audio against it.
    """
    items = [ScoreItem(r["signal"], r["prompt"], paths[r["signal"]]) for r in split.records]
    rows: dict[str, dict[str, float]] = {r["signal"]: {} for r in split.records}
    digests = []
    for asr in settings:
        digests.append(settings_digest(asr.cache_key()))
        records = score_audio(items, settings=asr, split=split.layout.split,
                              sample_rate=sample_rate, desc=f"{desc} ({asr_label(asr.model)})",
                              cache_file=asr_cache_file(cache_folder, split.layout.split, asr, shard),
                              recompute=recompute)
        for signal, values in asr_features(records, asr_label(asr.model)).items():
            rows[signal].update(values)
    references = {r["signal"]: split.layout.audio_path(r["signal"], "unprocessed") for r in split.records}
    if references and all(p.is_file() for p in references.values()):
        suffix = f".shard{shard.replace('/', 'of')}" if shard else ""
        intrusive = _intrusive_cached([(s, paths[s], references[s]) for s in rows],
                                      cache_folder / f"intrusive.{split.layout.split}{suffix}.jsonl",
                                      sample_rate, recompute)
        for signal, values in intrusive.items():
            rows[signal].update(values)
    else:
        logger.info("no unprocessed audio for every signal of %r: no STOI/eSTOI features",
                    split.layout.split)
    names = list(next(iter(rows.values())).keys()) if rows else []
    table = FeatureTable(list(rows), names, np.array([[v[n] for n in names] for v in rows.values()]))
    if not shard:
        out = Path(cache_folder) / f"features.{split.layout.split}.{settings_digest(digests)}.jsonl"
        write_features_jsonl(out, [{"signal": s, **v} for s, v in rows.items()])
        logger.info("features (%d columns) of %d signal(s): %s", len(names), len(rows), out)
    return table
