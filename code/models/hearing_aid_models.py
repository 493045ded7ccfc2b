"""Hearing-aid (enhancement) models: the contract, the registry and the factory.

The model contract: a model is called with a batch of stereo audio
``signal_tensor`` (torch float32 ``[B, 2, T]``; items shorter than ``T`` are
zero-padded after their end) and ``audiogram_levels`` (torch float32
``[B, F]``, each item's listener audiogram in dB HL at the run's audiogram
frequencies, by default ``AUDIOGRAM_FREQUENCIES``), and returns a tensor of
the same shape, time-aligned with the input. A model is a plain function or a
``torch.nn.Module`` (or any class with ``__call__``). Models are looked up by
name in ``MODELS``: to add one, write it here (or in a module of its own under
``code/models/``) and register it with one line.

A registered class is built with ``sample_rate=`` and ``audiogram_frequencies=``
(and the run's ``results_dir=`` and ``tag=``, where trained weights are found) when
its constructor takes them; ``settings()``, when a model has it, returns
what determines its output besides its code (for cache keys). A model's code key
covers its own code and the project code it calls (``code.keys.code_digest``), so
editing one model recomputes that model and the models that use it, nothing else.

The models shipped: ``identity`` (no aid), ``NLR1`` and ``NALR`` (prescriptions.py),
``LyricAid`` and its control ``LyricAidLevelOnly`` (lyricaid.py).
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Callable, Protocol

import torch

from code.config import did_you_mean
from code.keys import bytes_digest, file_digest
from code.models.audiograms import AUDIOGRAM_FREQUENCIES
from code.models.lyricaid import LyricAid, LyricAidLevelOnly
from code.models.prescriptions import NALR, NLR1
from code.models.weights import training_record, weights_stem, weights_to_load


class EnhancementModel(Protocol):
    """What every model is: audio ``[B, 2, T]`` + levels ``[B, F]`` -> audio ``[B, 2, T]``."""

    def __call__(self, signal_tensor: torch.Tensor, audiogram_levels: torch.Tensor) -> torch.Tensor: ...


def identity(signal_tensor: torch.Tensor, audiogram_levels: torch.Tensor) -> torch.Tensor:
    """Returns its input unchanged (the 'no hearing aid' reference)."""
    return signal_tensor


# name -> a model class (built per run) or a model function. Add your model here.
MODELS: dict[str, Callable] = {
    "identity": identity,
    "NLR1": NLR1,
    "NALR": NALR,
    "LyricAid": LyricAid,
    "LyricAidLevelOnly": LyricAidLevelOnly,
}


def unknown_model(name: str) -> str | None:
    """Why ``name`` is not a registered model (with the closest name and the registered ones),
    or None when it is."""
    if name in MODELS:
        return None
    return f"unknown model {name!r}{did_you_mean(name, MODELS)} Registered models: {sorted(MODELS)}"


def _target(entry):
    return entry.func if isinstance(entry, functools.partial) else entry


def make_model(name: str, *, sample_rate: int = 44100,
               audiogram_frequencies: tuple[float, ...] = AUDIOGRAM_FREQUENCIES,
               results_dir: Path | None = None, tag: str = "") -> EnhancementModel:
    """Build the model registered as ``name``.

    A registered class (or ``functools.partial`` of one) is instantiated, given
    ``sample_rate`` and ``audiogram_frequencies`` (and the run's ``results_dir``, where
    trained weights are kept, and ``tag``, which names them) for those of them its
    constructor takes; a registered function is the model itself.

    Raises:
        ValueError: listing the registered names, for an unknown ``name``.
    """
    problem = unknown_model(name)
    if problem:
        raise ValueError(problem)
    entry = MODELS[name]
    if not inspect.isclass(_target(entry)):
        return entry
    offered = {"sample_rate": sample_rate, "audiogram_frequencies": tuple(audiogram_frequencies),
               "results_dir": results_dir, "tag": tag}
    try:
        params = inspect.signature(entry).parameters
    except (TypeError, ValueError):
        params = {}
    return entry(**{k: v for k, v in offered.items() if k in params})


def trained_weights_used(results_dir: Path | str, name: str, *, tag: str = "") -> dict | None:
    """For a submission's provenance: the trained weights file that the registered model
    ``name`` loads in a run tagged ``tag`` (``weights_to_load``), with its digest and its
    training record (key, options, best epoch); None for a model that loads no weights."""
    target = _target(MODELS.get(name))
    if not (inspect.isclass(target) and issubclass(target, torch.nn.Module)
            and "results_dir" in inspect.signature(target).parameters):
        return None
    path = weights_to_load(results_dir, weights_stem(target), tag=tag)
    if path is None:
        return None
    training = training_record(path)
    return {"file": str(path), "digest": file_digest(path),
            "training": {k: training.get(k) for k in ("key", "settings", "best_epoch")}}


def model_settings(model: EnhancementModel) -> dict:
    """What determines a model's output besides its code, for cache keys and saved configs.

    A model's ``settings()`` when it has one; otherwise its qualified name (a
    plain function's ``repr`` holds a memory address, which would never match
    again), plus a digest of its weights for a ``torch.nn.Module``.
    """
    settings = getattr(model, "settings", None)
    if callable(settings):
        return settings()
    target = model if inspect.isfunction(model) or inspect.isclass(model) else type(model)
    described = {"callable": f"{target.__module__}.{target.__qualname__}"}
    if isinstance(model, torch.nn.Module):
        described["weights"] = bytes_digest(
            part for name, tensor in sorted(model.state_dict().items())
            for part in (name, tensor.detach().to("cpu").contiguous().numpy().tobytes()))
    return described
