"""A run and its outputs: the name its files carry, and the provenance written beside them.

Naming rule (``submission_<name>_<split>.csv``, ``<name>`` from ``run_name``):

- ``<Model>``, then ``-<tag>`` with ``--tag``, then ``-unprocessed`` with ``--input unprocessed``;
- then, when any other setting that changes a prediction differs from the defaults of
  ``ExperimentConfig``, one readable label per such setting (``gbm``, ``fit=train+valid``,
  ``folds2``, ...) and a 6-hex digest of those settings' values, so that two runs that differ
  in anything (even two audiogram tables) never share a name;
- the data set enters the name only when it is not the results folder's *home* data set:
  the first data set a results folder is used with (recorded in ``home_data_set.json``).
  Its runs keep plain names; another one adds its folder name (``demo_clip2``) and the digest.

So the default run on the demo writes ``submission_NLR1_valid.csv``; ``--predictor gbm``
writes ``submission_NLR1-gbm-<digest>_valid.csv``. What made a file is never guessed from
its name: ``provenance`` (written as ``<submission stem>.run.json``) holds the resolved config,
the data set's identity (metadata file and digest, challenge) and the code version.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import subprocess
from pathlib import Path

from code.config import CODE_DIR, DEFAULTS, FEATURE_FLAGS, ExperimentConfig, fit_splits
from code.config_fields import EACH_FEATURE, applies, in_commands, name_labels, named_value
from code.data.layout import resolve_data_root
from code.keys import bytes_digest, file_digest, settings_digest

PROJECT_DIR = CODE_DIR.parent
HOME_FILE = "home_data_set.json"  # in the results folder: the data set whose runs keep plain names
PROVENANCE_SUFFIX = ".run.json"

# Settings that change a prediction besides model, tag, split and input (in the name already)
# and the data set: field -> its label in a name (``setting(..., label=...)`` in code/config.py),
# in the order labels are written.
_LABELS = name_labels(ExperimentConfig)


def selected_features(cfg) -> tuple[str, ...]:
    """The Stage-2 pair features a run computes: ``--features``, plus the feature a flag of
    ``FEATURE_FLAGS`` names when given (``--haspi``: ``--features stoi,haspi``), each once, in order."""
    names = [n.strip() for n in cfg.features.split(",") if n.strip()]
    return tuple(dict.fromkeys(names + [flag for flag in FEATURE_FLAGS if getattr(cfg, flag)]))


def feature_differences(cfg) -> dict[str, bool]:
    """``{name: True}`` for each Stage-2 feature a run adds to the defaults', ``{name: False}``
    for each it leaves out (so ``--haspi`` differs as it always did: haspi, True)."""
    chosen, default = selected_features(cfg), selected_features(DEFAULTS)
    return {**{n: True for n in chosen if n not in default}, **{n: False for n in default if n not in chosen}}


def data_set(cfg) -> dict:
    """The data set a config reads: ``{"name", "challenge", "metadata_dir"}`` (resolved path,
    the same whatever folder the data root is reached through).

    Raises:
        DataError: when the data root holds no CLIP metadata.
    """
    root = resolve_data_root(Path(cfg.data_root), cfg.challenge)
    folder = root.metadata_dir.resolve()
    name = next((p.parent.name for p in folder.parents if p.name == "cadenza_data"), folder.parent.name)
    return {"name": name, "challenge": root.challenge, "metadata_dir": str(folder)}


def home_data_set(results_dir: Path, current: dict) -> dict:
    """The results folder's home data set; the first caller's ``current`` becomes it."""
    path = Path(results_dir) / HOME_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # exclusive create: shards started together agree on one home
            with open(path, "x", encoding="utf-8") as f:
                json.dump(current, f, indent=1)
            return current
        except FileExistsError:
            pass
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return current  # unreadable: treat this data set as home rather than stop


def differences(cfg, *, home: dict | None = None) -> dict:
    """The settings in which a run differs from the defaults (besides model, tag, split and
    input), as ``{field: value}``; ``"data_set"`` when it is not the results folder's home."""
    out: dict = {}
    current = data_set(cfg)
    home = home if home is not None else home_data_set(Path(cfg.results_dir), current)
    if (current["metadata_dir"], current["challenge"]) != (home.get("metadata_dir"), home.get("challenge")):
        out["data_set"] = current
    for name, label in _LABELS.items():
        if label == EACH_FEATURE:
            out.update(feature_differences(cfg))
        elif applies(cfg, name) and named_value(cfg, name) != named_value(DEFAULTS, name):
            out[name] = named_value(cfg, name)
    return out


