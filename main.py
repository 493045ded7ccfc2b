"""Cadenza CLIP experiment runner: enhance (Stage 1), then score and predict (Stage 2).

    python main.py                                # the demo: NLR1 on the demo valid split
    python main.py --data-root /data/clip1 --split valid --model NLR1
    python main.py --help                         # every field of the config below

Edit CONFIG to set up your experiment; every field can also be overridden on
the command line (``--field-name value``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

# ----------------------------------------------------------------------------
# The experiment. Edit here, or override any field on the command line.
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExperimentConfig:
    # data (relative paths here are relative to this file's folder; on the command line, to the current one)
    data_root: str = "data/demo"  # folder holding cadenza_data/ (or cadenza_data/ itself, or cadenza_data/clip2/); the demo ships with the project
    challenge: str = ""  # clip1 or clip2; empty: detected from the data root's layout
    split: str = "valid"  # the split to predict
    input: str = "signals"  # model input: signals (as heard, official) or unprocessed (+ hearing-loss simulation after the model)
    target: str = "correctness"  # what listeners' labels measure: correctness (words, 0..1) or phoneme_correctness (CLIP2)
    skip_invalid: bool = False  # leave invalid records out (listed in results/) instead of stopping
    sample_rate: int = 44100  # audio is resampled to this rate on loading
    # enhancement (Stage 1)
    model: str = "NLR1"  # the hearing-aid model, a name registered in code/models/hearing_aid_models.py MODELS
    models: str = ""  # comma-separated models to compare (overrides --model); writes a hearing-aid report
    # Audiogram per hearing-loss category, {"Mild": {"levels": [...], "frequencies": [...]}}.
    # Categories left out use pyclarity's AUDIOGRAM_REF / AUDIOGRAM_MILD / AUDIOGRAM_MODERATE.
    audiograms: dict = field(default_factory=dict)
    msbg: str = "fast"  # hearing-loss simulator for --input unprocessed: fast (this project's) or reference (pyclarity's Ear)
    device: str = ""  # where torch models run: cuda or cpu (empty: cuda when available)
    batch_size: int = 4  # signals per Stage-1 batch
    jobs: int = 0  # worker processes for Stage 1 (0: the CPUs this process may use)
    tag: str = ""  # a name for this configuration: outputs go to results/<Model>-<tag>/, submission_<Model>-<tag>_<split>.csv
    # ASR and features (Stage 2)
    asr_engine: str = "faster-whisper"  # faster-whisper or openai-whisper (the official baseline's)
    asr_model: str = "tiny.en"  # Whisper model name or path; tiny.en for faster-whisper ships offline
    asr_models: str = ""  # comma-separated Whisper models scored in one run (overrides --asr-model); features per model
    asr_compute_type: str = "float32"  # faster-whisper only: float32 (reproducible across CPUs) or int8 (faster)
    asr_device: str = "cpu"  # cpu or cuda, for Whisper
    asr_batch_size: int = 8  # ears per batched first-window decode
    # prediction
    predictor: str = "logistic"  # how features become a 0..100 prediction (code/evaluation/predictors.py PREDICTORS)
    feature: str = ""  # the feature column the logistic predictors use (empty: the better-ear ASR score)
    scores: str = ""  # per-signal feature files (JSONL, comma-separated) for the split: skip the audio stages
    train_scores: str = ""  # feature files of the fit split (default: official file or computed)
    fit_split: str = "train"  # labelled split(s) the predictor is fitted on: train, valid, or train,valid
    folds: int = 5  # folds (grouped by prompt) for out-of-fold predictions on records of the fit split
    seed: int = 0  # seed of the folds and of learned predictors
    team_id: str = ""  # e.g. T001: also write the organisers' file names (ICASSP2026_<split>_<TEAM>.csv)
    # running
    results_dir: str = "results"  # where everything is written
    stages: str = "1,2"  # which stages to run: 1, 2 or 1,2
    recompute: str = "none"  # redo work even when cached: none, 1 (Stage 1), 2 (Stage 2) or all
    shard: str = ""  # K/N: process the K-th of N parts of the split (cluster job arrays)


CONFIG = ExperimentConfig()

# ----------------------------------------------------------------------------

log = logging.getLogger("main")


HERE = Path(__file__).resolve().parent
PATH_FIELDS = ("data_root", "results_dir")  # resolved against HERE when they come from CONFIG


def field_help() -> dict[str, str]:
    """Each config field's comment in the block above, as its ``--help`` text."""
    import inspect
    import re

    helps, above = {}, []
    for line in inspect.getsource(ExperimentConfig).splitlines():
        comment = re.match(r"\s+#\s*(.+)$", line)
        if comment:
            above.append(comment[1])
            continue
        match = re.match(r"\s+(\w+): [^=]+=[^#]*(?:#\s*(.+))?$", line)
        if match:
            helps[match[1]] = match[2] or " ".join(above[1:] if len(above) > 2 else above)
        above = []
    return helps


