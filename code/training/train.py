"""Training a hearing-aid model end to end through the simulated listener (``--train``).

For each signal of the fit split whose listener has a hearing loss the simulator models
(``TRAIN_CATEGORIES``): its unprocessed audio -> the model (with the listener's audiogram)
-> the torch MSBG (``code.hearing_loss.torch_ear``) with that audiogram -> Whisper's teacher-forced
log-likelihood of the lyric line (``WhisperObjective``). Adam raises the objective; whole
prompts are held out (``HELD_OUT_SHARE``) and the weights of the epoch with the best held-out
objective are kept (early stopping; epoch 0 is the untrained model, so a training that never
beats its start keeps the start). The weights go to ``results/_training/<Model>.pt`` beside
``<Model>.json`` (the key, the options, the curve, the times), ``<Model>-<tag>.*`` for a run
with ``--tag``; a registered model finds them through the ``results_dir`` and ``tag`` the
factory offers. A rerun whose key (model code, this package's code, the options, the
audiograms, the Whisper checkpoint, the data) is unchanged trains nothing; one with other
options (``--train-lr``, ``--seed``, ...) and the same tag is refused before any work, so a
training never replaces another configuration's weights.

Cost, on CPU: each training signal runs one ear (drawn per signal and epoch, seeded) through
the simulator and Whisper, in a window of the ear plus ``TRAIN_WINDOW_S`` (not Whisper's 30 s);
the README gives the measured figures and what these choices cost in fidelity.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from code.config import SAMPLE_RATE, fit_splits, model_names
from code.data.audio import read_audio
from code.data.held_out import held_out_prompts
from code.data.validation import validate_split
from code.errors import ConfigError
from code.hearing_loss.design import ear_design
from code.hearing_loss.torch_ear import torch_ear
from code.io_utils import atomic_path, write_json_atomic
from code.keys import bytes_digest, code_digest, file_digest, settings_digest
from code.models.audiograms import audiogram_to_dict, common_frequencies
from code.models.hearing_aid_models import MODELS, make_model
from code.models.weights import trained_weights_path, training_record, weights_stem
from code.models.prescriptions import NALR
from code.resources import torch_device
from code.training.objective import WhisperObjective, resample_to_16k
from code.training.quality_guard import spectral_departure

logger = logging.getLogger(__name__)

TRAIN_CATEGORIES = ("Mild", "Moderate")  # "No Loss" has no simulation: nothing to learn there
HELD_OUT_SHARE = 0.2  # of the prompts, held out for early stopping
TRAIN_WINDOW_S = 1.0  # s of padding after the ear in Whisper's window while training
PATIENCE = 2  # epochs without a better held-out objective before stopping
LR_DECAY = 0.5  # the learning rate is multiplied by this after each epoch
SHARED_CHECKPOINT = Path(__file__).resolve().parents[3] / "shared/models/openai-whisper-tiny.en.pt"


@dataclass
class TrainItem:
    """One training signal: unprocessed audio float32 ``[2, T]`` at 44.1 kHz and its listener."""

    signal: str
    line: str
    category: str
    prompt: str
    audio: np.ndarray


def resolve_asr_model(option: str) -> str:
    """The Whisper model the objective uses: ``--train-asr-model`` when given, else
    ``$CLIP_OPENAI_CHECKPOINT``, else the shared tiny.en checkpoint when present.

    Raises:
        ConfigError: when none of them is given or present.
    """
    for candidate in (option, os.environ.get("CLIP_OPENAI_CHECKPOINT", "")):
        if candidate:
            return candidate
    if SHARED_CHECKPOINT.is_file():
        return str(SHARED_CHECKPOINT)
    raise ConfigError("--train needs an openai-whisper model for its objective: give --train-asr-model "
                      "tiny.en (downloaded by openai-whisper) or a .pt checkpoint path")


def trainable(model) -> bool:
    """Whether ``model`` has weights to train (a ``torch.nn.Module`` with parameters that
    require gradients)."""
    return isinstance(model, torch.nn.Module) and any(p.requires_grad for p in model.parameters())


def weights_path(results_dir: Path, model, *, tag: str = "") -> Path:
    """Where a results folder keeps ``model``'s weights trained by a run tagged ``tag``."""
    return trained_weights_path(results_dir, weights_stem(model), tag=tag)


