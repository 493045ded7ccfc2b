"""Compare submissions side by side: find them, match each to its split's labels, pair them.

- ``find_submissions``: the submission CSVs among files and folders. A headerless
  ``evalai_`` (or official ``ICASSP20xx_``) copy of a submission already found is
  dropped; CSVs that are not submissions (reports, configs) are left out quietly.
- ``load_labels``: for a data root, ``{split: {signal: (truth 0..100, hearing_loss, prompt)}}``
  for every split whose metadata carries the target.
- ``paired_difference``: a model against a baseline on shared signals, with a 95%
  bootstrap interval that resamples prompts (all records of a prompt together).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from code.errors import shown
from code.evaluation.comparison.metrics import SubmissionError, clip_metrics, ncc, read_submission, rmse
from code.runs import PROVENANCE_SUFFIX

logger = logging.getLogger(__name__)

_OWN_NAME = re.compile(r"^(submission|evalai)_(?P<tag>.+)_(?P<split>train|valid|eval)$")
_OFFICIAL_NAME = re.compile(r"^ICASSP20\d\d_(?P<split>train|valid|eval)_(?P<team>.+)$")
SUBMISSION_HEADERS = {"signal_id", "signal"}


@dataclass(frozen=True)
class Truth:
    """One listener's result: ``correctness x 100`` (0..100), category and lyric line."""

    value_0_100: float
    hearing_loss: str
    prompt: str


@dataclass
class Submission:
    """A submission CSV and what it predicts (0..100 by signal)."""

    path: Path
    name: str  # the model tag for this project's files, else the file name
    predictions: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    provenance: dict | None = None  # the run's ``.run.json`` beside it (None: a bare CSV)


def _first_row(path: Path) -> list[str] | None:
    with Path(path).open(newline="", encoding="utf-8") as f:
        return next((row for row in csv.reader(f) if row and any(c.strip() for c in row)), None)


def not_a_submission(path: Path) -> str:
    """Why a CSV that ``is_submission_csv`` refuses is not one: its first row, and what was expected."""
    return (f"not a submission CSV: its first row is {shown(','.join(_first_row(path) or []))}; expected "
            "the header signal_ID,intelligibility_score (or signal,score rows without a header)")


def is_submission_csv(path: Path) -> bool:
    """True when the first row is a submission header or a ``signal,number`` row."""
    try:
        first = _first_row(path)
    except (OSError, UnicodeDecodeError, csv.Error):
        return True  # unreadable: let the reader name the problem
    if first is None:
        return True
    if first[0].strip().lower() in SUBMISSION_HEADERS:
        return True
    if len(first) != 2:
        return False
    try:
        float(first[1])
    except ValueError:
        return False
    return True


def submission_name(path: Path) -> str:
    """``submission_NLR1_valid.csv`` -> ``NLR1``; other files keep their file name."""
    match = _OWN_NAME.match(Path(path).stem)
    return match["tag"] if match else Path(path).name


def find_submissions(paths: list[Path]) -> list[Submission]:
    """Submission CSVs named, or inside named folders (not recursive), read and deduplicated.

    ``evalai_`` files and official-name copies whose predictions equal those of a
    ``submission_`` file already found are dropped; files that are not
    submissions (e.g. ``hearing_aid_report_*.csv``) are skipped with a debug note.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.glob("*.csv") if p.is_file())
        elif path.is_file():
            found.append(path)
        else:
            logger.warning("no such file or folder: %s", path)
    named = {p.resolve() for p in paths if p.is_file()}
    for path in list(found):
        if path.resolve() not in named and (_OFFICIAL_NAME.match(path.stem.removesuffix("_leaderboard"))
                                            or path.name.startswith("evalai_")):
            logger.debug("an upload copy, not a model (left out): %s", path)
            found.remove(path)
    unique = list({p.resolve(): p for p in found}.values())
    # submission_ files first, so copies are recognised as copies
    unique.sort(key=lambda p: (not p.name.startswith("submission_"), str(p)))
    submissions: list[Submission] = []
    for path in unique:
        if not is_submission_csv(path):
            if path.resolve() in named:  # named on the command line: say why it is not compared
                submissions.append(Submission(path, path.name, error=not_a_submission(path)))
            else:
                logger.debug("not a submission (left out): %s", path)
            continue
        item = Submission(path, submission_name(path))
        try:
            item.predictions = read_submission(path)
        except (SubmissionError, OSError, UnicodeDecodeError) as e:
            item.error = str(e)
        item.provenance = read_provenance(path)
        if not item.error and _is_copy(path, item.predictions, submissions):
            logger.debug("copy of a submission already listed: %s", path)
            continue
        submissions.append(item)
    return submissions


def read_provenance(path: Path) -> dict | None:
    """The ``<stem>.run.json`` written beside a submission by ``main.py`` (None when absent
    or unreadable: the CSV is then compared as a bare file)."""
    beside = Path(path).with_suffix(PROVENANCE_SUFFIX)
    try:
        record = json.loads(beside.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("data_set"), dict) else None


def _is_copy(path: Path, predictions: dict[str, float], seen: list[Submission]) -> bool:
    if path.name.startswith("submission_"):
        return False
    return any(s.predictions == predictions for s in seen if not s.error)


def load_labels(metadata_files: dict[str, Path], *, target: str = "correctness", skip_invalid: bool = False
                ) -> tuple[dict[str, dict[str, Truth]], list[str]]:
    """Labels of every split whose metadata carries ``target`` (0..1) on every record;
    with ``skip_invalid`` (a run made with ``--skip-invalid``), records with a problem of
    their own are left out (logged) instead of refusing the file.

    Returns ``({split: {signal: Truth}}, [splits found without labels])``.

    Raises:
        DataError: naming the file and problems, for metadata that is broken.
    """
    from code.data.metadata import check_records, load_metadata
    from code.errors import DataError

    labels: dict[str, dict[str, Truth]] = {}
    unlabelled: list[str] = []
    for split, path in metadata_files.items():
        if not Path(path).is_file():
            continue
        records = load_metadata(path)
        if not records or any(target not in r for r in records):
            unlabelled.append(split)
            continue
        problems = check_records(records, require_correctness=target == "correctness")
        if problems and skip_invalid and all(p.signal for p in problems):
            bad = {p.signal for p in problems}
            logger.warning("%s: %d invalid record(s) left out of the labels, as the run left them out "
                           "(--skip-invalid; e.g. %s)", path, len(bad), problems[0])
            records, problems = [r for r in records if r.get("signal") not in bad], []
        if problems:
            listing = "\n  ".join(str(p) for p in problems[:10])
            raise DataError(f"{path} cannot be ground truth ({len(problems)} problem(s)):\n  {listing}")
        labels[split] = {r["signal"]: Truth(100.0 * float(r[target]), r["hearing_loss"], r["prompt"])
                         for r in records}
    return labels, unlabelled


def covering_split(predictions: dict[str, float], labels: dict[str, dict[str, Truth]]) -> str | None:
    """The split holding most of the submission's signals (None when it shares none)."""
    best, overlap = None, 0
    for split, truth in labels.items():
        shared = sum(1 for s in predictions if s in truth)
        if shared > overlap:
            best, overlap = split, shared
    return best


