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
from pathlib import Path

from code.config import ExperimentConfig, check_config, field_choices, field_help

# ----------------------------------------------------------------------------
# The experiment. Edit here, or override any field on the command line.
# Every field, with its meaning and default: code/config.py (or --help).
# ----------------------------------------------------------------------------

CONFIG = ExperimentConfig(
    data_root="data/demo",  # folder holding cadenza_data/ (relative to this file's folder)
    split="valid",  # the split to predict: train, valid or eval
    input="signals",  # signals (as heard) or unprocessed (+ hearing-loss simulation after the model)
    model="NLR1",  # the hearing-aid model (code/models/hearing_aid_models.py MODELS)
    models="",  # comma-separated models to compare, e.g. "identity,NLR1"
    asr_engine="faster-whisper",  # faster-whisper or openai-whisper
    asr_model="tiny.en",  # Whisper model name or path
    predictor="logistic",  # logistic, logistic-hl, gbm or whisper-head
    fit_split="train",  # labelled split(s) the predictor is fitted on
    results_dir="results",  # where everything is written (relative to this file's folder)
)

# ----------------------------------------------------------------------------

log = logging.getLogger("main")


HERE = Path(__file__).resolve().parent
PATH_FIELDS = ("data_root", "results_dir")  # resolved against HERE when they come from CONFIG


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
            kind = {"int": int, "float": float}.get(str(getattr(f.type, "__name__", f.type)), str)
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
    from code.errors import ASRError, ConfigError, DataError
    from code.pipeline import run

    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        with logging_redirect_tqdm():  # log lines go above progress bars, not through them
            run(cfg)
    except (DataError, ASRError, ConfigError) as e:
        log.error("%s", e)
        return 2
    except KeyboardInterrupt:
        from code.pipeline import resume_advice

        log.error("interrupted: %s", resume_advice(cfg, sys.argv[1:] if argv is None else argv))
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
