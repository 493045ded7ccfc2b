"""Stage 1: run a hearing-aid model over a split and write the enhanced audio.

For every record, the model gets the chosen input audio (``signals``: what the
listener heard; ``unprocessed``: the audio at the ear, before hearing loss)
and the audiogram of the listener's category, and its output is written as
float WAV. With ``unprocessed`` input the output is then passed through the
MSBG hearing-loss simulator (``heard/``), which is what Stage 2 scores.

Work is spread over worker processes; each finished signal is recorded in a
manifest keyed by everything that determines it (model and its settings,
audiogram, input kind and the input file's content), so a rerun redoes
nothing that is finished and recomputes anything whose inputs changed.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from clarity.utils.audiogram import Audiogram
from tqdm import tqdm

from code.data_loading import SplitData, read_audio
from code.hearing_loss import MSBG_SETTINGS, simulate_hearing_loss
from code.io_utils import append_jsonl, file_digest, read_jsonl, repair_jsonl, settings_digest, write_wav_atomic
from code.models.hearing_aid_models import audiogram_to_dict, make_model, model_settings

logger = logging.getLogger(__name__)

MANIFEST = ".stage1_manifest.jsonl"


@dataclass(frozen=True)
class EnhanceTask:
    """One signal's Stage-1 work, picklable for worker processes."""

    signal: str
    input_path: Path
    output_path: Path
    heard_path: Path | None  # set when the hearing-loss simulation follows the model
    levels: tuple[float, ...]
    frequencies: tuple[float, ...]
    key: str


@dataclass
class StageSummary:
    done: int = 0
    reused: int = 0


def output_dir(results_dir: Path, model_name: str, input_kind: str) -> Path:
    """Where Stage 1 writes a model's audio: ``results/<Model>/`` for ``signals``,
    ``results/<Model>/from_unprocessed/`` for the hearing-aid chain."""
    base = Path(results_dir) / model_name
    return base if input_kind == "signals" else base / "from_unprocessed"


def scored_path(out_dir: Path, signal: str, input_kind: str) -> Path:
    """The file Stage 2 transcribes for ``signal``."""
    if input_kind == "signals":
        return out_dir / f"{signal}.wav"
    return out_dir / "heard" / f"{signal}.wav"


_worker_model = None


def _init_worker(model_name: str, sample_rate: int) -> None:
    global _worker_model
    _worker_model = make_model(model_name, sample_rate=sample_rate)


def _run_task(task: EnhanceTask, sample_rate: int) -> tuple[str, float]:
    audiogram = Audiogram(levels=np.array(task.levels), frequencies=np.array(task.frequencies))
    audio = read_audio(task.input_path, sample_rate)
    enhanced = _worker_model(audio, audiogram)
    if enhanced.shape != audio.shape:
        raise RuntimeError(f"signal {task.signal}: model returned shape {enhanced.shape}, "
                           f"expected the input's {audio.shape}")
    if not np.all(np.isfinite(enhanced)):
        raise RuntimeError(f"signal {task.signal}: model output has NaN or infinite samples")
    write_wav_atomic(task.output_path, enhanced, sample_rate)
    if task.heard_path is not None:
        heard = simulate_hearing_loss(enhanced, audiogram, sample_rate)
        write_wav_atomic(task.heard_path, heard, sample_rate)
    return task.signal, float(np.max(np.abs(enhanced)))


def enhance_split(
    split_data: SplitData,
    *,
    model_name: str,
    audiograms: dict[str, Audiogram],
    results_dir: Path,
    input_kind: str = "signals",
    sample_rate: int = 44100,
    jobs: int = 0,
) -> StageSummary:
    """Enhance every record of ``split_data``; return how many were done and reused.

    ``jobs``: worker processes (0: one per CPU core; 1: in this process).
    """
    model = make_model(model_name, sample_rate=sample_rate)  # fails fast on a bad name
    out_dir = output_dir(results_dir, model_name, input_kind)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / MANIFEST
    repair_jsonl(manifest)
    finished = {r["signal"]: r["key"] for r in read_jsonl(manifest)}

    tasks: list[EnhanceTask] = []
    summary = StageSummary()
    for record in split_data.records:
        signal = record["signal"]
        audiogram = audiograms[record["hearing_loss"]]
        input_path = split_data.layout.audio_path(signal, input_kind)
        settings = {"model": model_name, "model_settings": model_settings(model),
                    "audiogram": audiogram_to_dict(audiogram), "input_kind": input_kind,
                    "input": file_digest(input_path), "sample_rate": sample_rate,
                    "msbg": MSBG_SETTINGS if input_kind == "unprocessed" else None}
        key = settings_digest(settings)
        task = EnhanceTask(
            signal, input_path, out_dir / f"{signal}.wav",
            scored_path(out_dir, signal, input_kind) if input_kind == "unprocessed" else None,
            tuple(float(x) for x in audiogram.levels),
            tuple(float(x) for x in audiogram.frequencies), key)
        outputs = [task.output_path] + ([task.heard_path] if task.heard_path else [])
        if finished.get(signal) == key and all(p.exists() for p in outputs):
            summary.reused += 1
        else:
            tasks.append(task)
    logger.info("Stage 1 (%s, %s input): %d to enhance, %d reused from %s",
                model_name, input_kind, len(tasks), summary.reused, out_dir)
    if not tasks:
        return summary

    jobs = jobs or os.cpu_count() or 1
    by_signal = {t.signal: t for t in tasks}
    bar = tqdm(total=len(tasks), desc=f"Stage 1: {model_name}", unit="signal")

    def _finish(signal: str, peak: float) -> None:
        append_jsonl(manifest, {"signal": signal, "key": by_signal[signal].key})
        summary.done += 1
        if peak > 1.0:
            logger.warning("signal %s: output peaks at %.2f (above full scale); kept in "
                           "float WAV, not clipped", signal, peak)
        bar.update()

    if jobs == 1 or len(tasks) == 1:
        global _worker_model
        _worker_model = model  # in this process: the model built above
        for task in tasks:
            _finish(*_run_task(task, sample_rate))
    else:
        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), initializer=_init_worker,
                                 initargs=(model_name, sample_rate)) as pool:
            for signal, peak in pool.map(_run_task, tasks, [sample_rate] * len(tasks)):
                _finish(signal, peak)
    bar.close()
    return summary
