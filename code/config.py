"""The experiment's settings: ``ExperimentConfig``, the values its fields accept, and
everything derived from it (model list, ASR model list, fit splits, stages, shard).

This module sits at the bottom of the project: it imports nothing from ``code`` but ``code.errors``
(and its checks kept apart: ``code.config_lists``, ``code.config_values``, ``code.slurm_options``;
the fields' declarations read by ``code.config_fields``)
and nothing heavy (no torch, Whisper, numba, pyclarity, scikit-learn), so
``python main.py --help`` and a mistyped option answer at once. Every other
module takes what it needs from here, or as arguments.

``main.py`` holds the editable block (``CONFIG = ExperimentConfig(...)``) and the
command line; each field below is an option (``--field-name``), declared with
``setting(default, role, help, ...)``: its ``--help`` text, and what it changes (its role:
Stage 1, a prediction, only the output, the way this command works, or only its resources),
from which run names, keys, ``--recompute`` and suggested commands follow
(``code/config_fields.py``).
"""

from __future__ import annotations

import ast
import difflib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from code import config_fields
from code.config_fields import EACH_FEATURE, OUTPUT, PREDICTION, RESOURCES, STAGE1, WORK, setting
from code.config_lists import lists_problem
from code.config_values import audiograms_problem, options_problem, results_dir_problem
from code.slurm_options import slurm_problem

SAMPLE_RATE = 44100  # Hz: the challenge audio's rate, and the hearing-loss simulator's
WHISPER_SAMPLE_RATE = 16000  # Hz: what Whisper hears (both engines, and training)
HEARING_LOSS_CATEGORIES = ("No Loss", "Mild", "Moderate")
CHALLENGES = ("clip1", "clip2")
SPLITS = ("train", "valid", "eval")
INPUT_KINDS = ("signals", "unprocessed")
TARGETS = ("correctness", "phoneme_correctness")  # ground-truth fields, 0..1
ENGINES = ("faster-whisper", "openai-whisper")
SIMULATORS = ("fast", "reference", "torch")
RECOMPUTE = ("none", "1", "2", "all")
QUALITY_METRICS = ("haaqi", "none")
COMPUTE_TYPES = ("float32", "int8", "int8_float32", "float16", "int8_float16", "bfloat16", "int16")

MIN_SAMPLE_RATE = 8000  # Hz: below this no speech band is left for Whisper (16 kHz) or STOI (10 kHz)

CODE_DIR = Path(__file__).resolve().parent
MODELS_FILE = CODE_DIR / "models" / "hearing_aid_models.py"  # holds the MODELS registry
PREDICTORS_FILE = CODE_DIR / "evaluation" / "prediction" / "predictors.py"  # holds the PREDICTORS registry
FEATURES_FILE = CODE_DIR / "evaluation" / "features" / "registry.py"  # holds the FEATURES registry
FEATURE_FLAGS = ("haspi",)  # boolean options that add the Stage-2 feature of their name (--haspi)


