"""The Librarian: a checked split's records and audio as torch batches for Stage 1.

The pieces it delegates to live in ``code/data/`` (importable without torch):
``layout`` (where files are), ``metadata`` (records and their checks), ``audio``
(decoding, resampling, audio checks) and ``validation`` (a whole split, checked
before heavy work). Batches: ``signals [B, 2, T]`` float32 at the run's rate,
``lengths``, ``metadata``, ``audiogram_levels [B, F]`` and ``audiogram_frequencies``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from code.config import INPUT_KINDS, SAMPLE_RATE
from code.data.audio import read_audio
from code.data.layout import SplitLayout
from code.errors import DataError


class CLIPDataset(Dataset):
    """One split's records with their audio, as torch tensors.

    Each item is a dict: ``signals`` (float32 tensor ``[2, T]``: the
    ``input_kind`` audio), ``length`` (T), ``record`` (the metadata dict),
    ``audiogram_levels`` (float32 ``[F]`` dB HL, when an audiogram table is
    given) and, when ``with_unprocessed``, ``unprocessed`` (``[2, T']``).
    Decoding and resampling happen here, so in DataLoader worker processes.
    """

    def __init__(self, layout: SplitLayout, records: list[dict], *,
                 input_kind: str = "signals", sample_rate: int = SAMPLE_RATE,
                 with_unprocessed: bool = False,
                 audiogram_levels: Mapping[str, Sequence[float]] | None = None,
                 audiogram_frequencies: Sequence[float] | None = None) -> None:
        if input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {input_kind!r}")
        self.layout = layout
        self.records = records
        self.input_kind = input_kind
        self.sample_rate = sample_rate
        self.with_unprocessed = with_unprocessed
        self.audiogram_levels = ({k: torch.tensor(list(v), dtype=torch.float32)
                                  for k, v in audiogram_levels.items()}
                                 if audiogram_levels is not None else None)
        self.audiogram_frequencies = (torch.tensor(list(audiogram_frequencies), dtype=torch.float32)
                                      if audiogram_frequencies is not None else None)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        path = self.layout.audio_path(record["signal"], self.input_kind)
        audio = torch.from_numpy(read_audio(path, self.sample_rate))
        item = {"signals": audio, "length": audio.shape[-1], "record": record}
        if self.audiogram_levels is not None:
            category = record.get("hearing_loss")
            if category not in self.audiogram_levels:
                raise DataError(f"signal {record['signal']}: no audiogram for hearing_loss "
                                f"{category!r}; the table has {sorted(self.audiogram_levels)}")
            item["audiogram_levels"] = self.audiogram_levels[category]
        if self.with_unprocessed:
            unproc = self.layout.audio_path(record["signal"], "unprocessed")
            item["unprocessed"] = torch.from_numpy(read_audio(unproc, self.sample_rate))
        return item


def _pad_stack(tensors: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = [t.shape[-1] for t in tensors]
    # numpy: plain copies (torch's element-wise ops start thread pools, slow when cores are busy)
    out = np.zeros((len(tensors), 2, max(lengths)), dtype=np.float32)
    for i, t in enumerate(tensors):
        out[i, :, : lengths[i]] = t.numpy()
    return torch.from_numpy(out), torch.tensor(lengths, dtype=torch.long)


def collate_clip(items: list[dict], sample_rate: int = SAMPLE_RATE,
                 audiogram_frequencies: torch.Tensor | None = None) -> dict:
    """Batch items into one dict:

    - ``signals``: float32 ``[B, 2, T_max]``, each item zero-padded after its end;
    - ``lengths``: int64 ``[B]``, each item's own length in samples;
    - ``metadata``: the B metadata records;
    - ``sample_rate``: int;
    - ``audiogram_levels``: float32 ``[B, F]`` dB HL and ``audiogram_frequencies``
      float32 ``[F]`` Hz, when the items carry audiograms;
    - ``unprocessed`` / ``unprocessed_lengths`` when the items carry them.
    """
    signals, lengths = _pad_stack([it["signals"] for it in items])
    metadata = [it["record"] for it in items]
    batch = {"signals": signals, "lengths": lengths, "metadata": metadata,
             "sample_rate": sample_rate}
    if "audiogram_levels" in items[0]:
        batch["audiogram_levels"] = torch.stack([it["audiogram_levels"] for it in items])
        batch["audiogram_frequencies"] = audiogram_frequencies
    if "unprocessed" in items[0]:
        batch["unprocessed"], batch["unprocessed_lengths"] = _pad_stack(
            [it["unprocessed"] for it in items])
    return batch


def make_dataloader(dataset: CLIPDataset, *, batch_size: int = 4,
                    num_workers: int = 0) -> DataLoader:
    """A DataLoader over ``dataset`` in metadata order, batched by ``collate_clip``.

    ``num_workers`` processes decode and resample ahead of the consumer (0: in
    this process); at most two batches per worker are prefetched, so memory
    stays bounded.
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        prefetch_factor=2 if num_workers > 0 else None,
        collate_fn=functools.partial(collate_clip, sample_rate=dataset.sample_rate,
                                     audiogram_frequencies=dataset.audiogram_frequencies),
    )