def setting_label(name: str, value) -> str:
    """How a setting that differs from the defaults is written in run names and tables
    (``--predictor gbm`` -> ``gbm``); the setting's name for one without a label."""
    if callable(_LABELS.get(name)):
        return _LABELS[name](value)
    return f"no-{name}" if value is False else name  # a Stage-2 feature left out, or added


def _safe(text: str) -> str:
    return re.sub(r"[^\w.+=-]", "_", str(text))[:40]


def run_suffix(cfg, *, home: dict | None = None) -> str:
    """``""`` for a run with default settings on the home data set; else labels and a digest."""
    diffs = differences(cfg, home=home)
    if not diffs:
        return ""
    labels = [_safe(diffs["data_set"]["name"])] if "data_set" in diffs else []
    labels += [_safe(setting_label(name, value)) for name, value in diffs.items() if name != "data_set"]
    return "-".join(labels + [settings_digest(diffs)[:6]])


def run_name(cfg, model: str, *, home: dict | None = None) -> str:
    """What a model's files in this run are called: ``NLR1``, ``NLR1-<tag>``,
    ``NLR1-unprocessed``, ``NLR1-gbm-3f9a1c`` (see the module's naming rule)."""
    name = f"{model}-{cfg.tag}" if cfg.tag else model
    if cfg.input != "signals":
        name += f"-{cfg.input}"
    suffix = run_suffix(cfg, home=home)
    return f"{name}-{suffix}" if suffix else name


def code_version() -> dict:
    """The code that ran: the git commit when there is one, and a digest of the project's
    Python sources (``main.py``, ``compute_csvs.py``, ``code/``), which also covers edits."""
    files = [PROJECT_DIR / "main.py", PROJECT_DIR / "compute_csvs.py", *sorted(CODE_DIR.rglob("*.py"))]
    sources = bytes_digest(part for path in files if path.is_file()
                           for part in (str(path.relative_to(PROJECT_DIR)), path.read_bytes()))
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_DIR, capture_output=True,
                                text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"git_commit": commit, "sources_digest": sources}


def provenance(cfg, model: str, metadata_file: Path) -> dict:
    """What made a submission: the run's name and model, how it differs from the defaults,
    its data set (the predicted split's metadata file and digest, and those of the fit
    splits), the resolved config and the code version."""
    current = data_set(cfg)
    folder = Path(current["metadata_dir"])
    fit_files = {s: folder / f"{s}_metadata.json" for s in fit_splits(cfg)}
    metadata_file = Path(metadata_file).resolve()
    return {
        "run": run_name(cfg, model), "model": model, "tag": cfg.tag, "split": cfg.split,
        "input": cfg.input, "challenge": current["challenge"], "target": cfg.target,
        "data_set": {**current, "metadata_file": str(metadata_file),
                     "metadata_digest": file_digest(metadata_file),
                     "fit_metadata": {s: {"file": str(p), "digest": file_digest(p) if p.is_file() else None}
                                      for s, p in fit_files.items()}},
        "differs_from_defaults": {k: v for k, v in differences(cfg).items() if k != "data_set"},
        "config": dataclasses.asdict(cfg),
        "code_version": code_version(),
    }


# Options a suggested command may spell out: all but those that change only the resources
# or name other work (``setting(..., command=False)`` in code/config.py).
_IN_COMMAND = in_commands(ExperimentConfig)


def command_for(config: dict, *, model: str) -> str:
    """The ``python main.py`` command that makes ``model``'s run with a saved config's
    settings (only the options that differ from the defaults)."""
    parts = ["python", "main.py", "--model", model]
    for f in dataclasses.fields(DEFAULTS):
        if f.name not in _IN_COMMAND or f.name not in config:
            continue
        value, default = config[f.name], getattr(DEFAULTS, f.name)
        if f.name == "data_root" and Path(value).resolve() == (PROJECT_DIR / default).resolve():
            continue
        if f.name == "results_dir" and Path(value).resolve() == (PROJECT_DIR / default).resolve():
            continue
        if f.name == "challenge" or value == default:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else f"--no-{flag[2:]}")
        elif isinstance(value, dict):
            parts += [flag, shlex.quote(json.dumps(value))]
        else:
            parts += [flag, shlex.quote(str(value))]
    return " ".join(parts)
