"""The model contract: batches of [B, 2, T] audio and [B, F] audiogram levels in, same shape out."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tests.conftest import DEMO_ROOT

from code.data.audio import read_audio
from code.data.layout import locate_split
from code.data.metadata import load_metadata
from code.data.validation import validate_split
from code.data_loading import CLIPDataset, make_dataloader
from code.enhancement import enhance_split
from code.enhancement_plan import output_dir
from code.models import hearing_aid_models
from code.models.audiograms import AUDIOGRAM_FREQUENCIES, DEFAULT_AUDIOGRAMS, audiogram_from_levels
from code.models.hearing_aid_models import make_model


class GuideModel(torch.nn.Module):
    """A model written as the guide describes: forward(signal_tensor, audiogram_levels)."""

    seen: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    def __init__(self):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, signal_tensor, audiogram_levels):
        GuideModel.seen.append((tuple(signal_tensor.shape), tuple(audiogram_levels.shape)))
        boost = 1.0 + audiogram_levels.mean(dim=1) / 100.0  # one audiogram per item
        return signal_tensor * self.gain * boost[:, None, None]


def _levels(category: str) -> torch.Tensor:
    return torch.tensor(np.asarray(DEFAULT_AUDIOGRAMS[category].levels, dtype=np.float32))


def _demo_items(n: int) -> list[np.ndarray]:
    layout = locate_split(DEMO_ROOT, "valid")
    return [read_audio(layout.audio_path(r["signal"])) for r in load_metadata(layout.metadata_file)[:n]]


@pytest.mark.parametrize("name", ["NLR1", "NALR", "identity"])
def test_padding_never_leaks(name):
    model = make_model(name)
    short, long_ = _demo_items(2)
    short, long_ = short[:, :30000] * 4.0, np.resize(long_ * 4.0, (2, 60000)).astype(np.float32)
    alone = model(torch.from_numpy(short)[None], _levels("Moderate")[None])[0]
    batch = torch.zeros(2, 2, 60000)
    batch[0, :, :30000] = torch.from_numpy(short)
    batch[1] = torch.from_numpy(long_)
    together = model(batch, torch.stack([_levels("Moderate"), _levels("Mild")]))[0, :, :30000]
    if name == "NALR":  # a torch convolution: equal within float32 rounding
        assert torch.allclose(alone, together, rtol=0, atol=1e-6)
    else:  # NLR1 processes each item up to its own end: bit-identical
        assert torch.equal(alone, together)


def test_batches_follow_the_contract(demo_root):
    data = validate_split(demo_root, "valid", check_audio=False)
    dataset = CLIPDataset(data.layout, data.records[:3], audiogram_frequencies=AUDIOGRAM_FREQUENCIES,
                          audiogram_levels={c: list(a.levels) for c, a in DEFAULT_AUDIOGRAMS.items()})
    batch = next(iter(make_dataloader(dataset, batch_size=3, num_workers=1)))
    assert batch["signals"].shape[:2] == (3, 2) and batch["signals"].dtype == torch.float32
    assert batch["signals"].shape[2] == int(batch["lengths"].max())
    assert [r["signal"] for r in batch["metadata"]] == [r["signal"] for r in data.records[:3]]
    assert batch["audiogram_levels"].shape == (3, len(AUDIOGRAM_FREQUENCIES))
    for row, record in zip(batch["audiogram_levels"], batch["metadata"]):
        assert torch.equal(row, _levels(record["hearing_loss"]))
    assert batch["audiogram_frequencies"].tolist() == list(AUDIOGRAM_FREQUENCIES)


def test_a_guide_model_runs_with_one_line(demo_root, tmp_path, monkeypatch):
    monkeypatch.setitem(hearing_aid_models.MODELS, "guide", GuideModel)  # the one line
    GuideModel.seen.clear()
    split = validate_split(demo_root, "valid", check_audio=False)
    split = dataclasses.replace(split, records=split.records[:3])
    summary = enhance_split(split, model_name="guide", audiograms=DEFAULT_AUDIOGRAMS,
                            results_dir=tmp_path, jobs=1, device="cpu", batch_size=2)
    assert summary.done == 3
    assert GuideModel.seen == [((2, 2, GuideModel.seen[0][0][2]), (2, 15)),
                               ((1, 2, GuideModel.seen[1][0][2]), (1, 15))]
    for r in split.records:
        audio = read_audio(split.layout.audio_path(r["signal"]))
        out = read_audio(output_dir(tmp_path, "guide", "signals") / f"{r['signal']}.wav")
        boost = 1.0 + float(_levels(r["hearing_loss"]).mean()) / 100.0
        assert out.shape == audio.shape  # cropped to its own length
        assert np.allclose(out, audio * 0.5 * boost, atol=1e-6)
    again = enhance_split(split, model_name="guide", audiograms=DEFAULT_AUDIOGRAMS,
                          results_dir=tmp_path, jobs=1, device="cpu")
    assert again.reused == 3  # an nn.Module without settings() is reusable (weights are hashed)


def test_mixed_audiogram_frequencies_are_refused(demo_root, tmp_path):
    table = dict(DEFAULT_AUDIOGRAMS, Mild=audiogram_from_levels([10, 20, 30], [500, 1000, 2000]))
    split = validate_split(demo_root, "valid", check_audio=False)
    with pytest.raises(ValueError, match="mixes frequency sets"):
        enhance_split(split, model_name="NLR1", audiograms=table, results_dir=tmp_path, jobs=1)


def test_wrong_output_shape_names_the_signals(demo_root, tmp_path, monkeypatch):
    monkeypatch.setitem(hearing_aid_models.MODELS, "mono", lambda s, a: s[:, :1])
    split = validate_split(demo_root, "valid", check_audio=False)
    first = split.records[0]["signal"]
    with pytest.raises(RuntimeError, match=f"model mono returned shape .*{first}"):
        enhance_split(split, model_name="mono", audiograms=DEFAULT_AUDIOGRAMS,
                      results_dir=tmp_path, jobs=1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_nalr_on_the_gpu_matches_the_cpu():
    model = make_model("NALR")
    audio = torch.from_numpy(np.stack(_demo_items(2)[0:1]) * 4.0)
    levels = _levels("Moderate")[None]
    cpu = model(audio, levels)
    gpu = model.to("cuda")(audio.to("cuda"), levels.to("cuda")).cpu()
    assert torch.allclose(cpu, gpu, rtol=0, atol=1e-5)
