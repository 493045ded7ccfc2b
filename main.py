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
    # data
    data_root: str = "data/demo"  # folder holding cadenza_data/ (the demo ships with the project)
    split: str = "valid"  # train, valid or eval
    input: str = "signals"  # model input: signals (as heard, official) or unprocessed (+ MSBG after the model)
    skip_invalid: bool = False  # leave invalid records out (listed in results/) instead of stopping
    sample_rate: int = 44100  # audio is resampled to this rate on loading
    # enhancement (Stage 1)
    model: str = "NLR1"  # a name registered in code/models/hearing_aid_models.py MODELS
    models: str = ""  # comma-separated list to compare several models (overrides --model)
    # Audiogram per hearing-loss category, {"Mild": {"levels": [...], "frequencies": [...]}}.
    # Categories left out use pyclarity's AUDIOGRAM_REF / AUDIOGRAM_MILD / AUDIOGRAM_MODERATE.
    audiograms: dict = field(default_factory=dict)
    jobs: int = 0  # worker processes for Stage 1 (0: one per CPU core)
    # ASR (Stage 2)
    asr_engine: str = "faster-whisper"  # faster-whisper or openai-whisper (the official baseline's)
    asr_model: str = "tiny.en"  # model name or path; tiny.en for faster-whisper ships offline
    asr_compute_type: str = "int8"  # faster-whisper only
    asr_device: str = "cpu"
    asr_batch_size: int = 8  # ears per batch
    # calibration
    scores: str = ""  # precomputed per-signal scores (JSONL) for the split: skip the audio stages
    train_scores: str = ""  # training scores to calibrate on (default: official file or computed)
    folds: int = 5  # out-of-fold calibration on --split train
    seed: int = 0
    # running
    results_dir: str = "results"
    stages: str = "1,2"  # which stages to run
    shard: str = ""  # K/N: process the K-th of N parts of the split (cluster job arrays)


CONFIG = ExperimentConfig()

# ----------------------------------------------------------------------------

log = logging.getLogger("main")


def build_parser(defaults: ExperimentConfig) -> argparse.ArgumentParser:
    """One ``--field-name`` option per config field, defaulting to ``defaults``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for f in dataclasses.fields(ExperimentConfig):
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        if f.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        elif f.type in ("dict", dict):
            parser.add_argument(flag, type=_json_or_file, default=value, metavar="JSON|FILE",
                                help="JSON text or a JSON file")
        else:
            kind = int if f.type in ("int", int) else str
            parser.add_argument(flag, type=kind, default=value)
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
    """The config at the top of this file, with command-line overrides applied."""
    parser = build_parser(CONFIG)
    args = parser.parse_args(argv)
    cfg = dataclasses.replace(CONFIG, **vars(args))
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

    try:
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