@dataclass(frozen=True)
class ExperimentConfig:
    # data (relative paths in main.py's block are relative to main.py's folder; on the command line, to the current one)
    data_root: str = setting("data/demo", STAGE1, "folder holding cadenza_data/ (or cadenza_data/ itself, or cadenza_data/clip2/); the demo ships with the project", unlabelled="the data set: in the name when not the results folder's home")
    challenge: str = setting("", STAGE1, "clip1 or clip2; empty: detected from the data root's layout", unlabelled="the data set's (as --data-root)")
    split: str = setting("valid", STAGE1, "the split to predict", unlabelled="the CSV's name ends with it")
    input: str = setting("signals", STAGE1, "model input: signals (as heard, official) or unprocessed (+ hearing-loss simulation after the model)", unlabelled="in the name as -unprocessed")
    target: str = setting("correctness", PREDICTION, "what listeners' labels measure: correctness (words, 0..1) or phoneme_correctness (CLIP2)", label=lambda v: "phoneme" if v == "phoneme_correctness" else v, rank=1)
    skip_invalid: bool = setting(False, WORK, "leave invalid records out (listed in results/) instead of stopping", command=False)
    sample_rate: int = setting(44100, STAGE1, "audio is resampled to this rate on loading", label=lambda v: f"sr{v}", rank=2)
    # enhancement (Stage 1)
    model: str = setting("NLR1", STAGE1, "the hearing-aid model, a name registered in code/models/hearing_aid_models.py MODELS", unlabelled="the name starts with it", command=False)
    models: str = setting("", STAGE1, "comma-separated models to compare (overrides --model); writes a hearing-aid report", unlabelled="each model's run starts with its name", command=False)
    baseline: str = setting("identity", OUTPUT, "the model the hearing-aid report gives every other model's change against (one of --models)")
    quality: str = setting("haaqi", OUTPUT, "music quality in the hearing-aid report of --input unprocessed --models runs: haaqi (each output against the unprocessed audio) or none")
    alpha: float = setting(0.5, OUTPUT, "the report's combined score: alpha * intelligibility (0..1) + (1 - alpha) * HAAQI, as CAD2's recipe code")
    audiograms: dict = setting({}, STAGE1, 'Audiogram per hearing-loss category, {"Mild": {"levels": [...], "frequencies": [...]}}. Categories left out use pyclarity\'s AUDIOGRAM_REF / AUDIOGRAM_MILD / AUDIOGRAM_MODERATE.', label=lambda v: "audiograms", rank=3)
    msbg: str = setting("fast", STAGE1, "hearing-loss simulator for --input unprocessed: fast (this project's), reference (pyclarity's Ear) or torch (the fast one in torch, on CUDA when available)", applies=lambda cfg: cfg.input == "unprocessed", label=lambda v: f"msbg={v}", rank=4)
    device: str = setting("", RESOURCES, "where torch models run: cpu, cuda or cuda:N (empty: cuda when available)")
    batch_size: int = setting(4, RESOURCES, "signals per Stage-1 batch")
    jobs: int = setting(0, RESOURCES, "worker processes for Stage 1 and for Stage 2's HAAQI, HASPI and STOI (0: the CPUs this process may use)")
    tag: str = setting("", OUTPUT, "a name for this configuration: outputs go to results/<Model>-<tag>/, submission_<Model>-<tag>_<split>.csv; --train writes results/_training/<Model>-<tag>.pt")
    # ASR and features (Stage 2)
    asr_engine: str = setting("faster-whisper", PREDICTION, "faster-whisper or openai-whisper (the official baseline's)", label=lambda v: v, rank=7)
    asr_model: str = setting("tiny.en", PREDICTION, "Whisper model name or path; tiny.en for faster-whisper ships offline", unlabelled="in --asr-models' label (asr_models() reads both)")
    asr_models: str = setting("", PREDICTION, "comma-separated Whisper models scored in one run (replaces --asr-model; give one or the other); features per model", compared=lambda cfg: asr_models(cfg), label=lambda v: "asr=" + "+".join(Path(m).stem if os.sep in m else m for m in v), rank=8)
    asr_compute_type: str = setting("float32", PREDICTION, "faster-whisper only: float32 (reproducible across CPUs) or int8 (faster)", applies=lambda cfg: cfg.asr_engine == "faster-whisper", label=lambda v: v, rank=9)
    asr_device: str = setting("cpu", WORK, "cpu, cuda or cuda:N, for Whisper")
    asr_batch_size: int = setting(8, RESOURCES, "ears per batched first-window decode")
    haspi: bool = setting(False, PREDICTION, "add HASPI v2 features (haspi.left/right/better_ear, 0..1) of the scored audio against the unprocessed audio, beside STOI (when every signal has it)", unlabelled="in --features' labels (it adds haspi)")
    features: str = setting("stoi", PREDICTION, "the Stage-2 pair features beside the ASR scores, comma-separated names in code/evaluation/features/registry.py FEATURES (e.g. stoi,haspi; empty: none), when every signal has its unprocessed audio", label=EACH_FEATURE, rank=6)
    stoi_max_lag_s: float = setting(0.05, PREDICTION, "STOI/eSTOI: the largest lag (s) removed between the audio and its unprocessed reference", label=lambda v: f"stoi-lag{v}", rank=5)
    trust_shipped_store: bool = setting(True, WORK, "use the Stage-2 values a data set ships in cadenza_data/stage2_store/ (each checked for range; a bad one is recomputed); --no-trust-shipped-store computes every value here")
    # prediction
    predictor: str = setting("logistic", PREDICTION, "how features become a 0..100 prediction (code/evaluation/prediction/predictors.py PREDICTORS)", label=lambda v: v, rank=10)
    feature: str = setting("", PREDICTION, "the feature column the logistic predictors use (empty: the better-ear ASR score)", label=lambda v: f"feature={v}", rank=12)
    predictor_options: dict = setting({}, PREDICTION, 'Settings of the predictor over its defaults, e.g. {"learning_rate": 0.05} for gbm or {"hidden_dim": 128} for whisper-head (the logistic predictors have none); saved in the provenance and the run\'s name.', label=lambda v: "options", rank=11)
    scores: str = setting("", PREDICTION, "per-signal feature files (JSONL, comma-separated) for the split: skip the audio stages", label=lambda v: "scores", rank=13)
    train_scores: str = setting("", PREDICTION, "feature files of the fit split (default: official file or computed)", label=lambda v: "train-scores", rank=14)
    fit_split: str = setting("train", PREDICTION, "labelled split(s) the predictor is fitted on: train, valid, or train,valid", compared=lambda cfg: sorted(fit_splits(cfg)), label=lambda v: "fit=" + "+".join(v), rank=15)
    folds: int = setting(5, PREDICTION, "folds (grouped by track when the metadata has fma, else by prompt) for out-of-fold predictions on records of the fit split", label=lambda v: f"folds{v}", rank=16)
    seed: int = setting(0, PREDICTION, "seed of the folds and of learned predictors", label=lambda v: f"seed{v}", rank=17)
    team_id: str = setting("", OUTPUT, "e.g. T001: also write the organisers' file names (ICASSP2026_<split>_<TEAM>.csv)", command=False)
    # running
    results_dir: str = setting("results", OUTPUT, "where everything is written")
    stages: str = setting("1,2", WORK, "which stages to run: 1, 2 or 1,2", command=False)
    recompute: str = setting("none", WORK, "redo work even when cached: none, 1 (Stage 1), 2 (Stage 2) or all", command=False)
    shard: str = setting("", WORK, "K/N: process the K-th of N parts of the split (cluster job arrays)", command=False)
    slurm: int = setting(0, WORK, "submit the run to SLURM as N shard tasks (--jobs CPUs each) and a final job that writes the CSV, then return; the same command again says how they went and submits what is unfinished (docs/caching-and-clusters.md)")
    slurm_partition: str = setting("", WORK, "--slurm: the jobs' partition (empty: the cluster's default)")
    slurm_time: str = setting("", WORK, "--slurm: each job's time limit, minutes or [D-]H:MM:SS (empty: the partition's default)")
    slurm_mem: str = setting("", WORK, "--slurm: memory per job, e.g. 16G (empty: the partition's default)")
    slurm_gres: str = setting("", WORK, "--slurm: generic resources per job, e.g. gpu:1")
    slurm_extra: dict = setting({}, WORK, '--slurm: more sbatch options, e.g. {"account": "abc", "qos": "high"}')
    slurm_wait: bool = setting(False, WORK, "--slurm: stay until the jobs end and say how they went (exit 1 when one failed)")
    # training (code/training/): --train trains the model(s) before Stage 1; weights go to results/_training/
    train: bool = setting(False, STAGE1, "train --model (e.g. LyricAid) on the fit split's Mild and Moderate unprocessed audio, through the hearing-loss simulator and a Whisper objective, before Stage 1", unlabelled="the trained weights: their digest is in Stage 1's key")
    train_asr_model: str = setting("", STAGE1, "openai-whisper model (name or .pt path) of the training objective; empty: $CLIP_OPENAI_CHECKPOINT, else the shared tiny.en checkpoint", unlabelled="the trained weights: their digest is in Stage 1's key")
    train_epochs: int = setting(4, STAGE1, "at most this many passes over the training signals (early stopping on held-out prompts)", unlabelled="the trained weights: their digest is in Stage 1's key")
    train_lr: float = setting(0.01, STAGE1, "Adam learning rate of the training", unlabelled="the trained weights: their digest is in Stage 1's key")
    train_batch_size: int = setting(2, STAGE1, "signals per training step", unlabelled="the trained weights: their digest is in Stage 1's key")
    train_quality_weight: float = setting(3.0, STAGE1, "the quality guard's weight: training maximises the Whisper objective minus this times the output's spectral departure from the listener's NAL-R (a stand-in for HAAQI; docs/training.md)", unlabelled="the trained weights: their digest is in Stage 1's key")


