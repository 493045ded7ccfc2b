"""What the HTML report shows per signal, gathered from the files runs leave behind.

A run is found by its submission CSV and the ``.run.json`` beside it (``code.runs``):
the provenance names the model, tag, input, split, the data set's metadata file and the
ASR settings, from which the model's audio folder (``code.enhancement_plan.output_dir``, beside the
CSV) and its ``scores.<split>.<digest>.jsonl`` (both ears' transcripts and words-correct
scores) follow. Each prompt word is marked heard or missed from the official scorer's
own alignment (``code.evaluation.asr.word_marks``), so an ear's marks add up to its words correct.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from code.config import DEFAULTS
from code.data.layout import locate_split
from code.data.metadata import load_metadata
from code.errors import DataError, shown
from code.io_utils import read_jsonl
from code.keys import settings_digest
from code.enhancement_plan import output_dir, scored_path
from code.evaluation.outputs.report_names import report_labels
from code.runs import PROVENANCE_SUFFIX

logger = logging.getLogger(__name__)

EARS = ("left", "right")
NAME_FIELDS = ("run", "model", "split", "input", "tag")  # provenance fields that enter paths


class UnsafeProvenance(DataError):
    """A run's provenance holds a name that is no plain file-name part: used in a path, it
    could reach outside the results folder, so nothing is written from it."""


@dataclass(frozen=True)
class RunFiles:
    """One run as the report reads it: its names, predictions and where its files lie."""

    name: str  # the run's name (code.runs.run_name), e.g. NLR1-unprocessed
    model: str
    csv: Path
    provenance: dict
    predictions: dict[str, float]
    audio_dir: Path  # the model's Stage-1 output folder
    scores_file: Path | None  # scores.<split>.<digest>.jsonl, None when the run has none

    @property
    def input(self) -> str:
        return self.provenance.get("input", "signals")

    @property
    def split(self) -> str:
        return self.provenance["split"]


def provenance_path(csv: Path) -> Path:
    """The ``.run.json`` written beside a submission CSV."""
    return Path(csv).with_name(Path(csv).stem + PROVENANCE_SUFFIX)


def _config_of(provenance: dict):
    fields = {f.name for f in dataclasses.fields(DEFAULTS)}
    config = provenance.get("config")
    return dataclasses.replace(DEFAULTS, **{k: v for k, v in (config if isinstance(config, dict) else {}).items()
                                            if k in fields})


def _plain_name(value) -> bool:
    return (isinstance(value, str) and value not in (".", "..") and value.isprintable()
            and not any(c in value for c in "/\\") and not value.startswith(".") and len(value) <= 255)


def check_names(provenance: dict, where: Path) -> None:
    """Refuse a provenance whose run, model, split, input or tag is no plain name part.

    Raises:
        UnsafeProvenance: naming the file, the field and its value.
    """
    if not isinstance(provenance, dict):
        raise UnsafeProvenance(f"{where}: not a run's provenance (a JSON object was expected)")
    for field in NAME_FIELDS:
        value = provenance.get(field, "" if field == "tag" else "signals" if field == "input" else None)
        if field == "tag" and value == "":
            continue
        if not _plain_name(value):
            raise UnsafeProvenance(
                f"{where}: its {field!r} is {shown(value)}, not a plain name (letters, digits, '-', "
                "'_', '.', '=', '+'; no '/', '\\' or leading '.'): a page named from it could "
                "be written outside the results folder, so none is. The file was edited or is not "
                "this project's: remake the run, or move its CSV out of the folder compared")


def load_run(csv: Path) -> RunFiles:
    """The run behind a submission CSV (its ``.run.json`` must be beside it).

    Raises:
        DataError: when the provenance is missing or unreadable, or names as its Whisper model
            a path that holds no model (refused before anything under it is read).
        UnsafeProvenance: when a name in it is no plain name part (``check_names``).
    """
    from code.evaluation.asr.settings import asr_settings, model_path_problem
    from code.evaluation.comparison.metrics import read_submission

    csv = Path(csv)
    path = provenance_path(csv)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{csv}: no readable provenance {path.name} beside it ({e}); the report "
                        "needs the run's files") from e
    check_names(record, path)
    cfg = _config_of(record)
    problem = model_path_problem(cfg.asr_engine, asr_settings(cfg).model, option="its Whisper model")
    if problem:
        raise DataError(f"{path}: {problem}")
    folder = output_dir(csv.parent, record["model"], record.get("input", "signals"), record.get("tag", ""))
    scores = folder / f"scores.{record['split']}.{settings_digest(asr_settings(cfg).cache_key())}.jsonl"
    return RunFiles(record["run"], record["model"], csv, record, read_submission(csv), folder,
                    scores if scores.is_file() else None)


def page_name(provenance: dict, *, baseline: str | None = None) -> str:
    """``report_<split>_<input>[_<tag>][_<suffix>][_<report settings>]``: the hearing-aid
    report's naming rule (``code.pipeline_report.report_name``), read from a run's
    provenance (the suffix is what its run name adds after model, tag and input; the
    report settings, ``report_labels``, from its config, with ``baseline`` when given in
    place of the run's), so two runs or reports of other settings never share a page.

    Raises:
        UnsafeProvenance: when a name in the provenance is no plain name part.
    """
    check_names(provenance, Path("the run's provenance"))
    prefix = provenance["model"] + (f"-{provenance['tag']}" if provenance.get("tag") else "")
    if provenance.get("input", "signals") != "signals":
        prefix += f"-{provenance['input']}"
    suffix = provenance["run"][len(prefix) + 1:] if provenance["run"].startswith(prefix + "-") else ""
    try:
        cfg = _config_of(provenance)
        cfg = dataclasses.replace(cfg, input=provenance.get("input", "signals"),
                                  **({"baseline": baseline} if baseline is not None else {}))
        labels = report_labels(cfg)
    except (AttributeError, TypeError, ValueError) as e:
        raise UnsafeProvenance(f"the run {shown(provenance['run'])}: its config's report settings "
                               f"(baseline, quality, alpha) cannot name a page: {e}") from e
    name = "_".join([f"report_{provenance['split']}_{provenance.get('input', 'signals')}",
                     *([provenance["tag"]] if provenance.get("tag") else []), *([suffix] if suffix else []),
                     *labels])
    if not _plain_name(name):
        raise UnsafeProvenance(f"the run {shown(provenance['run'])}: its report settings make the page "
                               f"name {shown(name)}, not a plain file name; none is written")
    return name


def records_of(run: RunFiles) -> list[dict]:
    """The metadata records of the run's split (its data set's own metadata file)."""
    path = Path(run.provenance["data_set"]["metadata_file"])
    if not path.is_file():
        raise DataError(f"{run.csv}: its data set's metadata {path} is gone")
    return load_metadata(path)


def data_audio(run: RunFiles, kind: str) -> dict[str, Path]:
    """``{signal: file}`` of the data set's own audio of ``kind`` (``signals`` or
    ``unprocessed``) for the run's split; those that exist only."""
    data = run.provenance["data_set"]
    try:
        layout = locate_split(Path(data["metadata_dir"]).parent, run.split,
                              challenge=run.provenance.get("challenge", ""), need_audio=False)
    except DataError as e:
        logger.warning("report: no %s audio for %s: %s", kind, run.name, e)
        return {}
    out = {}
    for r in records_of(run):
        path = layout.audio_path(r["signal"], kind)
        if path.is_file():
            out[r["signal"]] = path
    return out


