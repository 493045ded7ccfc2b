"""Stage 1: run a hearing-aid model over a split and write the enhanced audio.

For every record, the model gets the chosen input audio (``signals``: what the
listener heard; ``unprocessed``: the audio at the ear, before hearing loss)
and the audiogram of the listener's category, and its output is written as
float WAV. With ``unprocessed`` input the output is then passed through the
hearing-loss simulator (``heard/``), which is what Stage 2 scores.

Which signals must be enhanced, and why, is ``code.enhancement_plan``'s: a rerun reuses
a signal only when its key and its files on disk match, and the log says why not.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import multiprocessing
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numba  # the fast simulator's compiled loops run bands in parallel threads
import numpy as np
import torch
from clarity.utils.audiogram import Audiogram
from tqdm import tqdm

from code.data.layout import SplitData
from code.data.levels import simulator_level_problem
from code.data_loading import CLIPDataset, make_dataloader
from code.enhancement_plan import (
    MANIFEST,
    REASONS,
    EnhanceTask,
    StageSummary,
    file_stat,
    output_dir,
    plan_tasks,
)
from code.errors import ModelError
from code.io_utils import append_jsonl, write_wav_atomic
from code.keys import file_digest
from code.models.audiograms import common_frequencies
from code.resources import available_cpus, cap_workers_by_memory, torch_device

logger = logging.getLogger(__name__)

SIMULATOR_BYTES_PER_WORKER = 550e6  # MSBG on a 23 s stereo signal peaks near 515 MB
BATCH_SIZE = 4  # items per model call (memory grows with it)
LOADER_WORKERS = 4  # at most this many processes decode and resample ahead of the model

def _finish_item(signal: str, enhanced: np.ndarray, output_path: Path, heard_path: Path | None,
                 levels: tuple[float, ...], frequencies: tuple[float, ...], sample_rate: int,
                 simulator: str, simulator_device: str | None = None) -> tuple[str, float, dict]:
    """Write one item's model output (and what the listener hears); return its file digests."""
    write_wav_atomic(output_path, enhanced, sample_rate)
    if heard_path is not None:
        from code.hearing_loss.simulator import simulate_hearing_loss  # only this route needs MSBG

        audiogram = Audiogram(levels=np.array(levels), frequencies=np.array(frequencies))
        write_wav_atomic(heard_path, simulate_hearing_loss(enhanced, audiogram, sample_rate, simulator=simulator,
                                                           device=simulator_device), sample_rate)
    out_dir = output_path.parent
    paths = [output_path] + ([heard_path] if heard_path is not None else [])
    digests = {str(p.relative_to(out_dir)): [file_digest(p), *file_stat(p)] for p in paths}
    return signal, float(np.max(np.abs(enhanced), initial=0.0)), digests


def _init_simulator_worker(threads: int) -> None:
    """Share the cores: each of the simulator's worker processes gets ``threads`` of them."""
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    torch.set_num_threads(1)


