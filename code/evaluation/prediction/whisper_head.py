"""``whisper-head``: a small torch head on Whisper encoder embeddings, better ear.

The CLIP2 baseline's kind of predictor (pyclarity ``recipes/clip2/baseline``):
each ear's mean-pooled last-layer encoder output (``code.evaluation.asr.embeddings``)
goes through a projection (Linear, GELU, LayerNorm, Dropout) and a regression MLP
(Linear, GELU, Dropout, Linear, Sigmoid) to a score in 0..1; the signal's score
is the better ear's, ``max(left, right)``, and training minimises the MSE of that
maximum against ``correctness`` (the baseline's ``BetterEarLoss``). Unlike the
baseline, the hearing-loss category enters the regression MLP (one-hot), the
embeddings are standardised with the fitted records' mean and spread, and the
backbone stays frozen (the embeddings are cached, so training takes seconds).

Training is deterministic for a seed (its own RNG state, one CPU thread): a
held-out part of the fitted records, whole tracks when the metadata carries
``fma`` (else whole prompts), picks the epoch (early
stopping, as the baseline); the weights of the best epoch are kept.
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path
from typing import ClassVar, Iterator

import numpy as np

from code.config import HEARING_LOSS_CATEGORIES
from code.data.held_out import held_out_prompts
from code.errors import DataError
from code.evaluation.asr.embeddings import EARS, embedding_columns
from code.evaluation.prediction.calibration import fold_groups
from code.evaluation.prediction.capabilities import EMBEDDINGS
from code.evaluation.table import FeatureTable
from code.io_utils import atomic_path, write_json_atomic
from code.resources import torch_device

logger = logging.getLogger(__name__)

# The head and its training (the baseline's conf/config.yaml where it has one).
HEAD_SETTINGS = {
    "hidden_dim": 256,  # baseline model.hidden_dim
    "dropout": 0.1,  # baseline model.dropout
    "lr": 1e-3,  # the baseline's head lr is 1e-4 while its backbone also trains; a frozen one learns faster
    "weight_decay": 1e-4,  # baseline train.weight_decay (AdamW)
    "batch_size": 32,  # baseline data.batch_size
    "max_epochs": 200,
    "patience": 10,  # baseline train.early_stopping.patience
    "min_delta": 1e-4,  # baseline train.early_stopping.min_delta
    "lr_patience": 5,  # baseline train.lr_patience (ReduceLROnPlateau, factor 0.5)
    "val_fraction": 0.15,  # share of the fitted prompts held out to pick the epoch
}
EPOCHS_WITHOUT_VALIDATION = 30  # fewer than 2 distinct prompts: no held-out part, this many epochs


def _embedding_layout(names: list[str]) -> tuple[int, list[int], list[int]]:
    """The embedding width and the column indices of the left and right ears.

    Raises:
        DataError: naming the expected columns, when the table does not hold
            ``enc.left.0..D-1`` and ``enc.right.0..D-1``.
    """
    dim = sum(1 for n in names if n.startswith(f"enc.{EARS[0]}."))
    expected = embedding_columns(dim)
    index = {n: i for i, n in enumerate(names)}
    if dim == 0 or any(n not in index for n in expected):
        shown = names[:6] + (["..."] if len(names) > 6 else [])
        raise DataError(
            "the whisper-head predictor needs Whisper encoder embeddings: columns enc.left.0..enc.left.D-1 "
            f"and enc.right.0..enc.right.D-1 (code.evaluation.asr.embeddings.encoder_embeddings); the table "
            f"has {len(names)} column(s): {shown}")
    return dim, [index[n] for n in expected[:dim]], [index[n] for n in expected[dim:]]


def hearing_loss_one_hot(records: list[dict]) -> np.ndarray:
    """``[N, 3]`` float32 one-hot of each record's hearing-loss category (No Loss, Mild, Moderate).

    Raises:
        DataError: naming the signal, for an unknown category.
    """
    out = np.zeros((len(records), len(HEARING_LOSS_CATEGORIES)), dtype=np.float32)
    for i, r in enumerate(records):
        if r.get("hearing_loss") not in HEARING_LOSS_CATEGORIES:
            raise DataError(f"signal {r.get('signal')}: unknown hearing_loss {r.get('hearing_loss')!r}; "
                            f"expected one of {list(HEARING_LOSS_CATEGORIES)}")
        out[i, HEARING_LOSS_CATEGORIES.index(r["hearing_loss"])] = 1.0
    return out


def _head_module(dim: int, hidden_dim: int, dropout: float):
    import torch
    from torch import nn

    class BetterEarHead(nn.Module):
        """Per-ear projection + MLP + sigmoid on standardised embeddings and the one-hot
        hearing loss; ``forward`` returns ``[B, 2]`` per-ear scores in 0..1."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.zeros(dim))
            self.register_buffer("scale", torch.ones(dim))
            self.projection = nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU(),
                                            nn.LayerNorm(hidden_dim), nn.Dropout(dropout))
            self.regressor = nn.Sequential(
                nn.Linear(hidden_dim + len(HEARING_LOSS_CATEGORIES), hidden_dim // 2), nn.GELU(),
                nn.Dropout(dropout), nn.Linear(hidden_dim // 2, 1), nn.Sigmoid())

        def forward(self, ears: torch.Tensor, hearing_loss: torch.Tensor) -> torch.Tensor:
            # ears [B, 2, D], hearing_loss [B, 3]
            h = self.projection((ears - self.mean) / self.scale)
            hl = hearing_loss[:, None, :].expand(-1, ears.shape[1], -1)
            return self.regressor(torch.cat([h, hl], dim=-1)).squeeze(-1)

    return BetterEarHead()


@contextlib.contextmanager
def _deterministic(seed: int, device: str) -> Iterator[None]:
    """Seeded RNG state of its own (the caller's is restored) and one CPU thread."""
    import torch

    threads = torch.get_num_threads()
    devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


class WhisperHeadPredictor:
    """A torch head on both ears' Whisper encoder embeddings; the better ear's score (0..100)."""

    name: ClassVar[str] = "whisper-head"
    takes: ClassVar[str] = EMBEDDINGS
    handles_missing: ClassVar[bool] = False  # a missing embedding value is refused (fit_predict)
    uses_feature: ClassVar[bool] = False
    fits_precomputed: ClassVar[bool] = False
    trains_on_device: ClassVar[bool] = True  # --asr-device

    @classmethod
    def used_columns(cls, names: list[str], feature: str | None) -> list[str]:
        """The ``enc.*`` columns. Raises: DataError naming them, for a table without them."""
        _, left, right = _embedding_layout(names)
        return [names[i] for i in left + right]

    def __init__(self, *, feature: str | None = None, seed: int = 0, device: str = "cpu",
                 settings: dict | None = None) -> None:
        """``device``: where the head trains (``cpu``, ``cuda``, ``cuda:1``, ``auto``); the same seed
        gives the same predictions on one device, not across devices. ``settings`` override
        ``HEAD_SETTINGS`` (``--predictor-options``)."""
        # ``feature`` is accepted (one signature for every predictor) and not used
        self.seed = seed
        self.device = device
        unknown = sorted(set(settings or {}) - set(HEAD_SETTINGS))
        if unknown:
            raise ValueError(f"--predictor-options: whisper-head has no setting {unknown}; its settings "
                             f"(with defaults): {HEAD_SETTINGS}")
        self.settings = {**HEAD_SETTINGS, **(settings or {})}
        self.dim = 0
        self.model = None
        self.history: dict = {}
        self.notes: list[str] = []

    def _inputs(self, features: FeatureTable, records: list[dict]):
        import torch

        dim, left, right = _embedding_layout(features.names)
        if self.dim and dim != self.dim:
            raise DataError(f"whisper-head was fitted on {self.dim}-wide embeddings, asked to predict "
                            f"from {dim}-wide ones (another Whisper model?)")
        if len(records) != len(features.signals):
            raise ValueError(f"{len(records)} records for {len(features.signals)} feature rows")
        ears = np.stack([features.values[:, left], features.values[:, right]], axis=1)
        return (torch.as_tensor(ears, dtype=torch.float32, device=self.device),
                torch.as_tensor(hearing_loss_one_hot(records), device=self.device), dim)

    def fit(self, features: FeatureTable, target_0_100: np.ndarray, records: list[dict]) -> None:
        """Train the head on max(left, right) vs ``target_0_100 / 100``.

        Raises:
            DataError: for a table without the ``enc.*`` columns or an unknown hearing loss.
            ValueError: for a CUDA device that torch does not see.
        """
        import torch

        self.dim = 0
        self.device = torch_device(self.device, option="--asr-device")
        ears, hl, self.dim = self._inputs(features, records)
        y = torch.as_tensor(np.asarray(target_0_100, dtype=np.float32) / 100.0, device=self.device)
        s = self.settings
        groups, _, _ = fold_groups(records)  # by track when the records carry fma, else by prompt
        held_set = held_out_prompts(groups, fraction=s["val_fraction"], seed=self.seed)
        held = np.array([g in held_set for g in groups], dtype=bool)
        self.notes = []
        if not held.any():
            self.notes.append(f"whisper-head: fewer than 2 distinct prompts among {len(records)} fitted "
                              f"record(s); no held-out part, trained {EPOCHS_WITHOUT_VALIDATION} epochs")
        train = torch.as_tensor(np.flatnonzero(~held), device=self.device)
        val = torch.as_tensor(np.flatnonzero(held), device=self.device)
        with _deterministic(self.seed, self.device):
            model = _head_module(self.dim, s["hidden_dim"], s["dropout"]).to(self.device)
            flat = ears[train].reshape(-1, self.dim)  # standardise with the training ears only
            model.mean.copy_(flat.mean(dim=0))
            model.scale.copy_(flat.std(dim=0, unbiased=False).clamp_min(1e-6))
            self.history = self._train(model, ears, hl, y, train, val)
        self.model = model.eval()

    def _train(self, model, ears, hl, y, train, val) -> dict:
        import torch
        import torch.nn.functional as F

        s = self.settings
        optimizer = torch.optim.AdamW(model.parameters(), lr=s["lr"], weight_decay=s["weight_decay"])
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5,
                                                               patience=s["lr_patience"], min_lr=1e-7)
        generator = torch.Generator(device="cpu").manual_seed(self.seed)
        max_epochs = s["max_epochs"] if len(val) else EPOCHS_WITHOUT_VALIDATION
        best_loss, best_epoch, best_state, waited = math.inf, 0, None, 0
        train_losses, val_losses = [], []
        for epoch in range(1, max_epochs + 1):
            model.train()
            order = train[torch.randperm(len(train), generator=generator).to(train.device)]
            total = 0.0
            for start in range(0, len(order), s["batch_size"]):
                rows = order[start: start + s["batch_size"]]
                loss = F.mse_loss(model(ears[rows], hl[rows]).max(dim=1).values, y[rows])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(rows)
            train_losses.append(total / len(order))
            if not len(val):
                continue
            model.eval()
            with torch.no_grad():
                val_loss = F.mse_loss(model(ears[val], hl[val]).max(dim=1).values, y[val]).item()
            val_losses.append(val_loss)
            scheduler.step(val_loss)
            if val_loss < best_loss - s["min_delta"]:
                best_loss, best_epoch, waited = val_loss, epoch, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                waited += 1
                if waited >= s["patience"]:
                    break
        if best_state is not None:
            model.load_state_dict(best_state)
        epochs = len(train_losses)
        logger.debug("whisper-head: %d epoch(s), best %d, held-out MSE %.4f", epochs, best_epoch, best_loss)
        return {"epochs": epochs, "best_epoch": best_epoch if len(val) else epochs,
                "stopped_early": bool(len(val)) and epochs < max_epochs,
                "val_mse_0_1": best_loss if len(val) else None,
                "n_train": int(len(train)), "n_val": int(len(val)),
                "train_mse_0_1": train_losses, "val_mse_history_0_1": val_losses}

    def predict_ears(self, features: FeatureTable, records: list[dict]) -> np.ndarray:
        """``[N, 2]`` per-ear predictions (left, right), 0..100."""
        import torch

        assert self.model is not None, "predict before fit"
        ears, hl, _ = self._inputs(features, records)
        with torch.no_grad():
            return self.model(ears, hl).double().cpu().numpy() * 100.0

    def predict(self, features: FeatureTable, records: list[dict]) -> np.ndarray:
        """The better ear's prediction (0..100) per record."""
        return self.predict_ears(features, records).max(axis=1)

    def params(self) -> dict:
        return {"predictor": self.name, "seed": self.seed, "device": self.device,
                "embedding_dim": self.dim, "features": "enc.left.0..D-1, enc.right.0..D-1",
                "hearing_loss_order": list(HEARING_LOSS_CATEGORIES), "settings": self.settings,
                "training": self.history, "weights_file": "<stem>.pt"}

    def save(self, path_stem: Path) -> list[Path]:
        """Write ``<stem>.pt`` (the head's state_dict, on the CPU) and ``<stem>.json`` (config, epochs,
        held-out loss)."""
        import torch

        assert self.model is not None, "save before fit"
        weights = Path(f"{path_stem}.pt")
        with atomic_path(weights) as tmp:
            torch.save({k: v.cpu() for k, v in self.model.state_dict().items()}, tmp)
        config = Path(f"{path_stem}.json")
        write_json_atomic(config, self.params())
        return [config, weights]
