"""Stage 1's plan: which signals a model must enhance, and why.

Each finished signal is recorded in a manifest (``.stage1_manifest.jsonl``) with a key
over everything that determines it (model name, its settings and the digest of its
code, audiogram, input kind, the input file's content, the simulator and its code) and
the digest of every file written. A signal is reused only when its key matches and its
files are on disk with those digests; everything else is recomputed, with the first part
of the key that changed as the reason.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from clarity.utils.audiogram import Audiogram

from code.data.layout import SplitData
from code.io_utils import append_jsonl, read_jsonl, repair_jsonl
from code.keys import code_digest, file_digest, settings_digest
from code.models.audiograms import audiogram_to_dict, common_frequencies
from code.models.hearing_aid_models import MODELS, make_model, model_settings
from code.resources import available_cpus

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
    record: dict
    parts: dict = field(default_factory=dict)  # digest of each part of the key (for reasons)
    input_stat: tuple[int, int] = (0, 0)  # the input's (size, mtime_ns) when its digest was taken

    def outputs(self) -> list[Path]:
        return [self.output_path] + ([self.heard_path] if self.heard_path else [])


@dataclass
class StageSummary:
    """What Stage 1 did: ``done`` signals enhanced, ``reused`` from earlier runs,
    and why each of the ``done`` ones had to be computed."""

    done: int = 0
    reused: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


# Why a signal is computed (the manifest decides). A changed key is put down to the first
# part that differs, in the order of KEY_PARTS; an entry without parts (written before parts
# were recorded) to OLD_ENTRY.
NEW, DAMAGED, FORCED, OLD_ENTRY = ("new", "output missing or damaged", "--recompute",
                                   "changed (entry without parts)")
KEY_PARTS = {"model_code": "model code", "model_settings": "model settings",
             "audiogram": "audiogram", "input": "input audio", "simulator": "simulator"}
REASONS = (NEW, *KEY_PARTS.values(), DAMAGED, FORCED, OLD_ENTRY)


def output_dir(results_dir: Path, model_name: str, input_kind: str, tag: str = "") -> Path:
    """Where Stage 1 writes a model's audio: ``results/<Model>[-<tag>]/`` for
    ``signals``, ``.../from_unprocessed/`` for the hearing-aid chain.

    Raises:
        ValueError: when ``tag`` holds a path separator or starts with a dot.
    """
    if tag and ("/" in tag or "\\" in tag or tag.startswith(".")):
        raise ValueError(f"output tag {tag!r} must be a plain name (no '/', no leading '.')")
    base = Path(results_dir) / (f"{model_name}-{tag}" if tag else model_name)
    return base if input_kind == "signals" else base / "from_unprocessed"


def model_output_path(out_dir: Path, signal: str) -> Path:
    """The file the model's own output for ``signal`` is written to (for ``unprocessed``
    input: before the hearing-loss simulation; what HAAQI judges)."""
    return out_dir / f"{signal}.wav"


def scored_path(out_dir: Path, signal: str, input_kind: str) -> Path:
    """The file Stage 2 transcribes for ``signal``."""
    if input_kind == "signals":
        return model_output_path(out_dir, signal)
    return out_dir / "heard" / f"{signal}.wav"


def _manifest_entries(manifest: Path) -> dict[str, dict]:
    """The last manifest line of each signal (later lines supersede earlier ones)."""
    repair_jsonl(manifest)
    return {r["signal"]: r for r in read_jsonl(manifest) if isinstance(r.get("signal"), str)}


def _outputs_intact(task: EnhanceTask, entry: dict, out_dir: Path) -> bool:
    digests = entry.get("outputs")
    if not isinstance(digests, dict):
        return False
    stats = entry.get("stats") if isinstance(entry.get("stats"), dict) else {}
    for path in task.outputs():
        name = str(path.relative_to(out_dir))
        if name not in digests or not path.is_file() or path.stat().st_size == 0:
            return False
        if file_stat(path) == tuple(stats.get(name, ())):
            continue  # untouched since it was written and digested: no need to read it again
        if file_digest(path) != digests[name]:
            return False
    return True


def file_stat(path: Path) -> tuple[int, int]:
    """(size, mtime_ns): a file rewritten or truncated since gets another."""
    stat = Path(path).stat()
    return stat.st_size, stat.st_mtime_ns


def _changed_part(old: dict | None, new: dict) -> str:
    """The reason for a changed key: the first part of it that differs."""
    if not isinstance(old, dict):
        return OLD_ENTRY
    for part, reason in KEY_PARTS.items():
        if old.get(part) != new[part]:
            return reason
    return OLD_ENTRY  # same parts, another key: the key's rule itself changed


def plan_tasks(split_data: SplitData, *, model_name: str, audiograms: dict[str, Audiogram],
          out_dir: Path, input_kind: str, sample_rate: int, simulator: str,
          recompute: bool, jobs: int, results_dir: Path | None = None, tag: str = "",
          ) -> tuple[object, list[tuple[EnhanceTask, str | None]]]:
    """The model, and each record's task and why it must be computed (None: reuse its files)."""
    model = make_model(model_name, sample_rate=sample_rate,  # fails fast on a bad name
                       audiogram_frequencies=common_frequencies(audiograms), results_dir=results_dir, tag=tag)
    fixed = {"model": model_name, "model_settings": model_settings(model),
             "model_code": code_digest(MODELS[model_name]),
             "input_kind": input_kind, "sample_rate": sample_rate}
    if input_kind == "unprocessed":
        from code.hearing_loss.simulator import (  # only this route needs MSBG
            simulate_hearing_loss,
            simulator_settings,
        )

        fixed["simulator"] = simulator_settings(simulator)  # raises for an unknown name
        fixed["simulator_code"] = code_digest(simulate_hearing_loss)
    fixed_parts = {"model_code": fixed["model_code"],
                   "model_settings": settings_digest([model_name, fixed["model_settings"],
                                                      input_kind, sample_rate]),
                   "simulator": settings_digest([fixed.get("simulator"), fixed.get("simulator_code")])}
    entries = _manifest_entries(out_dir / MANIFEST)
    records = split_data.records
    inputs = [split_data.layout.audio_path(r["signal"], input_kind) for r in records]
    input_stats = [file_stat(path) for path in inputs]

    def input_digest(i: int) -> str:
        """The input's digest; the manifest's when the file is unchanged since (size, mtime)."""
        entry = entries.get(records[i]["signal"]) or {}
        known = (entry.get("parts") or {}).get("input")
        if known and tuple(entry.get("input_stat", ())) == input_stats[i]:
            return known
        return file_digest(inputs[i])

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:  # hashing is I/O-bound
        input_digests = list(pool.map(input_digest, range(len(records))))

    def plan_one(i: int) -> tuple[EnhanceTask, str | None]:
        signal = records[i]["signal"]
        audiogram = audiograms[records[i]["hearing_loss"]]
        key = settings_digest({**fixed, "audiogram": audiogram_to_dict(audiogram),
                               "input": input_digests[i]})
        parts = {**fixed_parts, "audiogram": settings_digest(audiogram_to_dict(audiogram)),
                 "input": input_digests[i]}
        task = EnhanceTask(
            signal, inputs[i], model_output_path(out_dir, signal),
            scored_path(out_dir, signal, input_kind) if input_kind == "unprocessed" else None,
            tuple(float(x) for x in audiogram.levels),
            tuple(float(x) for x in audiogram.frequencies), key, records[i], parts, input_stats[i])
        entry = entries.get(signal)
        if recompute:
            return task, FORCED
        if entry is None:
            return task, NEW
        if entry.get("key") != key:
            return task, _changed_part(entry.get("parts"), parts)
        return task, None if _outputs_intact(task, entry, out_dir) else DAMAGED

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        plan = list(pool.map(plan_one, range(len(records))))
    for task, reason in plan:  # entries from before stats were kept: record them once, so
        entry = entries.get(task.signal)  # later reruns need not read the files again
        if reason is None and entry is not None and ("stats" not in entry or "input_stat" not in entry):
            append_jsonl(out_dir / MANIFEST, {**entry, "input_stat": list(task.input_stat),
                                              "stats": {str(p.relative_to(out_dir)): list(file_stat(p))
                                                        for p in task.outputs()}})
    return model, plan


def check_outputs_current(
    split_data: SplitData,
    *,
    model_name: str,
    audiograms: dict[str, Audiogram],
    results_dir: Path,
    input_kind: str = "signals",
    sample_rate: int = 44100,
    simulator: str = "fast",
    tag: str = "",
) -> list[str]:
    """Signals whose Stage-1 audio on disk was not made with these settings.

    Empty when every record's files are recorded in the manifest under the
    current key and are intact; Stage 2 alone should refuse to score otherwise.
    """
    out_dir = output_dir(results_dir, model_name, input_kind, tag)
    _, plan = plan_tasks(split_data, model_name=model_name, audiograms=audiograms, out_dir=out_dir,
                    input_kind=input_kind, sample_rate=sample_rate, simulator=simulator,
                    recompute=False, jobs=available_cpus(), results_dir=results_dir, tag=tag)
    return [task.signal for task, reason in plan if reason is not None]