def field_choices() -> dict[str, list[str]]:
    """The values a field accepts, where they form a list (shown by ``--help``)."""
    from code.data_loading import INPUT_KINDS, SPLITS
    from code.evaluation.asr import ENGINES
    from code.models.hearing_aid_models import MODELS
    from code.pipeline import CHALLENGES, RECOMPUTE, SIMULATOR_CHOICES, TARGETS
    from code.evaluation.predictors import PREDICTORS

    return {"split": list(SPLITS), "input": list(INPUT_KINDS), "asr_engine": list(ENGINES),
            "model": sorted(MODELS), "recompute": list(RECOMPUTE), "msbg": list(SIMULATOR_CHOICES),
            "challenge": list(CHALLENGES), "target": list(TARGETS), "predictor": list(PREDICTORS)}


def build_parser(defaults: ExperimentConfig) -> argparse.ArgumentParser:
    """One ``--field-name`` option per config field, described by its comment, with its
    choices and its default from ``defaults``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n", 1)[1])
    helps, choices = field_help(), field_choices()
    for f in dataclasses.fields(ExperimentConfig):
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        text = helps.get(f.name, "")
        if f.name in choices:
            text += f" [choices: {', '.join(choices[f.name])}]"
        text += f" (default: {json.dumps(value) if isinstance(value, dict) else repr(value)})"
        text = text.replace("%", "%%")
        if f.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value, help=text)
        elif f.type in ("dict", dict):
            parser.add_argument(flag, type=_json_or_file, default=value, metavar="JSON|FILE",
                                help=text + "; JSON text or a JSON file")
        else:
            kind = int if f.type in ("int", int) else str
            default = argparse.SUPPRESS if f.name in PATH_FIELDS else value
            parser.add_argument(flag, type=kind, default=default, help=text,
                                metavar=f.name.upper())
    return parser


def _json_or_file(text: str) -> dict:
    source = Path(text).read_text(encoding="utf-8") if Path(text).is_file() else text
    try:
        value = json.loads(source)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON nor a JSON file: {text!r} ({e})") from e
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def parse_config(argv: list[str] | None = None) -> ExperimentConfig:
    """The config at the top of this file, with command-line overrides applied.

    Paths from the config block are relative to this file's folder (so
    ``python path/to/main.py`` works from anywhere); paths given on the command
    line stay relative to the current folder.
    """
    parser = build_parser(CONFIG)
    args = vars(parser.parse_args(argv))
    for name in PATH_FIELDS:
        if name not in args:
            args[name] = str(HERE / getattr(CONFIG, name))
    cfg = dataclasses.replace(CONFIG, **args)
    from code.pipeline import check_config

    problem = check_config(cfg)
    if problem:
        parser.error(problem)
    return cfg


def main(argv: list[str] | None = None) -> int:
    # Our own loggers at INFO; third-party chatter (pyclarity's MSBG logs to the root logger) at WARNING.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("main", "code"):
        logging.getLogger(name).setLevel(logging.INFO)
    cfg = parse_config(argv)
    from code.data_loading import DataError
    from code.evaluation.asr import ASRError
    from code.pipeline import run

    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        with logging_redirect_tqdm():  # log lines go above progress bars, not through them
            run(cfg)
    except (DataError, ASRError) as e:
        log.error("%s", e)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted: finished work is kept; run the same command again to continue")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
