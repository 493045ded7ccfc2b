"""Hearing-aid (enhancement) models.

Every model has the same shape: it is called with the stereo audio the
listener would hear (float32 ``[2, samples]``) and the listener's audiogram,
and returns processed audio of exactly the same shape, time-aligned with the
input. Models are looked up by name in ``MODELS``; to add one, write a class
(or a function) with that call signature and add one line to ``MODELS``.

``NLR1`` is the NAL-R prescription followed by a compressor, computed with
pyclarity's ``NALR`` filter design and the same compressor as pyclarity's
``Compressor`` (re-implemented as a compiled loop: identical arithmetic, about
two orders of magnitude faster; tests compare the two).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import logging
import sys
import types
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numba
import numpy as np
import scipy.signal
from clarity.enhancer.nalr import NALR
from clarity.utils.audiogram import (
    AUDIOGRAM_MILD,
    AUDIOGRAM_MODERATE,
    AUDIOGRAM_REF,
    Audiogram,
)

logger = logging.getLogger(__name__)

# The CLIP metadata gives only a hearing-loss category per listener. These are
# the audiograms used for each category by default (pyclarity's reference and
# preset audiograms, 125 Hz..16 kHz, dB HL); main.py can override the table.
DEFAULT_AUDIOGRAMS: dict[str, Audiogram] = {
    "No Loss": AUDIOGRAM_REF,
    "Mild": AUDIOGRAM_MILD,
    "Moderate": AUDIOGRAM_MODERATE,
}

COMPRESSOR_EPS = 1e-8  # pyclarity's Compressor adds this inside the RMS square root


class EnhancementModel(Protocol):
    """What every model is: audio ``[2, T]`` + audiogram -> audio ``[2, T]``."""

    def __call__(self, audio: np.ndarray, audiogram: Audiogram) -> np.ndarray: ...


def audiogram_from_levels(levels: list[float], frequencies: list[float]) -> Audiogram:
    """Build an Audiogram from plain lists (for config files and the command line)."""
    return Audiogram(levels=np.asarray(levels, dtype=float),
                     frequencies=np.asarray(frequencies, dtype=float))


def audiogram_to_dict(audiogram: Audiogram) -> dict:
    """Plain-list form of an Audiogram, for saved configs and cache keys."""
    return {"levels": [float(x) for x in audiogram.levels],
            "frequencies": [float(x) for x in audiogram.frequencies]}


@numba.njit(cache=True)
def _compress(signal: np.ndarray, win_len: int, eps: float, threshold: float,
              attenuation: float, attack: float, release: float,
              makeup_gain: float) -> np.ndarray:
    """pyclarity ``Compressor.process`` in one pass.

    The RMS is taken over the last ``win_len`` samples (zeros before the
    start) as a running sum instead of a full convolution; the gain follows
    the same per-sample recursion.
    """
    n = signal.shape[0]
    out = np.empty(n)
    acc = 0.0
    curr = 1.0
    for i in range(n):
        acc += signal[i] * signal[i]
        if i >= win_len:
            acc -= signal[i - win_len] * signal[i - win_len]
        r = np.sqrt(max(acc, 0.0) / win_len + eps)
        if r > threshold:
            target = r * attenuation + (1.0 - attenuation) * threshold
            curr = curr * (1.0 - attack) + target * attack
        else:
            curr = release + curr * (1.0 - release)
        out[i] = signal[i] * curr * makeup_gain
    return out


@dataclass(frozen=True)
class CompressorSettings:
    """pyclarity ``Compressor`` parameters (defaults: the Clarity/Cadenza baselines)."""

    threshold: float = 0.35
    attenuation: float = 0.1
    attack: float = 50.0  # ms
    release: float = 1000.0  # ms
    rms_buffer_size: float = 0.064  # s
    makeup_gain: float = 1.0

    def compress(self, signal: np.ndarray, sample_rate: float) -> np.ndarray:
        """Compress a 1-D float64 signal exactly as pyclarity's ``Compressor.process``."""
        win_len = int(self.rms_buffer_size * sample_rate)
        attack = (1.0 / (self.attack / 1000.0)) / sample_rate
        release = (1.0 / (self.release / 1000.0)) / sample_rate
        signal = np.ascontiguousarray(signal, dtype=np.float64)
        return _compress(signal, win_len, COMPRESSOR_EPS, self.threshold,
                         self.attenuation, attack, release, self.makeup_gain)


@dataclass
class NLR1:
    """NAL-R prescription (pyclarity ``NALR``) then a compressor, per ear.

    The NAL-R FIR is linear-phase with a delay of ``nfir // 2`` samples; the
    output is shifted back by exactly that, so it has the input's length and
    timing.
    """

    sample_rate: int = 44100
    nfir: int = 220
    compressor: CompressorSettings = field(default_factory=CompressorSettings)
    _filters: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def settings(self) -> dict:
        return {"sample_rate": self.sample_rate, "nfir": self.nfir,
                "compressor": dataclasses.asdict(self.compressor)}

    def nalr_filter(self, audiogram: Audiogram) -> np.ndarray:
        """The NAL-R FIR for ``audiogram``, designed once and then reused."""
        key = (tuple(np.asarray(audiogram.levels, float)),
               tuple(np.asarray(audiogram.frequencies, float)))
        if key not in self._filters:
            fir, _ = NALR(self.nfir, self.sample_rate).build(audiogram)
            self._filters[key] = fir
        return self._filters[key]

    def __call__(self, audio: np.ndarray, audiogram: Audiogram) -> np.ndarray:
        fir = self.nalr_filter(audiogram)
        delay = self.nfir // 2
        n = audio.shape[-1]
        # Overlap-add FFT convolution equals np.convolve(x, fir) to float precision.
        amplified = scipy.signal.oaconvolve(
            np.asarray(audio, dtype=np.float32), fir.astype(np.float32)[None, :], axes=-1)
        out = np.empty(audio.shape, dtype=np.float32)
        for ch in range(audio.shape[0]):
            compressed = self.compressor.compress(amplified[ch], self.sample_rate)
            out[ch] = compressed[delay: delay + n]
        return out


