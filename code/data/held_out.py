"""The prompts held out for early stopping, drawn the same way wherever a model is fitted."""

from __future__ import annotations

import numpy as np


def held_out_prompts(prompts: list[str], *, fraction: float, seed: int) -> set[str]:
    """``round(fraction x distinct prompts)`` of the distinct ``prompts`` (or group labels),
    at least 1 and at most all but 1, drawn with ``seed``; none with fewer than 2 distinct."""
    unique = sorted(set(prompts))
    if len(unique) < 2:
        return set()
    n_held = int(np.clip(round(fraction * len(unique)), 1, len(unique) - 1))
    order = np.random.default_rng(seed).permutation(len(unique))
    return {unique[j] for j in order[:n_held]}
