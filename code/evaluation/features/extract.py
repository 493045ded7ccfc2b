"""Per-signal features of a split's audio: both ears transcribed and scored against the
lyric line (``score_audio``), ASR features from them (``asr_features``), STOI/eSTOI against
the unprocessed audio, all as one table (``split_features``).

Every value is kept in the results folder's content-addressed store
(``code/evaluation/cache.py``): keyed by the audio's content, the settings and the
code that computes it, so identical audio is transcribed once and an edit to one
computation recomputes only its values.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm import tqdm

from code.config import DEFAULTS, asr_models, recompute_stage
from code.data.audio import read_audio
from code.data.layout import SplitData
from code.errors import DataError
from code.evaluation.asr.engines import (
    REPETITION_COMPRESSION_RATIO,
    ASREngine,
    compression_ratio,
    is_repetition_loop,
    make_engine,
    split_ears,
)
from code.evaluation.asr.scoring import LyricScorer
from code.evaluation.asr.settings import ENGINE_PACKAGES, ASRSettings, asr_label, asr_settings
from code.evaluation.cache import Store, results_store
from code.evaluation.features.chorus import with_chorus
from code.evaluation.features.registry import default_features, feature, pair_feature_values, store_ranges
from code.evaluation.shipped_values import shipped_value_problem
from code.evaluation.table import FeatureTable, write_features_jsonl
from code.io_utils import write_text_atomic
from code.keys import code_digest, key_of, settings_digest
from code.runs import selected_features

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreItem:
    """A signal to score: its ID, lyric line and the audio file to transcribe."""

    signal: str
    prompt: str
    path: Path


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


CONFIDENCE_FIELDS = ("avg_logprob", "no_speech_prob")


def _stored(value: float | None) -> float | None:
    """A confidence value as the cache stores it: a number, or null when missing."""
    return None if value is None or np.isnan(value) else float(value)


def _stored_ears(transcripts) -> list[dict]:
    """What the store keeps of each ear's transcript: its text and confidences."""
    return [{"text": t.text, **{k: _stored(getattr(t, k)) for k in CONFIDENCE_FIELDS}} for t in transcripts]


# The code that makes each kind of stored value (code.keys.code_digest covers these and what
# they call), and the packages whose versions are part of its key.
TRANSCRIPT_CODE = (_prefetch, make_engine, _stored_ears)
SCORE_CODE = (LyricScorer,)  # the CLIP1 scorer's use; pyclarity's own by version
SCORE_PACKAGES = ("pyclarity", "inflect", "jiwer")
SHIPPED_STORE = "stage2_store"  # a data set's precomputed Stage-2 values, beside its metadata/


def transcript_key(audio_digest: str, settings: ASRSettings, sample_rate: int) -> str:
    """The store key of both ears' transcripts of one audio file: its content, the ASR
    settings, the rate it is read at, and the code and packages that transcribe it."""
    return key_of("transcript", audio=audio_digest, asr=settings.cache_key(), sample_rate=sample_rate,
                  code=code_digest(*TRANSCRIPT_CODE, packages=ENGINE_PACKAGES[settings.engine]))


def scoring_key(texts: list[str], prompt: str) -> str:
    """The store key of a words-correct score: the transcripts' text, the lyric line,
    and the scorer's code (this project's use of it and pyclarity's version)."""
    return key_of("score", texts=texts, prompt=prompt, code=code_digest(*SCORE_CODE, packages=SCORE_PACKAGES))


def _record(item: ScoreItem, digest: str, split: str, ears: list[dict], ear_scores: list[float]) -> dict:
    return {"signal": item.signal, "split": split, "audio": digest,
            "transcripts": [t["text"] for t in ears],
            "confidence": [{k: _stored(t.get(k)) for k in CONFIDENCE_FIELDS} for t in ears],
            "ear_correctness": ear_scores, "score": max(ear_scores)}