@dataclass
class Identity:
    """Returns its input unchanged (the 'no hearing aid' reference)."""

    sample_rate: int = 44100

    def settings(self) -> dict:
        return {}

    def __call__(self, audio: np.ndarray, audiogram: Audiogram) -> np.ndarray:
        return np.asarray(audio, dtype=np.float32)


# name -> factory taking the sample rate as keyword. Add your model here.
MODELS: dict[str, Callable[..., EnhancementModel]] = {
    "identity": Identity,
    "NLR1": NLR1,
}


def _is_factory(entry) -> bool:
    """Classes (and ``functools.partial`` of classes) are built; anything else is the model."""
    target = entry.func if isinstance(entry, functools.partial) else entry
    return inspect.isclass(target)


def make_model(name: str, *, sample_rate: int = 44100) -> EnhancementModel:
    """Build the model registered as ``name``.

    A registered class is instantiated, with ``sample_rate=`` when its
    constructor takes that keyword; a registered function is the model itself.

    Raises:
        ValueError: listing the registered names, for an unknown ``name``.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered models: {sorted(MODELS)}")
    entry = MODELS[name]
    if not _is_factory(entry):
        return entry
    try:
        accepts = "sample_rate" in inspect.signature(entry).parameters
    except (TypeError, ValueError):
        accepts = False
    return entry(sample_rate=sample_rate) if accepts else entry()


def model_settings(model: EnhancementModel) -> dict:
    """What determines a model's output besides its code, for cache keys and saved configs.

    A model's ``settings()`` when it has one; otherwise its qualified name (a
    plain function's ``repr`` holds a memory address, which would never match
    again).
    """
    settings = getattr(model, "settings", None)
    if callable(settings):
        return settings()
    target = model if inspect.isfunction(model) or inspect.isclass(model) else type(model)
    return {"callable": f"{target.__module__}.{target.__qualname__}"}


PROJECT_PACKAGE = "code"  # modules of this project: code.*


def _module_of(obj) -> types.ModuleType | None:
    if isinstance(obj, types.ModuleType):
        return obj
    name = getattr(obj, "__module__", None)
    return sys.modules.get(name) if isinstance(name, str) else None


def _is_project_module(module: types.ModuleType) -> bool:
    return module.__name__.startswith(PROJECT_PACKAGE + ".")


def _code_modules(obj) -> list[types.ModuleType]:
    """The module defining ``obj``, plus every project module reachable from it."""
    start = _module_of(obj)
    if start is None:
        return []
    seen = {start.__name__: start}
    todo = [start]
    while todo:
        module = todo.pop()
        for value in list(vars(module).values()):
            found = _module_of(value)
            if found is not None and _is_project_module(found) and found.__name__ not in seen:
                seen[found.__name__] = found
                todo.append(found)
    return [seen[name] for name in sorted(seen)]


def _code_object_bytes(code: types.CodeType) -> bytes:
    parts = [code.co_code, repr(code.co_names).encode()]
    for const in code.co_consts:
        parts.append(_code_object_bytes(const) if isinstance(const, types.CodeType)
                     else repr(const).encode())
    return b"\0".join(parts)


def _own_code(obj) -> bytes:
    try:
        return inspect.getsource(obj).encode("utf-8")
    except (OSError, TypeError):  # defined without a source file (exec, a REPL)
        pass
    functions = [obj] if inspect.isfunction(obj) else [
        v for v in vars(obj).values() if inspect.isfunction(v)] if inspect.isclass(obj) else []
    return b"".join(_code_object_bytes(f.__code__) for f in functions) or repr(obj).encode()


def model_code_digest(factory) -> str:
    """Hash of the code behind a registered model, for cache keys.

    Rule: the source of the registered class or function itself, plus the full
    source files of the module that defines it and of every project module
    (``code.*``) reachable from that module's globals, transitively (imported
    modules, or classes and functions imported from them). Editing any of those
    files changes the digest, so Stage 1 recomputes; other packages (pyclarity,
    torch) are not hashed.
    """
    target = factory.func if isinstance(factory, functools.partial) else factory
    h = hashlib.blake2b(digest_size=8)
    h.update(_own_code(target))
    for module in _code_modules(target):
        h.update(module.__name__.encode())
        try:
            source = inspect.getsourcefile(module)
        except TypeError:
            source = None
        if source:
            with open(source, "rb") as f:
                h.update(f.read())
    return h.hexdigest()
