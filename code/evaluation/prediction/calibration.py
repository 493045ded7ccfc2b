"""Map ASR scores (0..1) to predicted listener intelligibility (0..100).

A logistic curve ``100 / (1 + exp(-k (x - x0)))`` is fitted by least squares
to pairs (ASR score of a training signal, that listener's ``correctness x
100``). The official recipe fits the same curve to the 0..1 correctness,
which squashes it into 0..1 of a 0..100 scale; here the target is on 0..100.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit


def logistic_0_100(x: np.ndarray, x0: float, k: float) -> np.ndarray:
    """The calibration curve, on the 0..100 scale."""
    return 100.0 / (1.0 + np.exp(-k * (np.asarray(x, dtype=float) - x0)))


@dataclass(frozen=True)
class LogisticCalibration:
    """A fitted logistic map from ASR score (0..1) to intelligibility (0..100)."""

    x0: float
    k: float

    @classmethod
    def fit(cls, asr_score_0_1: np.ndarray, correctness_0_100: np.ndarray) -> LogisticCalibration:
        """Least-squares fit.

        Raises:
            ValueError: when the inputs are too few, of different lengths, off
                their scales, or the fit does not converge.
        """
        x = np.asarray(asr_score_0_1, dtype=float)
        y = np.asarray(correctness_0_100, dtype=float)
        if x.shape != y.shape or x.ndim != 1:
            raise ValueError(f"need two 1-D arrays of equal length, got {x.shape} and {y.shape}")
        if x.size < 3:
            raise ValueError(f"need at least 3 training pairs to calibrate, got {x.size}")
        if not (np.all(np.isfinite(x)) and np.all((x >= 0) & (x <= 1))):
            raise ValueError("ASR scores must be finite and within 0..1")
        if not (np.all(np.isfinite(y)) and np.all((y >= 0) & (y <= 100))):
            raise ValueError("training intelligibility must be finite and within 0..100")
        if np.all(y <= 1.0) and np.any(y > 0):
            # 0..1 correctness passed without the x100 (the official recipe's bug)
            raise ValueError("training targets look like 0..1 correctness; pass correctness x 100")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", OptimizeWarning)
                (x0, k), _ = curve_fit(logistic_0_100, x, y, p0=[0.5, 5.0], maxfev=20000)
        except (RuntimeError, OptimizeWarning) as e:
            raise ValueError(f"logistic calibration did not converge on {x.size} pairs: {e}") from e
        return cls(float(x0), float(k))

    def predict(self, asr_score_0_1: np.ndarray) -> np.ndarray:
        """Predicted intelligibility, 0..100."""
        return np.clip(logistic_0_100(asr_score_0_1, self.x0, self.k), 0.0, 100.0)


def prompt_folds(prompts: list[str], *, n_folds: int = 5, seed: int = 0,
                 kind: str = "prompts") -> np.ndarray:
    """Assign each item a fold (0..n_folds-1) so that all items with the same
    label (a prompt, or a group of ``fold_groups``) share a fold. Deterministic
    for a given ``seed``; ``kind`` names the labels in the error message."""
    unique = sorted(set(prompts))
    if len(unique) < n_folds:
        raise ValueError(f"need at least {n_folds} distinct {kind} for {n_folds} folds, "
                         f"got {len(unique)}")
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = {unique[j]: i % n_folds for i, j in enumerate(order)}
    return np.array([fold_of[p] for p in prompts])


FOLD_GROUPINGS = ("auto", "track", "prompt")


def _track(record: dict) -> str | None:
    value = record.get("fma")
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) else None


def fold_groups(fit_records: list[dict], other_records: list[dict] = (), *, by: str = "auto"
                ) -> tuple[list[str], list[str], str]:
    """The group label of every record, for folds that never split a group.

    ``by="track"``: records of one track (metadata ``fma``) share a group, and so
    do records of one prompt (groups are joined through either, so a prompt sung
    in two tracks joins them); CLIP1 train has 845 of its 1,158 tracks with several
    prompts, and its evaluation split shares no track with train, so a predictor
    must not learn a track's sound from its other lines. ``by="prompt"``: one
    group per prompt. ``by="auto"``: by track when every fit record carries an
    ``fma``, else by prompt. An ``other`` record without ``fma`` joins through its
    prompt.

    Returns:
        the labels of ``fit_records``, of ``other_records``, and the grouping used
        (``"track"`` or ``"prompt"``).

    Raises:
        ValueError: for an unknown ``by``, or ``by="track"`` when a fit record has no ``fma``.
    """
    if by not in FOLD_GROUPINGS:
        raise ValueError(f"unknown fold grouping {by!r}; choose one of {FOLD_GROUPINGS}")
    records = list(fit_records) + list(other_records)
    with_track = all(_track(r) for r in fit_records) and len(fit_records) > 0
    if by == "track" and not with_track:
        lacking = next((r.get("signal") for r in fit_records if not _track(r)), None)
        raise ValueError(f"folds by track need an 'fma' in every fit record; signal {lacking} has none")
    how = "track" if by == "track" or (by == "auto" and with_track) else "prompt"
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for r in records:
        prompt = find(f"prompt:{r['prompt']}")
        if how == "track" and _track(r):
            track = find(f"track:{_track(r)}")
            if track != prompt:
                parent[max(track, prompt)] = min(track, prompt)
    labels = [find(f"prompt:{r['prompt']}") for r in records]
    return labels[: len(fit_records)], labels[len(fit_records):], how
