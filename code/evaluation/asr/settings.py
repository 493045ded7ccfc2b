"""Which Whisper runs, and how: the settings that key transcripts, and the names and
files of models (the official baseline's among them), without loading any model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from code.config import ENGINES, asr_models
from code.errors import shown
from code.keys import bytes_digest, remembered_digest

# The packages whose versions key each engine's transcripts and embeddings (code/evaluation/cache.py).
ENGINE_PACKAGES = {"faster-whisper": ("faster-whisper", "ctranslate2", "soxr", "soundfile"),
                   "openai-whisper": ("openai-whisper", "torch", "soxr", "soundfile")}
# The official CLIP1 baseline's decoding options (recipe compute_whisper.py).
OFFICIAL_DECODING = {"language": "en", "temperature": 0.0, "fp16": False}
OFFICIAL_MODEL = "base.en"
AUDIO_ROUTES = ("auto", "ffmpeg", "soxr")
# What a model path must hold, per engine: faster-whisper reads a CTranslate2 conversion's folder
# (model.bin and config.json, beside its vocabulary or tokenizer file); openai-whisper a checkpoint file.
FASTER_WHISPER_FILES = ("model.bin", "config.json")
OPENAI_WHISPER_SUFFIX = ".pt"


@dataclass(frozen=True)
class ASRSettings:
    """Which Whisper runs, and how. ``batch_size`` and ``device`` do not change results."""

    engine: str = "faster-whisper"
    model: str = "tiny.en"  # a model name, or a path (.pt for openai-whisper, a folder for faster-whisper)
    compute_type: str = "float32"  # faster-whisper only: float32 (same transcripts on any CPU), int8, ...
    device: str = "cpu"
    batch_size: int = 8  # ears per forward pass where the engine batches
    audio_route: str = "auto"  # how ears reach 16 kHz: auto (see audio_path()), ffmpeg or soxr

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"unknown ASR engine {self.engine!r}; choose one of {ENGINES}")
        if self.audio_route not in AUDIO_ROUTES:
            raise ValueError(f"unknown audio route {self.audio_route!r}; choose one of {AUDIO_ROUTES}")

    def cache_key(self) -> dict:
        """Everything that determines the transcripts (for cache keys)."""
        key = {"engine": self.engine, "model": model_identity(self.model),
               "decoding": OFFICIAL_DECODING, "audio_path": self.audio_path()}
        if self.engine == "faster-whisper":
            key["compute_type"] = self.compute_type
        return key

    def is_official_model(self) -> bool:
        """True when the official baseline's model runs: openai-whisper with ``base.en``,
        named or given as a checkpoint file whose content is base.en's (``official_model_name``)."""
        return self.engine == "openai-whisper" and official_model_name(self.model) == OFFICIAL_MODEL

    def is_official_baseline(self) -> bool:
        """True for the official baseline's settings: its model, greedy decoding, and the
        audio reaching Whisper through ffmpeg as it did for the official precomputed scores."""
        return self.is_official_model() and self.audio_path() == "ffmpeg"

    def audio_path(self) -> str:
        """How an ear reaches 16 kHz: ``ffmpeg`` (16-bit file read by ffmpeg, as the
        official recipe made its precomputed scores) for the official model, so
        predictions and calibration hear the same thing; else ``soxr`` (in memory).
        ``audio_route`` other than ``auto`` chooses one regardless of the model (the
        benchmarks use it to run the official route with a stand-in checkpoint)."""
        if self.audio_route != "auto":
            return self.audio_route
        return "ffmpeg" if self.is_official_model() else "soxr"


def official_model_name(model: str) -> str | None:
    """The openai-whisper name of an official model, or None.

    ``model`` is a name openai-whisper downloads (``base.en``; returned as is), or a
    checkpoint file whose SHA-256 is the one openai-whisper publishes for a name (its
    download URLs carry it; the loader checks downloads against it), so a copy of
    ``base.en.pt`` under any name is ``base.en``. A converted or fine-tuned file is not.
    """
    try:
        import whisper
    except ImportError:  # only faster-whisper installed: no official files to recognise
        return None
    if model in whisper._MODELS:
        return model
    path = Path(model)
    if not path.is_file():
        return None
    return _official_sha256(whisper._MODELS).get(remembered_digest(path, algorithm="sha256"))


def _official_sha256(models: dict[str, str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for name, url in models.items():  # aliases ("large", "turbo") come after their full names
        names.setdefault(url.split("/")[-2], name)
    return names


def model_path_problem(engine: str, model: str, *, option: str = "--asr-model") -> str | None:
    """Why an existing path ``model`` is not a Whisper model ``engine`` can load, or None (also
    for a name, which ``ensure_available`` checks). Looks at file names only, reads nothing:
    faster-whisper needs a folder holding ``FASTER_WHISPER_FILES``, openai-whisper a ``.pt`` file."""
    if not isinstance(model, str):
        return f"{option} {shown(model)} is not a model name or path"
    path = Path(model)
    try:
        exists = path.exists()
    except (OSError, ValueError):  # a name too long or holding a NUL is no path
        return None
    if not exists:
        return None
    if engine == "faster-whisper":
        if not path.is_dir():
            return (f"{option} {shown(model)} is a file; faster-whisper reads a model folder (a CTranslate2 "
                    f"conversion holding {' and '.join(FASTER_WHISPER_FILES)}); an openai-whisper .pt file "
                    "needs --asr-engine openai-whisper")
        missing = [name for name in FASTER_WHISPER_FILES if not (path / name).is_file()]
        if missing:
            return (f"{option} {shown(model)} is a folder but not a faster-whisper model: it has no "
                    f"{' and no '.join(missing)} (a CTranslate2 conversion of Whisper holds "
                    f"{' and '.join(FASTER_WHISPER_FILES)}, beside its vocabulary)")
        return None
    if path.is_dir() or path.suffix != OPENAI_WHISPER_SUFFIX:
        what = "a folder" if path.is_dir() else f"a {path.suffix or 'suffixless'} file"
        return (f"{option} {shown(model)} is {what}; openai-whisper reads a checkpoint file ending in "
                f"{OPENAI_WHISPER_SUFFIX} (a faster-whisper model folder needs --asr-engine faster-whisper)")
    return None


def model_identity(model: str) -> str:
    """A model name as is; an official openai-whisper checkpoint file as its name; any
    other model path (file or folder) as its name and a digest of its content (``preflight``
    has refused a path that holds no model, ``model_path_problem``, before this reads it).

    Two fine-tuned checkpoints of one architecture differ in content, so they
    never share cached transcripts; a copy of an official checkpoint shares them
    with its name. Digests are remembered by path, size and modification time
    (``remembered_digest``), so each file is read once.
    """
    path = Path(model)
    if not path.exists():
        return model
    if path.is_file() and (official := official_model_name(model)) is not None:
        return official
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    digest = bytes_digest(f"{f.relative_to(path) if f != path else f.name}:{remembered_digest(f)}" for f in files)
    return f"{path.name}:{digest}"


def asr_settings(cfg, model: str | None = None) -> ASRSettings:
    """The ASR settings of an ``ExperimentConfig`` for one of its Whisper models
    (default: the first of ``asr_models(cfg)``, the run's primary model)."""
    return ASRSettings(engine=cfg.asr_engine, model=model or asr_models(cfg)[0],
                       compute_type=cfg.asr_compute_type, device=cfg.asr_device,
                       batch_size=cfg.asr_batch_size)


def asr_label(model: str) -> str:
    """How features name a Whisper model: its name, or a checkpoint's file or folder stem."""
    path = Path(model)
    return path.stem if path.exists() else model