class _Scores:
    """Words-correct scores of transcripts, from the store or computed (one scorer, built on first need)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.scorer: LyricScorer | None = None
        self.computed = 0

    def __call__(self, prompt: str, ears: list[dict]) -> list[float]:
        key = scoring_key([t["text"] for t in ears], prompt)
        cached = self.store.get("score", key)
        if cached is not None and len(cached.get("ear_correctness", ())) == len(ears):
            return [float(x) for x in cached["ear_correctness"]]
        self.scorer = self.scorer or LyricScorer()
        scores = [self.scorer.score(prompt, t["text"]).correctness for t in ears]
        self.store.put("score", key, {"ear_correctness": scores})
        self.computed += 1
        return scores


def score_audio(items: list[ScoreItem], *, settings: ASRSettings, store: Store,
                split: str, sample_rate: int = 44100, desc: str = "Stage 2",
                recompute: bool = False, engine: ASREngine | None = None) -> dict[str, dict]:
    """Score each item: both ears' words correct (0..1) and the better ear's.

    Transcripts are kept in ``store`` (``code/evaluation/cache.py``) under the audio's
    content, the ASR settings and the transcribing code, never the signal ID: identical
    audio anywhere under one results folder is transcribed once. Scores are kept under
    the transcripts, the prompt and the scorer's code, so a changed lyric line is
    re-scored without transcribing again. ``recompute`` transcribes everything again
    (and replaces the stored values). ``engine`` defaults to the one ``settings`` name.

    Returns ``{signal: record}`` for all ``items``; ``record["score"]`` is the
    better ear's correctness (0..1), ``record["ear_correctness"]`` both ears',
    ``record["transcripts"]`` and ``record["confidence"]`` per ear.

    Raises:
        DataError: naming the file, for audio that is missing or unreadable.
    """
    for item in items:
        if not item.path.is_file():
            raise DataError(f"signal {item.signal}: audio to score not found: {item.path}")
    scores = _Scores(store)
    records: dict[str, dict] = {}
    todo: dict[str, list[tuple[ScoreItem, str]]] = {}  # transcript key -> items with that audio
    shipped = 0  # of the reused: read from the data set's store
    for item in items:
        digest = store.digest(item.path)
        tkey = transcript_key(digest, settings, sample_rate)
        cached = None if recompute or tkey in todo else store.get("transcript", tkey)
        if cached is None or len(cached.get("ears", ())) != 2:
            todo.setdefault(tkey, []).append((item, digest))
            continue
        records[item.signal] = _record(item, digest, split, cached["ears"],
                                       scores(item.prompt, cached["ears"]))
        shipped += store.from_seed("transcript", tkey)
    why = "--recompute" if recompute else "stored by audio content, ASR settings and code"
    why += f"; {shipped} from the data set's store" if shipped else ""
    waiting = sum(len(v) for v in todo.values())
    logger.info("%s: %d signal(s) to transcribe, %d reused (%s)%s%s", desc, len(todo),
                len(records), why, f", {scores.computed} re-scored for a changed prompt or scorer"
                if scores.computed else "",
                f"; {waiting - len(todo)} share audio with another" if waiting > len(todo) else "")
    if not todo:
        return records

    engine = engine or make_engine(settings)
    firsts = [(group[0][0], tkey) for tkey, group in todo.items()]
    with tqdm(total=len(firsts), desc=desc, unit="signal") as bar:
        for batch in _prefetch(firsts, sample_rate, max(1, settings.batch_size // 2), settings.audio_path()):
            ears = [ear for _, _, pair in batch for ear in pair]
            heard = engine.transcribe(ears)
            for j, (_, tkey, _) in enumerate(batch):
                pair = _stored_ears(heard[2 * j: 2 * j + 2])
                store.put("transcript", tkey, {"ears": pair})
                for item, digest in todo[tkey]:
                    records[item.signal] = _record(item, digest, split, pair, scores(item.prompt, pair))
                bar.update()
    return records


def _confidence_of(text: str, stored: dict) -> dict[str, float]:
    """An ear's confidence fields as features: NaN (missing) for an empty transcript
    whatever the cache line holds (lines written before this rule stored 0.0 / 1.0
    there), and for a stored null."""
    if not text.strip():
        return {k: np.nan for k in CONFIDENCE_FIELDS}
    return {k: np.nan if stored.get(k) is None else float(stored[k]) for k in CONFIDENCE_FIELDS}


def asr_features(records: dict[str, dict], label: str) -> dict[str, dict[str, float]]:
    """Per-signal feature columns from ``score_audio`` records, named ``asr.<label>.*``:
    left/right/better-ear correctness (0..1); per ear the mean token log-probability
    and the no-speech probability (``Transcript``; NaN, i.e. missing, for an empty
    transcript), the transcript's compression ratio (``compression_ratio``; NaN when
    empty) and a repetition flag (1.0 when that ratio exceeds Whisper's own
    threshold, ``REPETITION_COMPRESSION_RATIO``); and the words heard in the better
    ear. Logs how many ears are empty and how many are flagged."""
    out = {}
    empty = flagged = 0
    for signal, r in records.items():
        left, right = r["ear_correctness"]
        texts = r["transcripts"]
        conf = [_confidence_of(t, c) for t, c in zip(texts, r["confidence"])]
        ratios = [compression_ratio(t) for t in texts]
        loops = [float(is_repetition_loop(t)) for t in texts]
        empty += sum(not t.strip() for t in texts)
        flagged += int(sum(loops))
        better = int(right > left)
        out[signal] = {
            f"asr.{label}.left": left, f"asr.{label}.right": right,
            f"asr.{label}.better_ear": max(left, right),
            f"asr.{label}.logprob_left": conf[0]["avg_logprob"],
            f"asr.{label}.logprob_right": conf[1]["avg_logprob"],
            f"asr.{label}.no_speech_left": conf[0]["no_speech_prob"],
            f"asr.{label}.no_speech_right": conf[1]["no_speech_prob"],
            f"asr.{label}.compression_ratio_left": ratios[0],
            f"asr.{label}.compression_ratio_right": ratios[1],
            f"asr.{label}.repetition_left": loops[0],
            f"asr.{label}.repetition_right": loops[1],
            f"asr.{label}.words_heard": float(len(texts[better].split())),
        }
    if records:
        logger.info("ASR %s: %d of %d ears heard nothing (confidence missing); %d flagged as a repetition "
                    "loop (compression ratio > %.1f)", label, empty, 2 * len(records), flagged,
                    REPETITION_COMPRESSION_RATIO)
    return out


def split_features(split, paths: dict[str, Path], *, settings: list[ASRSettings], cache_folder: Path,
                   store: Store, sample_rate: int = 44100, shard: str = "", recompute: bool = False,
                   desc: str = "Stage 2", features: list[tuple[str, dict]] | None = None,
                   jobs: int = 1) -> FeatureTable:
    """Every per-signal feature of a split's audio, as one table, also written to
    ``<cache_folder>/features.<split>.<digest>.jsonl`` (the shape ``--scores`` reads)
    and, per ASR model, ``<cache_folder>/scores.<split>.<digest>.jsonl`` (both ears'
    transcripts, confidence and scores: for reading; values come from ``store``).

    Columns: per ASR model (``--asr-models``) ``asr.<model>.{left,right,better_ear,
    logprob_left,logprob_right,no_speech_left,no_speech_right,compression_ratio_left,
    compression_ratio_right,repetition_left,repetition_right,words_heard}`` (see
    ``asr_features``; missing values are NaN, written as null); and,
    when every signal has its unprocessed audio, the columns of each pair feature of
    ``features`` (``(name, settings)``: a name in ``registry.FEATURES`` and its function's
    settings; default: STOI/eSTOI with their default settings); with several ASR models, their
    ``asr.chorus.*`` summaries (``code.evaluation.features.chorus``, not in the file).
    The file's digest covers the ASR settings and, for other than the default features, their
    names (so no two feature sets share a file).
    """
    features = default_features() if features is None else features
    items = [ScoreItem(r["signal"], r["prompt"], paths[r["signal"]]) for r in split.records]
    rows: dict[str, dict[str, float]] = {r["signal"]: {} for r in split.records}
    digests = []
    for asr in settings:
        digests.append(settings_digest(asr.cache_key()))
        records = score_audio(items, settings=asr, split=split.layout.split,
                              sample_rate=sample_rate, desc=f"{desc} ({asr_label(asr.model)})",
                              store=store, recompute=recompute)
        if not shard:
            out = Path(cache_folder) / f"scores.{split.layout.split}.{digests[-1]}.jsonl"
            write_text_atomic(out, "".join(json.dumps({**records[s], "asr": asr.cache_key()}) + "\n"
                                           for s in rows))
        for signal, values in asr_features(records, asr_label(asr.model)).items():
            rows[signal].update(values)
    references = {r["signal"]: split.layout.audio_path(r["signal"], "unprocessed") for r in split.records}
    if references and all(p.is_file() for p in references.values()):
        against = [(s, paths[s], references[s]) for s in rows]
        for name, options in features:
            for signal, values in pair_feature_values(name, options, against, store=store, sample_rate=sample_rate,
                                                      recompute=recompute, jobs=jobs).items():
                rows[signal].update(values)
    elif features:
        logger.info("no unprocessed audio for every signal of %r: no %s features", split.layout.split,
                    ", ".join(name for name, _ in features))
    names = list(next(iter(rows.values())).keys()) if rows else []
    table = FeatureTable(list(rows), names, np.array([[v[n] for n in names] for v in rows.values()]))
    if not shard:
        names = [name for name, _ in features]
        if names != list(selected_features(DEFAULTS)):
            digests.append({"features": names})
        out = Path(cache_folder) / f"features.{split.layout.split}.{settings_digest(digests)}.jsonl"
        write_features_jsonl(out, [{"signal": s, **v} for s, v in rows.items()])
        logger.info("features (%d columns) of %d signal(s): %s", len(names), len(rows), out)
    return with_chorus(table)  # derived on reading, never stored


def stage2_store(results_dir: Path, split: SplitData, *, trust_shipped: bool = True) -> Store:
    """The results folder's store, with the data set's shipped store (``<cadenza_data>/stage2_store/``,
    read only, each value checked by ``shipped_value_problem``) as its seed when it has one and
    ``trust_shipped`` (``--trust-shipped-store``, the default)."""
    shipped = split.layout.metadata_file.parent.parent / SHIPPED_STORE
    if shipped.is_dir() and not trust_shipped:
        logger.info("not reading the values the data set ships in %s (--no-trust-shipped-store): "
                    "every value is computed here", shipped)
    seeds = (shipped,) if trust_shipped and shipped.is_dir() else ()
    ranges = store_ranges()
    return results_store(Path(results_dir), seeds=seeds,
                         seed_check=lambda kind, value: shipped_value_problem(kind, value, ranges))


def split_table(cfg, split: SplitData, paths: dict, *, cache_folder: Path, desc: str,
                embeddings: bool = False) -> FeatureTable:
    """What the predictor reads for a split's audio: the feature table of every ASR
    model (and the pair features), or, with ``embeddings`` (a predictor that takes them),
    the Whisper encoder embeddings.

    Values come from the results folder's store, then from the data set's shipped
    store (``<cadenza_data>/stage2_store/``, read only; the demo ships its default
    run's values there) when it has one: a shipped value is used only when its whole
    key matches (same audio, settings and code), so a stale one is recomputed."""
    recompute = recompute_stage(cfg, "2")
    store = stage2_store(Path(cfg.results_dir), split, trust_shipped=cfg.trust_shipped_store)
    if embeddings:
        from code.evaluation.asr.embeddings import encoder_embeddings

        return encoder_embeddings([(r["signal"], paths[r["signal"]]) for r in split.records],
                                  settings=asr_settings(cfg), sample_rate=cfg.sample_rate,
                                  store=store, recompute=recompute, desc=f"{desc} (encoder)")
    return split_features(split, paths, settings=[asr_settings(cfg, m) for m in asr_models(cfg)],
                          cache_folder=cache_folder, store=store, sample_rate=cfg.sample_rate,
                          shard=cfg.shard, recompute=recompute, desc=desc,
                          features=[(name, feature(name).settings(cfg)) for name in selected_features(cfg)],
                          jobs=cfg.jobs)