DEFAULTS = ExperimentConfig()


def field_help() -> dict[str, str]:
    """Each config field's ``--help`` text, from its declaration in ``ExperimentConfig``."""
    return config_fields.field_help(ExperimentConfig)


def registered_names(path: Path, registry: str) -> list[str]:
    """The names registered in ``<registry>`` of a source file, read without importing
    it (importing the models means importing torch): the keys of its dict literal and
    of later ``<registry>["name"] = ...`` lines.

    Returns ``[]`` when the registry is built in a way this cannot read (a dict built
    otherwise, ``.update(...)``); callers then check names against the imported
    registry when the run starts instead.
    """
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return []
    names: list[str] = []
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        for target in targets:
            if isinstance(target, ast.Name) and target.id == registry:
                if not isinstance(node.value, ast.Dict):
                    return []
                names = [k.value for k in node.value.keys
                         if isinstance(k, ast.Constant) and isinstance(k.value, str)]
            elif (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                  and target.value.id == registry):
                if not (isinstance(target.slice, ast.Constant) and isinstance(target.slice.value, str)):
                    return []
                names.append(target.slice.value)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) \
                and isinstance(node.value.func, ast.Attribute) \
                and isinstance(node.value.func.value, ast.Name) and node.value.func.value.id == registry:
            return []  # MODELS.update(...) and the like: read it when the run starts
    return list(dict.fromkeys(names))


