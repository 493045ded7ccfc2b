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


def prompt_folds(prompts: list[str], *, n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """Assign each item a fold (0..n_folds-1) so that all items with the same
    prompt share a fold. Deterministic for a given ``seed``."""
    unique = sorted(set(prompts))
    if len(unique) < n_folds:
        raise ValueError(f"need at least {n_folds} distinct prompts for {n_folds} folds, "
                         f"got {len(unique)}")
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = {unique[j]: i % n_folds for i, j in enumerate(order)}
    return np.array([fold_of[p] for p in prompts])


def out_of_fold_predictions(fit_x: np.ndarray, fit_y: np.ndarray, fit_prompts: list[str],
                            predict_x: np.ndarray, predict_prompts: list[str], *,
                            n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold predictions on the training split.

    Prompts are split into ``n_folds`` folds; each item of ``predict_x`` is
    predicted by a calibration fitted on the training pairs (``fit_x`` 0..1,
    ``fit_y`` 0..100) whose prompts lie in other folds. No prediction has seen
    its own label, nor any pair with the same prompt.
    """
    fit_x = np.asarray(fit_x, dtype=float)
    fit_y = np.asarray(fit_y, dtype=float)
    predict_x = np.asarray(predict_x, dtype=float)
    folds = prompt_folds(list(fit_prompts) + list(predict_prompts), n_folds=n_folds, seed=seed)
    fit_folds, predict_folds = folds[: len(fit_x)], folds[len(fit_x):]
    predictions = np.full(predict_x.shape, np.nan)
    for fold in range(n_folds):
        test = predict_folds == fold
        if not np.any(test):
            continue
        model = LogisticCalibration.fit(fit_x[fit_folds != fold], fit_y[fit_folds != fold])
        predictions[test] = model.predict(predict_x[test])
    return predictions
