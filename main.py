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
import errno
import logging
import os
import signal
import sys
from pathlib import Path

from code.config import ExperimentConfig, check_config, field_choices, field_help
from code.errors import shown, unknown_arguments

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


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``scancel``, a job's time limit), handled as Ctrl-C is."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def environment_advice(e: OSError, cfg, argv: list[str]) -> str:
    """One paragraph for a fault of the machine, not of the input (no space, a read-only or
    forbidden folder, a file gone mid-run): the path, the cause and how to go on."""
    from code.pipeline import resume_advice

    where = e.filename or f"a file under {cfg.results_dir}"
    cause = e.strerror or str(e)
    fix = {errno.ENOSPC: "free some space there", errno.EDQUOT: "free some space there",
           errno.EROFS: "give a writable --results-dir", errno.EACCES: "give a folder you may write to",
           errno.EPERM: "give a folder you may write to"}.get(e.errno, "fix that")
    return (f"the run stopped: {where}: {cause}. To go on, {fix}; no temporary file is left "
            f"behind and {resume_advice(cfg, argv)}")


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
    parser.add_argument("--debug", action="store_true",
                        help="on an error, log its traceback too (for a bug report)")
    return parser


def _json_or_file(text: str) -> dict:
    try:  # JSON text too long for a file name, or holding a NUL, is no file
        is_file = Path(text).is_file()
    except (OSError, ValueError):
        is_file = False
    try:
        source = Path(text).read_text(encoding="utf-8") if is_file else text
        value = json.loads(source)
    except (OSError, UnicodeDecodeError) as e:
        raise argparse.ArgumentTypeError(f"cannot read the JSON file {text}: {e}") from e
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON nor a JSON file: {shown(text)} ({e})") from e
    except RecursionError:
        raise argparse.ArgumentTypeError(f"{shown(text)} nests its JSON too deeply to read; "
                                         "expected a flat JSON object") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {shown(text)}")
    return value


def parse_config(argv: list[str] | None = None) -> ExperimentConfig:
    """The config at the top of this file, with command-line overrides applied.

    Paths from the config block are relative to this file's folder (so
    ``python path/to/main.py`` works from anywhere); paths given on the command
    line stay relative to the current folder.
    """
    parser = build_parser(CONFIG)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # a short line with the closest option, not the whole usage block
        parser.exit(2, f"{parser.prog}: error: {unknown_arguments(unknown, list(parser._option_string_actions))} "
                       f"(python main.py --help lists every option)\n")
    args = vars(args)
    args.pop("debug")
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
    from code.data.layout import locate_split
    from code.errors import ASRError, ConfigError, DataError, ModelError

    try:  # a wrong data root or a missing metadata file, refused before the heavy imports
        locate_split(Path(cfg.data_root), cfg.split, challenge=cfg.challenge, need_audio=False)
    except DataError as e:
        log.error("%s", e)
        return 2
    if cfg.slurm:  # submit the run to SLURM instead of running it here (code/cluster.py)
        from code.cluster import slurm_main

        return slurm_main(cfg)
    from code.pipeline import run

    from tqdm.contrib.logging import logging_redirect_tqdm

    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv  # the traceback of an error, logged with it
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        with logging_redirect_tqdm():  # log lines go above progress bars, not through them
            run(cfg)
    except (DataError, ASRError, ConfigError, ModelError) as e:
        log.error("%s", e, exc_info=debug)
        return 2
    except KeyboardInterrupt as e:
        from code.pipeline import resume_advice

        log.error("%s: %s", "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted",
                  resume_advice(cfg, argv))
        return 143 if isinstance(e, Terminated) else 130
    except OSError as e:
        log.error("%s", environment_advice(e, cfg, argv), exc_info=debug)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    if not sys.stderr.isatty():  # a log file: bars redrawn with \r would garble it; the stage lines say it
        os.environ.setdefault("TQDM_DISABLE", "1")
    sys.exit(main())