def field_choices() -> dict[str, list[str]]:
    """The values a field accepts, where they form a list (shown by ``--help``)."""
    choices = {"split": list(SPLITS), "input": list(INPUT_KINDS), "asr_engine": list(ENGINES),
               "recompute": list(RECOMPUTE), "msbg": list(SIMULATORS),
               "challenge": list(CHALLENGES), "target": list(TARGETS)}
    models = registered_names(MODELS_FILE, "MODELS")
    predictors = registered_names(PREDICTORS_FILE, "PREDICTORS")
    if models:
        choices["model"] = sorted(models)
    if predictors:
        choices["predictor"] = predictors
    choices["features"] = registered_names(FEATURES_FILE, "FEATURES")
    return choices


# --- what the fields mean, derived once --------------------------------------------------


def _listed(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def model_names(cfg: ExperimentConfig) -> list[str]:
    """The hearing-aid models this run enhances: ``--models``, else ``--model``."""
    return _listed(cfg.models) or [cfg.model]


def asr_models(cfg: ExperimentConfig) -> list[str]:
    """The Whisper models this run scores with: ``--asr-models``, else ``--asr-model``.
    The one place that says which; the first is the run's primary model (the
    better-ear feature, the whisper-head's encoder, the official route)."""
    return _listed(cfg.asr_models) or [cfg.asr_model]


def fit_splits(cfg: ExperimentConfig) -> list[str]:
    """The labelled splits ``--fit-split`` names, e.g. ``"train,valid"``."""
    return _listed(cfg.fit_split)


def stages(cfg: ExperimentConfig) -> set[str]:
    """The stages ``--stages`` asks for, e.g. ``"1,2"`` -> {"1", "2"}."""
    return set(_listed(cfg.stages.replace(" ", "")))


def recompute_stage(cfg: ExperimentConfig, stage: str) -> bool:
    """Whether ``--recompute`` asks to redo ``stage`` ("1" or "2")."""
    return cfg.recompute in (stage, "all")


def parse_shard(shard: str) -> tuple[int, int] | None:
    """``"K/N"`` -> (K, N), 1 <= K <= N; ``""`` -> None.

    Raises:
        ValueError: for any other text.
    """
    if not shard:
        return None
    try:
        k, n = (int(x) for x in shard.split("/"))
    except ValueError:
        raise ValueError(f"--shard must look like K/N (e.g. 3/10), got {shard!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"--shard K/N needs 1 <= K <= N, got {shard!r}")
    return k, n


def did_you_mean(value: str, choices) -> str:
    """``"; did you mean 'X'?"`` for the closest choice (case-insensitive), else ``""``."""
    by_lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(value.lower(), list(by_lower), n=1, cutoff=0.5)
    return f"; did you mean {by_lower[close[0]]!r}?" if close else ""


def _one_of(option: str, value: str, choices) -> str | None:
    if value in choices:
        return None
    return f"{option} must be one of {list(choices)}, got {value!r}{did_you_mean(value, choices)}"


def device_problem(option: str, device: str, *, allow_empty: bool = True) -> str | None:
    """Why a device name is not one torch knows (``cpu``, ``cuda``, ``cuda:N``), else None.
    Whether CUDA is present is checked when the run starts (that needs torch)."""
    if (device == "" and allow_empty) or re.fullmatch(r"cpu|cuda(:\d+)?", device):
        return None
    return (f"{option} must be cpu, cuda or cuda:N{' (or empty: cuda when available)' if allow_empty else ''}, "
            f"got {device!r}{did_you_mean(device, ['cpu', 'cuda'])}")


def check_config(cfg: ExperimentConfig) -> str | None:
    """A one-line reason when the config cannot work, else None. Cheap: no model,
    data or heavy library is loaded (``main.py`` calls it while parsing)."""
    for option, value, choices in (
            ("--split", cfg.split, SPLITS), ("--input", cfg.input, INPUT_KINDS),
            ("--asr-engine", cfg.asr_engine, ENGINES), ("--recompute", cfg.recompute, RECOMPUTE),
            ("--msbg", cfg.msbg, SIMULATORS), ("--target", cfg.target, TARGETS)):
        problem = _one_of(option, value, choices)
        if problem:
            return problem
    predictors = registered_names(PREDICTORS_FILE, "PREDICTORS")
    if predictors and cfg.predictor not in predictors:
        return _one_of("--predictor", cfg.predictor, predictors)
    if cfg.challenge and cfg.challenge not in CHALLENGES:
        return _one_of("--challenge", cfg.challenge, CHALLENGES)
    problem = lists_problem(cfg)  # names too long for files, empty or repeated list items
    if problem:
        return problem
    features = registered_names(FEATURES_FILE, "FEATURES")
    for name in _listed(cfg.features) if features else ():
        problem = _one_of("--features", name, features)
        if problem:
            return problem
    models = registered_names(MODELS_FILE, "MODELS")
    for name in model_names(cfg):
        if models and name not in models:
            return f"unknown model {name!r}{did_you_mean(name, models)} Registered models: {sorted(models)}"
    for split in fit_splits(cfg) or [""]:
        problem = _one_of("--fit-split", split, SPLITS)
        if problem:
            return problem
    if not stages(cfg) <= {"1", "2"} or not stages(cfg):
        return f"--stages must be 1, 2 or 1,2; got {cfg.stages!r}"
    for problem in (audiograms_problem(cfg.audiograms, HEARING_LOSS_CATEGORIES),
                    options_problem(cfg.predictor_options), results_dir_problem(cfg.results_dir),
                    slurm_problem(cfg, DEFAULTS)):
        if problem:
            return problem
    if not cfg.sample_rate >= MIN_SAMPLE_RATE:
        return (f"--sample-rate must be a rate in Hz of at least {MIN_SAMPLE_RATE} "
                f"(the challenge audio's is {SAMPLE_RATE}), got {cfg.sample_rate}")
    for option, device in (("--device", cfg.device), ("--asr-device", cfg.asr_device)):
        problem = device_problem(option, device, allow_empty=option == "--device")
        if problem:
            return problem
    if cfg.asr_engine == "faster-whisper" and cfg.asr_compute_type not in COMPUTE_TYPES:
        return _one_of("--asr-compute-type", cfg.asr_compute_type, COMPUTE_TYPES)
    listed = _listed(cfg.asr_models)
    if listed and cfg.asr_model != DEFAULTS.asr_model and cfg.asr_model not in listed:
        return (f"--asr-model {cfg.asr_model!r} and --asr-models {cfg.asr_models!r} disagree: "
                f"give the Whisper models with one of them (e.g. --asr-models "
                f"{','.join([cfg.asr_model, *listed])})")
    if not (math.isfinite(cfg.train_quality_weight) and cfg.train_quality_weight >= 0):
        return f"--train-quality-weight must be a number >= 0, got {cfg.train_quality_weight}"
    if cfg.train_epochs < 1 or cfg.train_batch_size < 1 or not cfg.train_lr > 0:
        return "--train-epochs and --train-batch-size must be at least 1 and --train-lr above 0"
    if cfg.folds < 2:
        return f"--folds must be at least 2 (out-of-fold predictions need 2 or more folds), got {cfg.folds}"
    if not 0.0 <= cfg.stoi_max_lag_s <= 1.0:
        return f"--stoi-max-lag-s must be within 0..1 seconds, got {cfg.stoi_max_lag_s}"
    if cfg.batch_size < 1 or cfg.asr_batch_size < 1:
        return "--batch-size and --asr-batch-size must be at least 1"
    if cfg.quality not in QUALITY_METRICS:
        return _one_of("--quality", cfg.quality, QUALITY_METRICS)
    if not 0.0 <= cfg.alpha <= 1.0:
        return f"--alpha must be within 0..1 (the weight of intelligibility in the combined score), got {cfg.alpha}"
    if cfg.scores and cfg.shard:
        return "--scores and --shard do not go together (--scores needs no audio work)"
    if cfg.input == "unprocessed" and cfg.sample_rate != SAMPLE_RATE:
        return f"--input unprocessed runs the hearing-loss simulator, which needs --sample-rate {SAMPLE_RATE}"
    if cfg.tag and ("/" in cfg.tag or "\\" in cfg.tag or cfg.tag.startswith(".")):
        return f"--tag must be a plain name (no '/', no leading '.'), got {cfg.tag!r}"
    if cfg.team_id and not cfg.team_id.replace("-", "").isalnum():
        return f"--team-id must be letters and digits (e.g. T001), got {cfg.team_id!r}"
    try:
        parse_shard(cfg.shard)
    except ValueError as e:
        return str(e)
    return None