@dataclass
class PairedDifference:
    """``model - baseline`` on shared signals, with 95% bootstrap intervals (prompts resampled)."""

    model: str
    baseline: str
    n: int
    d_rmse: float
    d_rmse_ci: tuple[float, float]
    d_ncc: float
    d_ncc_ci: tuple[float, float]

    def to_dict(self) -> dict:
        return {"model": self.model, "baseline": self.baseline, "n": self.n,
                "dRMSE": self.d_rmse, "dRMSE_ci95": list(self.d_rmse_ci),
                "dNCC": self.d_ncc, "dNCC_ci95": list(self.d_ncc_ci)}


def paired_difference(model: dict[str, float], baseline: dict[str, float],
                      truth: dict[str, Truth], *, names: tuple[str, str] = ("model", "baseline"),
                      n_boot: int = 2000, seed: int = 0) -> PairedDifference | None:
    """ΔRMSE and ΔNCC (model minus baseline) on the signals both predict and ``truth`` labels.

    The 95% interval comes from ``n_boot`` bootstrap resamples of prompts: every
    record of a drawn prompt enters together, so records that share a lyric line
    are not treated as independent. None when fewer than 3 signals are shared.
    """
    shared = [s for s in model if s in baseline and s in truth]
    if len(shared) < 3:
        return None
    p = np.array([model[s] for s in shared])
    b = np.array([baseline[s] for s in shared])
    y = np.array([truth[s].value_0_100 for s in shared])
    prompts = [truth[s].prompt for s in shared]
    d_rmse_ci = prompt_bootstrap(prompts, lambda i: rmse(p[i], y[i]) - rmse(b[i], y[i]),
                                 n_boot=n_boot, seed=seed)
    d_ncc_ci = prompt_bootstrap(prompts, lambda i: ncc(p[i], y[i]) - ncc(b[i], y[i]),
                                n_boot=n_boot, seed=seed)
    return PairedDifference(
        names[0], names[1], len(shared),
        rmse(p, y) - rmse(b, y), d_rmse_ci,
        ncc(p, y) - ncc(b, y), d_ncc_ci)


def prompt_bootstrap(prompts: list[str], statistic, *, n_boot: int = 2000,
                     seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of ``statistic(indices)`` over items grouped by prompt.

    Each of ``n_boot`` resamples draws prompts with replacement and passes the
    indices of every item of each drawn prompt (records that share a lyric line
    enter together: they are not independent). Non-finite statistics are left
    out; ``(nan, nan)`` when none is finite.
    """
    groups: dict[str, list[int]] = {}
    for i, prompt in enumerate(prompts):
        groups.setdefault(prompt, []).append(i)
    members = [np.array(m) for m in groups.values()]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        drawn = rng.integers(0, len(members), len(members))
        values.append(statistic(np.concatenate([members[g] for g in drawn])))
    return _interval(values)


def _interval(values: list[float]) -> tuple[float, float]:
    finite = np.array([v for v in values if math.isfinite(v)])
    if finite.size == 0:
        return (math.nan, math.nan)
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def metrics_by_category(predictions: dict[str, float], truth: dict[str, Truth]) -> dict:
    """``{category: {"n", "RMSE"}}`` on the signals both hold."""
    out = {}
    for category in sorted({truth[s].hearing_loss for s in predictions if s in truth}):
        shared = [s for s in predictions if s in truth and truth[s].hearing_loss == category]
        p = np.array([predictions[s] for s in shared])
        y = np.array([truth[s].value_0_100 for s in shared])
        out[category] = {"n": len(shared), "RMSE": rmse(p, y)}
    return out


def overall_metrics(predictions: dict[str, float], truth: dict[str, Truth]) -> dict:
    """RMSE, Std, NCC, KT on shared signals, with coverage counts."""
    shared = [s for s in predictions if s in truth]
    figures = clip_metrics(np.array([predictions[s] for s in shared]),
                           np.array([truth[s].value_0_100 for s in shared]))
    figures.update(n=len(shared), absent_from_truth=len(predictions) - len(shared),
                   truth_not_predicted=len(truth) - len(shared))
    return figures