def read_scores(run: RunFiles) -> dict[str, dict]:
    """``{signal: scores record}`` of the run's scores file (empty without one)."""
    if run.scores_file is None:
        return {}
    return {r["signal"]: r for r in read_jsonl(run.scores_file) if isinstance(r.get("signal"), str)}


def ear_view(marker, prompt: str, transcript: str) -> dict:
    """One ear as the page draws it: the transcript, each normalised prompt word with 1
    (heard) or 0 (missed), and the words-correct count out of the prompt's words."""
    marks = marker.marks(prompt, transcript)
    return {"text": transcript, "marks": [[word.lower(), int(heard)] for word, heard in marks],
            "correct": sum(heard for _, heard in marks), "n": len(marks)}


def model_audio(run: RunFiles, signal: str) -> list[tuple[str, Path]]:
    """The model's audio of a signal, labelled: its output and, after the simulator
    (``--input unprocessed``), what the listener heard."""
    out = [(f"{run.model} output", run.audio_dir / f"{signal}.wav")]
    if run.input == "unprocessed":
        out.append((f"{run.model} heard", scored_path(run.audio_dir, signal, run.input)))
    return out


def _finite(x) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _marks_agree(ears: list[dict], scored) -> bool:
    """Whether each ear's marks count the words-correct fraction its scores record holds
    (they do unless the prompt changed since the scores were made)."""
    if not isinstance(scored, list) or len(scored) != len(ears):
        return True  # nothing to compare with
    return all(ear["n"] == 0 or not isinstance(s, (int, float)) or abs(ear["correct"] / ear["n"] - s) < 1e-9
               for ear, s in zip(ears, scored))


def signal_rows(runs: list[RunFiles], *, baseline: str, target: str = "correctness",
                records: list[dict] | None = None) -> list[dict]:
    """One dict per signal of ``records`` (default: the runs' split), in metadata order: ``signal``, ``category``,
    ``prompt``, ``label`` (0..100 or None), ``runs`` (per run: ``pred``, ``change`` against
    the baseline's run, ``ears`` as ``ear_view`` or None) and ``audio`` (``[label, path]``
    of the data set's audio, then each run's ``model_audio``, files that exist)."""
    from code.evaluation.asr.word_marks import WordMarker

    marker = WordMarker()
    first = runs[0]
    records = records_of(first) if records is None else records
    unprocessed = data_audio(first, "unprocessed")
    heard = data_audio(first, "signals") if first.input == "signals" else {}
    scores = [read_scores(run) for run in runs]
    base = next((run for run in runs if run.model == baseline), None)
    rows = []
    disagree: set[str] = set()
    for r in records:
        signal = r["signal"]
        audio = [["unprocessed", unprocessed[signal]]] if signal in unprocessed else []
        if signal in heard:
            audio.append(["signals (as heard)", heard[signal]])
        views = []
        for run, by_signal in zip(runs, scores):
            pred = _finite(run.predictions.get(signal))
            base_pred = _finite(base.predictions.get(signal)) if base is not None else None
            record = by_signal.get(signal)
            ears = ([ear_view(marker, r["prompt"], text) for text in record["transcripts"]]
                    if record else None)
            if ears and not _marks_agree(ears, record.get("ear_correctness")):
                disagree.add(signal)
            views.append({"pred": pred, "change": (None if pred is None or base_pred is None
                                                   else pred - base_pred), "ears": ears})
            audio += [[label, path] for label, path in model_audio(run, signal) if path.is_file()]
        label = r.get(target)
        rows.append({"signal": signal, "category": r["hearing_loss"], "prompt": r["prompt"],
                     "label": None if label is None else 100.0 * float(label), "runs": views,
                     "audio": audio, "marks_disagree": signal in disagree})
    return rows