def train_models(cfg, audiograms: dict) -> list[Path]:
    """Train every trainable model of ``cfg``'s ``--model``/``--models``, and the model whose
    weights a listed one borrows (``LyricAidLevelOnly`` -> ``LyricAid``); others are named and
    left alone. Returns the weight files. A model whose training key is unchanged is not
    trained again."""
    frequencies = common_frequencies(audiograms)
    to_train: list[str] = []
    for name in model_names(cfg):
        model = make_model(name, sample_rate=cfg.sample_rate, audiogram_frequencies=frequencies)
        owner = weights_stem(model) if isinstance(model, torch.nn.Module) else name
        if not trainable(model) and owner != name and owner in MODELS:  # it borrows a registered model's weights
            logger.info("training: %s uses %s's weights", name, owner)
            name, model = owner, make_model(owner, sample_rate=cfg.sample_rate, audiogram_frequencies=frequencies)
        if not trainable(model):
            logger.info("training: %s has no weights to train; left as it is", name)
            continue
        if name not in to_train:
            to_train.append(name)
    return [train_model(cfg, name, audiograms) for name in to_train]


def _settings(cfg, asr_model: str) -> dict:
    """The options a user chose for a training (what a tag keeps apart), by option name."""
    return {"--train-lr": cfg.train_lr, "--train-epochs": cfg.train_epochs,
            "--train-batch-size": cfg.train_batch_size, "--seed": cfg.seed, "--train-asr-model": asr_model,
            "--train-quality-weight": cfg.train_quality_weight,
            "--fit-split": cfg.fit_split, "--data-root": str(Path(cfg.data_root).resolve())}


def _refuse_other_settings(out: Path, previous: dict, settings: dict) -> None:
    """Raise when ``out`` holds weights trained with other options: a training never replaces
    another configuration's weights (code edits retrain in place, as Stage 1 recomputes)."""
    before = previous.get("settings")
    if not out.exists() or not isinstance(before, dict) or before == settings:
        return
    changed = "; ".join(f"{k} {before.get(k)!r} -> {v!r}" for k, v in settings.items() if before.get(k) != v)
    raise ConfigError(f"{out} holds weights trained with other options ({changed}): to keep both, add "
                      f"--tag NAME (trains {out.stem}-NAME.pt); to replace them, delete {out} and "
                      f"{out.with_suffix('.json')}")


def load_items(cfg) -> list[TrainItem]:
    """The fit split's records of ``TRAIN_CATEGORIES`` with their unprocessed audio."""
    items = []
    for split in fit_splits(cfg):
        data = validate_split(Path(cfg.data_root), split, challenge=cfg.challenge, input_kinds=("unprocessed",),
                              check_cache=Path(cfg.results_dir) / ".audio_checks.json")
        for record in data.records:
            if record["hearing_loss"] not in TRAIN_CATEGORIES:
                continue
            path = data.layout.audio_path(record["signal"], "unprocessed")
            items.append(TrainItem(record["signal"], record.get("original_prompt") or record["prompt"],
                                   record["hearing_loss"], record["prompt"], read_audio(path, SAMPLE_RATE)))
    if not items:
        raise ConfigError(f"--train: the fit split {cfg.fit_split!r} has no {' or '.join(TRAIN_CATEGORIES)} records")
    return items


def _batch_audio(items: list[TrainItem], device: torch.device) -> torch.Tensor:
    """The items' unprocessed audio, zero-padded to the longest: ``[B, 2, T]``."""
    longest = max(item.audio.shape[-1] for item in items)
    x = torch.zeros(len(items), 2, longest, device=device)
    for i, item in enumerate(items):
        x[i, :, :item.audio.shape[-1]] = torch.from_numpy(item.audio)
    return x