class _Inline(Executor):
    """Runs each task at once, in this process."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def _finisher(input_kind: str, jobs: int, n_tasks: int, *, on_gpu: bool = False) -> tuple[Executor, int]:
    """Where items are written (and, for ``unprocessed``, simulated), and how many at once.
    ``on_gpu``: the simulator runs on a GPU, from this process's threads."""
    if jobs <= 1 or n_tasks <= 1:
        return _Inline(), 1
    if input_kind == "unprocessed" and not on_gpu:
        workers = min(n_tasks, cap_workers_by_memory(jobs, SIMULATOR_BYTES_PER_WORKER,
                                                     what="Stage 1 hearing-loss simulator"))
        # Spawned, not forked: a child forked from a process whose OpenMP threads
        # (torch, numba) have run can hang or be terminated by the OpenMP runtime.
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_simulator_worker,
                                   initargs=(max(1, available_cpus() // workers),))
        return pool, workers
    workers = min(jobs, LOADER_WORKERS)
    return ThreadPoolExecutor(max_workers=workers), workers


def _run_model(model, batch: dict, device: torch.device, model_name: str) -> np.ndarray:
    """``model(signals, audiogram_levels)`` on one batch, checked; float32 ``[B, 2, T]`` on the CPU."""
    signals, levels = batch["signals"], batch["audiogram_levels"]
    if isinstance(model, torch.nn.Module):
        signals, levels = signals.to(device), levels.to(device)
    with torch.inference_mode():
        out = model(signals, levels)
    names = [r["signal"] for r in batch["metadata"]]
    if isinstance(out, np.ndarray):
        out = torch.from_numpy(out)
    if not isinstance(out, torch.Tensor):
        raise ModelError(f"model {model_name} returned {type(out).__name__} for signals {names}; "
                         "expected a tensor shaped like its input [B, 2, T]")
    if tuple(out.shape) != tuple(batch["signals"].shape):
        raise ModelError(f"model {model_name} returned shape {tuple(out.shape)} for signals {names}; "
                         f"expected the input's {tuple(batch['signals'].shape)}")
    return out.detach().to("cpu", torch.float32).numpy()


def _check_output(enhanced: np.ndarray, task: EnhanceTask, model_name: str, sample_rate: int) -> None:
    """Refuse an item's output that has non-finite samples, or that the hearing-loss
    simulator (``unprocessed`` input; an audiogram of zeros skips it) cannot take."""
    if not np.all(np.isfinite(enhanced)):
        raise ModelError(f"signal {task.signal}: model {model_name} output has NaN or infinite samples "
                         f"({int(np.sum(~np.isfinite(enhanced)))} of {enhanced.size})")
    simulated = task.heard_path is not None and any(task.levels)
    problem = simulator_level_problem(enhanced, sample_rate) if simulated else None
    if problem:
        raise ModelError(f"signal {task.signal}: model {model_name}'s output is {problem}. Its input "
                         "passed that check, so the model's gain brings it down: check the model")


def _reason_counts(plan: list[tuple[EnhanceTask, str | None]]) -> dict[str, int]:
    counts = {reason: 0 for reason in REASONS}
    for _, reason in plan:
        if reason is not None:
            counts[reason] += 1
    return counts


def enhance_split(
    split_data: SplitData,
    *,
    model_name: str,
    audiograms: dict[str, Audiogram],
    results_dir: Path,
    input_kind: str = "signals",
    sample_rate: int = 44100,
    jobs: int = 0,
    recompute: bool = False,
    simulator: str = "fast",
    tag: str = "",
    device: str | None = None,
    batch_size: int = BATCH_SIZE,
) -> StageSummary:
    """Enhance every record of ``split_data``; return how many were done and reused.

    Only the records needing work are loaded, through the DataLoader, in
    batches of ``batch_size``; each batch goes through
    ``model(signals [B, 2, T], audiogram_levels [B, F])`` under
    ``torch.inference_mode()``, and each item is cropped to its own length and
    written atomically, then recorded in the manifest.

    ``jobs``: CPU processes (0: every available core; 1: everything in this
    process). With more than one, DataLoader workers decode and resample, and
    writing (plus the hearing-loss simulation for ``unprocessed`` input, capped
    by free memory) runs in a pool. ``recompute``: redo every signal, whatever
    the manifest says. ``simulator``: the hearing-loss simulator for
    ``unprocessed`` input. ``tag``: write to ``results/<Model>-<tag>/`` (a trained model
    uses the weights trained with that tag when there are some, else the untagged ones).
    ``device``: where a ``torch.nn.Module`` model and its input go (default:
    ``cuda`` when available, else ``cpu``); other models get CPU tensors.

    Raises:
        ValueError: for an unknown model, a mixed audiogram table or a bad tag.
        ModelError: naming the model and signals, when the model returns something
            of the wrong shape or type, non-finite samples, or (``unprocessed``
            input) output too quiet for the hearing-loss simulator.
    """
    out_dir = output_dir(results_dir, model_name, input_kind, tag)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = out_dir / MANIFEST
    jobs = jobs or available_cpus()
    model, plan = plan_tasks(split_data, model_name=model_name, audiograms=audiograms, out_dir=out_dir,
                        input_kind=input_kind, sample_rate=sample_rate, simulator=simulator,
                        recompute=recompute, jobs=jobs, results_dir=results_dir, tag=tag)
    tasks = [task for task, reason in plan if reason is not None]
    counts = _reason_counts(plan)
    summary = StageSummary(reused=len(plan) - len(tasks), reasons=counts)
    logger.info("Stage 1 (%s, %s input, %s): %d reused, %d to enhance (%s)", model_name,
                input_kind, out_dir, summary.reused, len(tasks),
                ", ".join(f"{n} {reason}" for reason, n in counts.items() if n) or "nothing")
    if not tasks:
        return summary

    device_ = torch.device(torch_device(device))
    if isinstance(model, torch.nn.Module):
        model = model.to(device_).eval()
    frequencies = common_frequencies(audiograms)
    dataset = CLIPDataset(split_data.layout, [t.record for t in tasks], input_kind=input_kind,
                          sample_rate=sample_rate, audiogram_frequencies=frequencies,
                          audiogram_levels={c: [float(x) for x in a.levels] for c, a in audiograms.items()})
    by_signal = {t.signal: t for t in tasks}
    pool, workers = _finisher(input_kind, jobs, len(tasks),
                              on_gpu=simulator == "torch" and device_.type == "cuda")
    pending: collections.deque[Future] = collections.deque()
    bar = tqdm(total=len(tasks), desc=f"Stage 1: {model_name}", unit="signal")

    def _collect(future: Future) -> None:
        signal, peak, written = future.result()
        append_jsonl(manifest, {"signal": signal, "key": by_signal[signal].key,
                                "parts": by_signal[signal].parts,
                                "input_stat": list(by_signal[signal].input_stat),
                                "outputs": {name: d for name, (d, *_) in written.items()},
                                "stats": {name: stat for name, (_, *stat) in written.items()}})
        summary.done += 1
        if peak > 1.0:
            logger.warning("signal %s: output peaks at %.2f (above full scale); kept in "
                           "float WAV, not clipped", signal, peak)
        bar.update()

    try:
        loader = make_dataloader(dataset, batch_size=batch_size,
                                 num_workers=0 if jobs <= 1 else min(jobs, LOADER_WORKERS))
        for batch in loader:
            processed = _run_model(model, batch, device_, model_name)
            for i, record in enumerate(batch["metadata"]):
                task = by_signal[record["signal"]]
                enhanced = processed[i, :, : int(batch["lengths"][i])]
                _check_output(enhanced, task, model_name, sample_rate)
                pending.append(pool.submit(_finish_item, task.signal, np.ascontiguousarray(enhanced),
                                           task.output_path, task.heard_path, task.levels,
                                           task.frequencies, sample_rate, simulator, str(device_)))
                while len(pending) > 2 * workers:  # memory stays bounded
                    _collect(pending.popleft())
        while pending:
            _collect(pending.popleft())
    except BaseException:  # a fault or an interruption: record the items already written, then stop
        pool.shutdown(wait=True, cancel_futures=True)
        with contextlib.suppress(OSError):  # the manifest cannot be written either: the error raised says why
            for future in (f for f in pending if f.done() and not f.cancelled() and f.exception() is None):
                _collect(future)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    return summary
