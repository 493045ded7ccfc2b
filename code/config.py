"""The experiment's settings: ``ExperimentConfig``, the values its fields accept, and
everything derived from it (model list, ASR model list, fit splits, stages, shard).

This module sits at the bottom of the project: it imports nothing from ``code`` but ``code.errors``
(and its checks kept apart: ``code.config_lists``, ``code.config_values``, ``code.slurm_options``)
and nothing heavy (no torch, Whisper, numba, pyclarity, scikit-learn), so
``python main.py --help`` and a mistyped option answer at once. Every other
module takes what it needs from here, or as arguments.

``main.py`` holds the editable block (``CONFIG = ExperimentConfig(...)``) and the
command line; each field below is an option (``--field-name``), described by its
comment here.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

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
    baseline: str = "identity"  # the model the hearing-aid report gives every other model's change against (one of --models)
    quality: str = "haaqi"  # music quality in the hearing-aid report of --input unprocessed --models runs: haaqi (each output against the unprocessed audio) or none
    alpha: float = 0.5  # the report's combined score: alpha * intelligibility (0..1) + (1 - alpha) * HAAQI, as CAD2's recipe code
    # Audiogram per hearing-loss category, {"Mild": {"levels": [...], "frequencies": [...]}}.
    # Categories left out use pyclarity's AUDIOGRAM_REF / AUDIOGRAM_MILD / AUDIOGRAM_MODERATE.
    audiograms: dict = field(default_factory=dict)
    msbg: str = "fast"  # hearing-loss simulator for --input unprocessed: fast (this project's), reference (pyclarity's Ear) or torch (the fast one in torch, on CUDA when available)
    device: str = ""  # where torch models run: cpu, cuda or cuda:N (empty: cuda when available)
    batch_size: int = 4  # signals per Stage-1 batch
    jobs: int = 0  # worker processes for Stage 1 and for Stage 2's HAAQI, HASPI and STOI (0: the CPUs this process may use)
    tag: str = ""  # a name for this configuration: outputs go to results/<Model>-<tag>/, submission_<Model>-<tag>_<split>.csv; --train writes results/_training/<Model>-<tag>.pt
    # ASR and features (Stage 2)
    asr_engine: str = "faster-whisper"  # faster-whisper or openai-whisper (the official baseline's)
    asr_model: str = "tiny.en"  # Whisper model name or path; tiny.en for faster-whisper ships offline
    asr_models: str = ""  # comma-separated Whisper models scored in one run (replaces --asr-model; give one or the other); features per model
    asr_compute_type: str = "float32"  # faster-whisper only: float32 (reproducible across CPUs) or int8 (faster)
    asr_device: str = "cpu"  # cpu, cuda or cuda:N, for Whisper
    asr_batch_size: int = 8  # ears per batched first-window decode
    haspi: bool = False  # add HASPI v2 features (haspi.left/right/better_ear, 0..1) of the scored audio against the unprocessed audio, beside STOI (when every signal has it)
    features: str = "stoi"  # the Stage-2 pair features beside the ASR scores, comma-separated names in code/evaluation/features/registry.py FEATURES (e.g. stoi,haspi; empty: none), when every signal has its unprocessed audio
    stoi_max_lag_s: float = 0.05  # STOI/eSTOI: the largest lag (s) removed between the audio and its unprocessed reference
    trust_shipped_store: bool = True  # use the Stage-2 values a data set ships in cadenza_data/stage2_store/ (each checked for range; a bad one is recomputed); --no-trust-shipped-store computes every value here
    # prediction
    predictor: str = "logistic"  # how features become a 0..100 prediction (code/evaluation/prediction/predictors.py PREDICTORS)
    feature: str = ""  # the feature column the logistic predictors use (empty: the better-ear ASR score)
    # Settings of the predictor over its defaults, e.g. {"learning_rate": 0.05} for gbm or {"hidden_dim": 128}
    # for whisper-head (the logistic predictors have none); saved in the provenance and the run's name.
    predictor_options: dict = field(default_factory=dict)
    scores: str = ""  # per-signal feature files (JSONL, comma-separated) for the split: skip the audio stages
    train_scores: str = ""  # feature files of the fit split (default: official file or computed)
    fit_split: str = "train"  # labelled split(s) the predictor is fitted on: train, valid, or train,valid
    folds: int = 5  # folds (grouped by track when the metadata has fma, else by prompt) for out-of-fold predictions on records of the fit split
    seed: int = 0  # seed of the folds and of learned predictors
    team_id: str = ""  # e.g. T001: also write the organisers' file names (ICASSP2026_<split>_<TEAM>.csv)
    # running
    results_dir: str = "results"  # where everything is written
    stages: str = "1,2"  # which stages to run: 1, 2 or 1,2
    recompute: str = "none"  # redo work even when cached: none, 1 (Stage 1), 2 (Stage 2) or all
    shard: str = ""  # K/N: process the K-th of N parts of the split (cluster job arrays)
    slurm: int = 0  # submit the run to SLURM as N shard tasks (--jobs CPUs each) and a final job that writes the CSV, then return; the same command again says how they went and submits what is unfinished (docs/caching-and-clusters.md)
    slurm_partition: str = ""  # --slurm: the jobs' partition (empty: the cluster's default)
    slurm_time: str = ""  # --slurm: each job's time limit, minutes or [D-]H:MM:SS (empty: the partition's default)
    slurm_mem: str = ""  # --slurm: memory per job, e.g. 16G (empty: the partition's default)
    slurm_gres: str = ""  # --slurm: generic resources per job, e.g. gpu:1
    slurm_extra: dict = field(default_factory=dict)  # --slurm: more sbatch options, e.g. {"account": "abc", "qos": "high"}
    slurm_wait: bool = False  # --slurm: stay until the jobs end and say how they went (exit 1 when one failed)
    # training (code/training/): --train trains the model(s) before Stage 1; weights go to results/_training/
    train: bool = False  # train --model (e.g. LyricAid) on the fit split's Mild and Moderate unprocessed audio, through the hearing-loss simulator and a Whisper objective, before Stage 1
    train_asr_model: str = ""  # openai-whisper model (name or .pt path) of the training objective; empty: $CLIP_OPENAI_CHECKPOINT, else the shared tiny.en checkpoint
    train_epochs: int = 4  # at most this many passes over the training signals (early stopping on held-out prompts)
    train_lr: float = 0.01  # Adam learning rate of the training
    train_batch_size: int = 2  # signals per training step
    train_quality_weight: float = 3.0  # the quality guard's weight: training maximises the Whisper objective minus this times the output's spectral departure from the listener's NAL-R (a stand-in for HAAQI; docs/training.md)


DEFAULTS = ExperimentConfig()


def field_help() -> dict[str, str]:
    """Each config field's comment in ``ExperimentConfig`` above, as its ``--help`` text."""
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