def _heard_scores(y: torch.Tensor, objective: WhisperObjective, items: list[TrainItem], ears: list[int],
                  designs: dict) -> torch.Tensor:
    """The objective of each item's ear ``ears[i]`` of the aid output ``y`` after the listener's MSBG."""
    heard = []
    for i, (item, ear) in enumerate(zip(items, ears)):
        n = item.audio.shape[-1]
        heard.append(resample_to_16k(
            torch_ear(designs[item.category])(y[i, ear, :n][None], cochlea_dtype=torch.float32)[0],
            SAMPLE_RATE))
    length = max(h.shape[-1] for h in heard)
    audio = torch.stack([torch.nn.functional.pad(h, (0, length - h.shape[-1])) for h in heard])
    return objective.ear_scores(audio, [item.line for item in items])


def objective_of(model, objective: WhisperObjective, items: list[TrainItem], ears: list[int],
                 levels: dict[str, torch.Tensor], designs: dict, device: torch.device) -> torch.Tensor:
    """The objective of each item's ear ``ears[i]`` after ``model`` and the listener's MSBG: ``[B]``."""
    return step_values(model, objective, items, ears, levels, designs, device)[0]


def step_values(model, objective: WhisperObjective, items: list[TrainItem], ears: list[int],
                levels: dict[str, torch.Tensor], designs: dict, device: torch.device,
                prescription: NALR | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(objective [B], quality departure [B] or None)``: the objective as ``objective_of``, and
    with ``prescription`` (the listener's NAL-R) the output's ``spectral_departure`` from the
    prescribed unprocessed audio (both ears; ``code.training.quality_guard``)."""
    x = _batch_audio(items, device)
    audiogram = torch.stack([levels[item.category] for item in items]).to(device)
    y = model(x, audiogram)
    departure = None
    if prescription is not None:
        with torch.no_grad():
            prescribed = prescription(x, audiogram)
        departure = spectral_departure(y, prescribed, SAMPLE_RATE)
    return _heard_scores(y, objective, items, ears, designs), departure


def _training_key(cfg, name: str, items: list[TrainItem], asr_model: str, audiograms: dict) -> dict:
    """Everything a training's result depends on (its digest decides whether to train again)."""
    asr = {"file": file_digest(Path(asr_model))} if Path(asr_model).is_file() else {"name": asr_model}
    return {"model": name, "model_code": code_digest(MODELS[name]),
            "training_code": code_digest(train_model, load_items),
            "options": {"epochs": cfg.train_epochs, "lr": cfg.train_lr, "batch_size": cfg.train_batch_size,
                        "seed": cfg.seed, "window_s": TRAIN_WINDOW_S, "held_out": HELD_OUT_SHARE,
                        "patience": PATIENCE, "lr_decay": LR_DECAY, "categories": TRAIN_CATEGORIES,
                        "quality_weight": cfg.train_quality_weight},
            "audiograms": {c: audiogram_to_dict(audiograms[c]) for c in TRAIN_CATEGORIES},
            "asr": asr,
            "data": [[i.signal, i.line, i.category, bytes_digest([np.ascontiguousarray(i.audio).tobytes()])] for i in items]}


def train_model(cfg, name: str, audiograms: dict) -> Path:
    """Train the registered model ``name`` (see the module's docstring); returns its weights file."""
    freqs = common_frequencies(audiograms)
    model = make_model(name, sample_rate=cfg.sample_rate, audiogram_frequencies=freqs)  # untrained start
    out = weights_path(Path(cfg.results_dir), model, tag=cfg.tag)
    record_path = out.with_suffix(".json")
    asr_model = resolve_asr_model(cfg.train_asr_model)
    settings = _settings(cfg, asr_model)
    previous = training_record(out)
    _refuse_other_settings(out, previous, settings)  # before any heavy work
    items = load_items(cfg)
    key = settings_digest(_training_key(cfg, name, items, asr_model, audiograms))
    if out.exists() and record_path.exists():
        if previous.get("key") == key:
            logger.info("training: %s is current (%s, key %s): nothing to train", name, out, key)
            return out
    device = torch.device(torch_device(cfg.device))
    model.to(device)
    objective = WhisperObjective(asr_model, device=device, window_s=TRAIN_WINDOW_S)
    designs = {c: ear_design(audiograms[c]) for c in TRAIN_CATEGORIES}
    levels = {c: torch.tensor(np.asarray(audiograms[c].levels, dtype=np.float32)) for c in TRAIN_CATEGORIES}
    held = held_out_prompts([i.prompt for i in items], fraction=HELD_OUT_SHARE, seed=cfg.seed)
    train_items = [i for i in items if i.prompt not in held]
    held_items = [i for i in items if i.prompt in held]
    held_ears = [k % 2 for k in range(len(held_items))]
    logger.info("training %s on %s: %d signals (%s), %d held out (%d prompts), Whisper %s, device %s",
                name, cfg.fit_split, len(train_items), "+".join(TRAIN_CATEGORIES), len(held_items),
                len(held), Path(asr_model).name, device)
    rng = np.random.default_rng(cfg.seed)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.train_lr)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=LR_DECAY)

    weight = cfg.train_quality_weight
    prescription = NALR(cfg.sample_rate, audiogram_frequencies=freqs)  # the guard's reference

    def held_out() -> dict:
        """The held-out objective, quality departure and the two combined (what early stopping keeps)."""
        with torch.no_grad():
            parts = [step_values(model, objective, held_items[k:k + cfg.train_batch_size],
                                 held_ears[k:k + cfg.train_batch_size], levels, designs, device, prescription)
                     for k in range(0, len(held_items), cfg.train_batch_size)]
        score = float(torch.cat([p[0] for p in parts]).mean())
        departure = float(torch.cat([p[1] for p in parts]).mean())
        return {"held_out": score, "held_out_departure": departure, "held_out_guarded": score - weight * departure}

    start = time.time()
    first = held_out()
    best = first["held_out_guarded"]
    curve = [{"epoch": 0, "train": None, **first, "seconds": round(time.time() - start, 1)}]
    logger.info("training %s epoch 0 (the untrained model): held-out objective %.4f, quality departure %.4f "
                "(guard weight %g)", name, first["held_out"], first["held_out_departure"], weight)
    best_state, stale = copy.deepcopy(model.state_dict()), 0
    for epoch in range(1, cfg.train_epochs + 1):
        began = time.time()
        order = rng.permutation(len(train_items))
        ears = rng.integers(0, 2, len(train_items))
        batches = [order[k:k + cfg.train_batch_size] for k in range(0, len(order), cfg.train_batch_size)]
        values = []
        bar = tqdm(batches, desc=f"training {name} epoch {epoch}/{cfg.train_epochs}", unit="batch")
        for batch in bar:
            score, departure = step_values(model, objective, [train_items[i] for i in batch],
                                           [int(ears[i]) for i in batch], levels, designs, device,
                                           prescription if weight > 0 else None)
            optimiser.zero_grad()
            loss = -score.mean() + (weight * departure.mean() if weight > 0 else 0.0)
            loss.backward()
            optimiser.step()
            values.extend(score.detach().cpu().tolist())
            bar.set_postfix(objective=f"{np.mean(values):.3f}")
        schedule.step()
        now = held_out()
        value = now["held_out_guarded"]
        improved = value > best
        curve.append({"epoch": epoch, "train": float(np.mean(values)), **now,
                      "seconds": round(time.time() - began, 1)})
        logger.info("training %s epoch %d/%d: train objective %.4f, held-out %.4f, departure %.4f, guarded "
                    "%.4f (best %.4f%s), %.0f s", name, epoch, cfg.train_epochs, np.mean(values),
                    now["held_out"], now["held_out_departure"], value, max(best, value),
                    ", kept" if improved else "", time.time() - began)
        if improved:
            best, best_state, stale = value, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= PATIENCE:
                logger.info("training %s: no better held-out objective for %d epoch(s); stopping", name, stale)
                break
    with atomic_path(out) as tmp:
        torch.save({k: v.detach().cpu() for k, v in best_state.items()}, tmp)
    best_epoch = max(curve, key=lambda c: c["held_out_guarded"])["epoch"]
    write_json_atomic(record_path, {"key": key, "model": name, "settings": settings, "asr_model": asr_model,
                                    "device": str(device),
                                    "best_epoch": best_epoch, "curve": curve,
                                    "seconds": round(time.time() - start, 1),
                                    "train_signals": [i.signal for i in train_items],
                                    "held_out_signals": [i.signal for i in held_items]})
    logger.info("training %s: kept epoch %d (held-out guarded objective %.4f, untrained %.4f); wrote %s",
                name, best_epoch, best, curve[0]["held_out_guarded"], out)
    return out
