"""Training a hearing aid through the simulated listener: LyricAid, the objective, the stage."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os

import numpy as np
import pytest
import torch

from tests.conftest import DEMO_ROOT, demo_records, make_clip_root

from code.config import ExperimentConfig
from code.data.audio import read_audio
from code.data.held_out import held_out_prompts
from code.errors import ConfigError
from code.hearing_loss.design import ear_design
from code.models.audiograms import DEFAULT_AUDIOGRAMS
from code.models.hearing_aid_models import make_model, model_settings, trained_weights_used
from code.models.lyricaid import LEVEL_CAP_DB
from code.models.prescriptions import NLR1
from code.models.weights import TRAINED_WEIGHTS, trained_weights_path
from code.training import train as training
from code.training.objective import resample_to_16k

CHECKPOINT = os.environ.get("CLIP_OPENAI_CHECKPOINT")
# CI sets CLIP_REQUIRE_OPENAI_CHECKPOINT=1: there a missing checkpoint fails instead of skipping.
if os.environ.get("CLIP_REQUIRE_OPENAI_CHECKPOINT") == "1" and not (CHECKPOINT and os.path.isfile(CHECKPOINT)):
    raise RuntimeError(f"CLIP_REQUIRE_OPENAI_CHECKPOINT=1 but CLIP_OPENAI_CHECKPOINT={CHECKPOINT!r} "
                       "is not a file: the training tests cannot run")
needs_whisper = pytest.mark.skipif(not CHECKPOINT, reason="set CLIP_OPENAI_CHECKPOINT to an openai-whisper .pt file")
CROP = 44100  # 1 s of each demo signal keeps these tests short


def _levels(category: str) -> torch.Tensor:
    return torch.tensor(np.asarray(DEFAULT_AUDIOGRAMS[category].levels, dtype=np.float32))


def _items(n: int) -> list[training.TrainItem]:
    """The first ``n`` Mild/Moderate demo training signals, unprocessed, cropped to 1 s."""
    records = [r for r in demo_records("train") if r["hearing_loss"] in training.TRAIN_CATEGORIES][:n]
    return [training.TrainItem(r["signal"], r["original_prompt"], r["hearing_loss"], r["prompt"],
                               read_audio(DEMO_ROOT / "cadenza_data" / "train" / "unprocessed"
                                          / f"{r['signal']}_unproc.flac")[:, :CROP])
            for r in records]


def _randomised(model: torch.nn.Module, seed: int = 0, scale: float = 1.0) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * scale)
    return model


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    items = _items(2)
    x = torch.from_numpy(np.stack([i.audio for i in items]))
    return x, torch.stack([_levels(i.category) for i in items])


def test_resampling_keeps_a_tone():
    t = torch.arange(44100, dtype=torch.float64) / 44100
    out = resample_to_16k(torch.sin(2 * math.pi * 1000 * t)[None], 44100)[0]
    expected = torch.sin(2 * math.pi * 1000 * torch.arange(16000, dtype=torch.float64) / 16000)
    assert out.shape == (16000,)
    assert (out - expected)[400:-400].abs().max() < 1e-3


def test_untrained_lyricaid_is_the_prescription():
    x, levels = _batch()
    out, nlr1 = make_model("LyricAid")(x, levels), NLR1()(x, levels)
    assert (out - nlr1).abs().max() <= 1e-5 * nlr1.abs().max()


def test_level_cap_holds_whatever_the_weights():
    x, levels = _batch()
    model = _randomised(make_model("LyricAid"), scale=3.0)
    with torch.no_grad():
        out, nlr1 = model(x, levels), NLR1()(x, levels)
        loud = model(x * 300, levels)  # NLR1 peaks above 1 here: the cap is not enough
    gain_db = 10 * torch.log10(out.pow(2).sum(dim=(1, 2)) / nlr1.pow(2).sum(dim=(1, 2)))
    assert (gain_db <= LEVEL_CAP_DB + 1e-4).all(), gain_db
    assert gain_db.max() > LEVEL_CAP_DB - 0.01  # these weights would be louder: the cap acts
    assert loud.abs().max() < 1.0


@pytest.mark.parametrize("name", ["LyricAid", "LyricAidLevelOnly"])
def test_padding_never_leaks_into_lyricaid_and_silence_stays_silent(name):
    x, levels = _batch()
    model = make_model(name)
    model.load_state_dict(_randomised(make_model("LyricAid")).state_dict())
    short = x[:1, :, :30000].clone()
    padded = torch.zeros(2, 2, x.shape[-1])
    padded[0, :, :30000], padded[1] = short[0], x[1]
    with torch.no_grad():
        alone, together = model(short, levels[:1])[0], model(padded, levels)[0, :, :30000]
        silent = model(torch.zeros(2, 2, 20000), levels)
    assert torch.allclose(alone, together, rtol=0, atol=1e-6 * alone.abs().max().item())
    assert torch.equal(silent, torch.zeros_like(silent))


def test_saved_weights_reload_to_identical_outputs_and_change_the_stage1_key(tmp_path, caplog):
    x, levels = _batch()
    with caplog.at_level(logging.WARNING):
        untrained = make_model("LyricAid", results_dir=tmp_path)
    assert "finds no trained LyricAid weights" in caplog.text
    trained = _randomised(make_model("LyricAid"))
    path = tmp_path / TRAINED_WEIGHTS.format(name="LyricAid")
    path.parent.mkdir(parents=True)
    torch.save(trained.state_dict(), path)
    reloaded = make_model("LyricAid", results_dir=tmp_path)
    with torch.no_grad():
        assert torch.equal(reloaded(x, levels), trained(x, levels))
    assert model_settings(reloaded) == model_settings(trained) != model_settings(untrained)
    torch.save(_randomised(make_model("LyricAid"), seed=1).state_dict(), path)
    assert model_settings(make_model("LyricAid", results_dir=tmp_path)) != model_settings(reloaded)


def test_a_tagged_training_has_weights_of_its_own(tmp_path, caplog):
    x, levels = _batch()
    tagged, untagged = _randomised(make_model("LyricAid")), _randomised(make_model("LyricAid"), seed=1)
    path = trained_weights_path(tmp_path, "LyricAid", tag="louder")
    assert path == training.weights_path(tmp_path, make_model("LyricAid"), tag="louder")
    assert path.name == "LyricAid-louder.pt" and path != trained_weights_path(tmp_path, "LyricAid")
    path.parent.mkdir(parents=True)
    torch.save(tagged.state_dict(), path)
    with torch.no_grad():
        assert torch.equal(make_model("LyricAid", results_dir=tmp_path, tag="louder")(x, levels), tagged(x, levels))
    with caplog.at_level(logging.WARNING):
        assert not make_model("LyricAid", results_dir=tmp_path).trained  # the untagged run has none yet
    assert "finds no trained LyricAid weights" in caplog.text
    torch.save(untagged.state_dict(), trained_weights_path(tmp_path, "LyricAid"))
    other_tag = make_model("LyricAid", results_dir=tmp_path, tag="other")  # a tag only naming outputs
    with torch.no_grad():
        assert torch.equal(other_tag(x, levels), untagged(x, levels))
        assert torch.equal(make_model("LyricAid", results_dir=tmp_path, tag="louder")(x, levels), tagged(x, levels))


def test_a_submission_names_the_trained_weights_its_model_loaded(tmp_path):
    assert trained_weights_used(tmp_path, "LyricAid") is None  # nothing trained yet
    path = trained_weights_path(tmp_path, "LyricAid")
    path.parent.mkdir(parents=True)
    torch.save(_randomised(make_model("LyricAid")).state_dict(), path)
    path.with_suffix(".json").write_text(json.dumps({"key": "k1", "settings": {"--seed": 0}, "best_epoch": 1}))
    for name, tag in (("LyricAid", ""), ("LyricAidLevelOnly", ""), ("LyricAid", "only-names-outputs")):
        used = trained_weights_used(tmp_path, name, tag=tag)
        assert used["file"] == str(path) and len(used["digest"]) == 16, (name, tag)
        assert used["training"] == {"key": "k1", "settings": {"--seed": 0}, "best_epoch": 1}
    assert trained_weights_used(tmp_path, "NLR1") is None and trained_weights_used(tmp_path, "identity") is None
    from code.data.validation import validate_split
    from code.evaluation.outputs.submission import write_outputs

    split = validate_split(DEMO_ROOT, "valid", check_audio=False)
    cfg = ExperimentConfig(data_root=str(DEMO_ROOT), results_dir=str(tmp_path), input="unprocessed")
    for model in ("LyricAid", "NLR1"):
        write_outputs(cfg, split, {r["signal"]: 50.0 for r in split.records}, f"{model}-unprocessed", model=model)
    runs = {m: json.loads((tmp_path / f"submission_{m}-unprocessed_valid.run.json").read_text())
            for m in ("LyricAid", "NLR1")}
    assert runs["LyricAid"]["trained_weights"]["file"] == str(path) and "trained_weights" not in runs["NLR1"]


def test_the_control_trains_the_aid_whose_weights_it_uses(monkeypatch):
    trained = []
    monkeypatch.setattr(training, "train_model", lambda cfg, name, audiograms: trained.append(name))
    for models in ("NLR1,LyricAidLevelOnly", "LyricAid,LyricAidLevelOnly", "LyricAidLevelOnly,LyricAid"):
        trained.clear()
        training.train_models(ExperimentConfig(models=models, train=True), DEFAULT_AUDIOGRAMS)
        assert trained == ["LyricAid"], models


def test_a_training_with_other_options_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "load_items", lambda cfg: pytest.fail("read the training audio"))
    cfg = ExperimentConfig(model="LyricAid", train=True, train_asr_model="tiny.en", results_dir=str(tmp_path))
    out = training.weights_path(tmp_path, make_model("LyricAid"))
    out.parent.mkdir(parents=True)
    torch.save(make_model("LyricAid").state_dict(), out)
    settings = training._settings(cfg, "tiny.en")
    out.with_suffix(".json").write_text(json.dumps({"key": "k", "settings": {**settings, "--train-lr": 0.5}}))
    with pytest.raises(ConfigError, match=r"--train-lr 0\.5 -> 0\.01.*--tag NAME"):
        training.train_models(cfg, DEFAULT_AUDIOGRAMS)


def test_level_only_control_is_nlr1_at_lyricaids_level(tmp_path):
    x, levels = _batch()
    aid = _randomised(make_model("LyricAid"), scale=0.3)
    path = trained_weights_path(tmp_path, "LyricAid")
    path.parent.mkdir(parents=True)
    torch.save(aid.state_dict(), path)
    control = make_model("LyricAidLevelOnly", results_dir=tmp_path)
    assert control.trained and not training.trainable(control)
    with torch.no_grad():
        out, shaped, nlr1 = control(x, levels), aid(x, levels), NLR1()(x, levels)
    energy = out.double().pow(2).sum(dim=(1, 2))
    assert torch.allclose(energy, shaped.double().pow(2).sum(dim=(1, 2)), rtol=1e-4)
    assert not torch.allclose(energy, nlr1.double().pow(2).sum(dim=(1, 2)), rtol=1e-2)  # the level moved
    for item in range(x.shape[0]):  # NLR1's waveform, one gain per signal
        gain = (out[item] * nlr1[item]).sum() / nlr1[item].pow(2).sum()
        assert (out[item] - gain * nlr1[item]).abs().max() <= 1e-5 * out[item].abs().max()
    torch.save(_randomised(make_model("LyricAid"), seed=1).state_dict(), path)
    assert model_settings(make_model("LyricAidLevelOnly", results_dir=tmp_path)) != model_settings(control)


def test_training_reads_the_fit_splits_mild_and_moderate_unprocessed_audio(tmp_path):
    records = demo_records("train")[:6]
    root = make_clip_root(tmp_path / "data", "train", records)
    items = training.load_items(ExperimentConfig(data_root=str(root), results_dir=str(tmp_path / "results")))
    wanted = [r for r in records if r["hearing_loss"] in ("Mild", "Moderate")]
    assert [i.signal for i in items] == [r["signal"] for r in wanted] and wanted
    assert all(i.audio.shape[0] == 2 and i.audio.dtype == np.float32 for i in items)
    prompts = [r["prompt"] for r in demo_records("train")]
    held_out = held_out_prompts(prompts, fraction=training.HELD_OUT_SHARE, seed=0)
    assert len(held_out) == 5 and held_out == held_out_prompts(prompts, fraction=training.HELD_OUT_SHARE, seed=0)


@pytest.fixture(scope="module")
def objective():
    from code.training.objective import WhisperObjective

    return WhisperObjective(CHECKPOINT, window_s=training.TRAIN_WINDOW_S)


def _setup():
    designs = {c: ear_design(DEFAULT_AUDIOGRAMS[c]) for c in training.TRAIN_CATEGORIES}
    return {c: _levels(c) for c in training.TRAIN_CATEGORIES}, designs


@pytest.mark.slow
@needs_whisper
def test_speech_event_is_one_minus_whispers_no_speech_probability():
    import whisper

    from code.training.objective import WhisperObjective

    full = WhisperObjective(CHECKPOINT)  # Whisper's own 30 s window, as its decoder hears it
    tokens = WhisperObjective(CHECKPOINT, speech_event=False)
    for item in _items(2):
        ear = resample_to_16k(torch.from_numpy(item.audio[0]), 44100)
        mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(ear))
        decoded = whisper.decode(full.whisper, mel, whisper.DecodingOptions(language="en", without_timestamps=True,
                                                                          fp16=False))
        with torch.no_grad():
            features = full.encode(full.log_mel(ear[None]))
            logits = full.whisper.decoder(torch.tensor([full.prefix]), features)
            speech = full.speech_log_prob(torch.log_softmax(logits.float(), dim=-1)[:, 0])
        assert abs((1 - float(speech.exp())) - decoded.no_speech_prob) < 1e-4, item.signal
        with_event = float(full.ear_scores(ear[None], [item.line]))
        tokens_only = float(tokens.ear_scores(ear[None], [item.line]))
        n = len(full.tokens(item.line))
        assert with_event == pytest.approx((tokens_only * n + float(speech)) / (n + 1), abs=1e-4)


@pytest.mark.slow
@needs_whisper
def test_gradients_reach_the_weights_through_simulator_and_objective(objective):
    levels, designs = _setup()
    model = make_model("LyricAid")
    score = training.objective_of(model, objective, _items(1), [0], levels, designs, torch.device("cpu"))
    score.sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.slow
@needs_whisper
def test_two_steps_on_two_signals_raise_the_objective(objective):
    levels, designs = _setup()
    model, items, ears = make_model("LyricAid"), _items(2), [0, 1]
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)

    def value():
        return training.objective_of(model, objective, items, ears, levels, designs, torch.device("cpu")).mean()

    with torch.no_grad():
        before = float(value())
    for _ in range(2):
        optimiser.zero_grad()
        (-value()).backward()
        optimiser.step()
    with torch.no_grad():
        after = float(value())
    assert after > before, (before, after)


@pytest.mark.slow
@needs_whisper
def test_training_stage_saves_weights_and_a_rerun_trains_nothing(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(training, "load_items", lambda cfg: _items(2) + [
        dataclasses.replace(i, prompt=i.prompt + " (held out)") for i in _items(2)[:1]])
    monkeypatch.setattr(training, "HELD_OUT_SHARE", 0.01)  # one of the three prompts
    cfg = ExperimentConfig(model="LyricAid", train=True, train_asr_model=CHECKPOINT, train_epochs=1,
                           results_dir=str(tmp_path), device="cpu")
    [path] = training.train_models(cfg, DEFAULT_AUDIOGRAMS)
    record = json.loads(path.with_suffix(".json").read_text())
    assert [c["epoch"] for c in record["curve"]] == [0, 1] and path.exists()
    stamp = path.stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        training.train_models(cfg, DEFAULT_AUDIOGRAMS)
    assert "nothing to train" in caplog.text and path.stat().st_mtime_ns == stamp
    loaded = make_model("LyricAid", results_dir=tmp_path)
    assert loaded.trained
    with pytest.raises(ConfigError, match="other options"):  # another learning rate, the same weights file
        training.train_models(dataclasses.replace(cfg, train_lr=cfg.train_lr / 2), DEFAULT_AUDIOGRAMS)
    [tagged] = training.train_models(dataclasses.replace(cfg, train_lr=cfg.train_lr / 2, tag="b"), DEFAULT_AUDIOGRAMS)
    assert tagged.name == "LyricAid-b.pt" and tagged.with_suffix(".json").exists()
    assert path.stat().st_mtime_ns == stamp
