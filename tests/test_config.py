"""Options are checked before any work: in the config (cheap, while parsing) and in the
pipeline's preflight (devices, registries, ASR models), with the option named."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

from code.config import DEFAULTS, asr_models, check_config
from code.errors import ASRError, ConfigError


def _cfg(**change):
    return dataclasses.replace(DEFAULTS, **change)


@pytest.mark.parametrize("change,expected", [
    ({"device": "gpu"}, "--device must be cpu, cuda or cuda:N"),
    ({"asr_device": "cuda0"}, "--asr-device must be cpu, cuda or cuda:N"),
    ({"asr_compute_type": "int4"}, "--asr-compute-type must be one of"),
    ({"asr_engine": "openai-whisper", "asr_model": "base.en", "asr_models": "small.en"},
     "--asr-model 'base.en' and --asr-models 'small.en' disagree"),
    ({"asr_models": "tiny.en,tiny.en"}, "lists a model twice"),
    ({"stoi_max_lag_s": 2.0}, "--stoi-max-lag-s must be within 0..1"),
])
def test_bad_options_refused_while_parsing(change, expected):
    assert expected in (check_config(_cfg(**change)) or "")


@pytest.mark.parametrize("change", [{"device": "cuda:1"}, {"device": "cpu"}, {"asr_models": "small.en"},
                                    {"asr_model": "tiny.en", "asr_models": "tiny.en,base.en"}])
def test_good_options_pass(change):
    assert check_config(_cfg(**change)) is None


def test_one_truth_for_the_asr_models():
    """--asr-models replaces --asr-model everywhere: the primary model (the whisper-head's
    encoder, the official route, the better-ear feature) is its first entry."""
    from code.evaluation.asr.settings import asr_settings

    cfg = _cfg(predictor="whisper-head", asr_models="small.en")
    assert asr_models(cfg) == ["small.en"] and asr_settings(cfg).model == "small.en"
    assert asr_settings(_cfg()).model == DEFAULTS.asr_model


def test_embeddings_predictor_refused_with_several_asr_models(tmp_path):
    """A predictor that takes Whisper encoder embeddings reads one encoder (preflight, before any work)."""
    from code.pipeline import preflight

    cfg = _cfg(predictor="whisper-head", asr_models="tiny.en,base.en", results_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="--predictor whisper-head reads one Whisper encoder; --asr-models names 2"):
        preflight(cfg)


def test_cuda_refused_before_work_without_cuda(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from code.pipeline import preflight

    with pytest.raises(ConfigError, match="--device cuda: this machine has 0 CUDA device"):
        preflight(_cfg(device="cuda", results_dir=str(tmp_path)))


@pytest.mark.parametrize("models,expected", [
    ("tiny.en,/no/such/model.pt", "--asr-models: Whisper model file or folder '/no/such/model.pt' not found"),
])
def test_unavailable_asr_model_refused_before_work(tmp_path, models, expected):
    from code.pipeline import preflight

    with pytest.raises(ASRError, match=expected):
        preflight(_cfg(asr_models=models, results_dir=str(tmp_path)))


def test_unknown_openai_whisper_name_refused_before_work(tmp_path):
    from code.pipeline import preflight

    with pytest.raises(ASRError, match="unknown openai-whisper model 'tiny.eng'"):
        preflight(_cfg(asr_engine="openai-whisper", asr_model="tiny.eng", results_dir=str(tmp_path)))


def test_help_and_a_typo_answer_at_once():
    """`main.py --help`, a mistyped option and a mistyped value import nothing heavy; the
    figure is printed, not asserted (machines differ): the import-graph test guards it."""
    for args, code in ((["--help"], 0), (["--modle", "x"], 2), (["--model", "NLR"], 2)):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True)
        print(f"main.py {' '.join(args)}: {time.perf_counter() - start:.2f} s")
        assert proc.returncode == code, proc.stderr
    assert "did you mean 'NLR1'" in proc.stderr


@pytest.mark.parametrize("predictor,options,expected", [
    ("gbm", {"learning_rate": 0.1, "max_iters": 5}, "gbm has no setting ['max_iters']"),
    ("whisper-head", {"hiden_dim": 8}, "whisper-head has no setting ['hiden_dim']"),
    ("logistic", {"learning_rate": 0.1}, "logistic has no settings"),
])
def test_unknown_predictor_options_refused_before_work(tmp_path, predictor, options, expected):
    from code.pipeline import preflight

    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        preflight(_cfg(predictor=predictor, predictor_options=options, results_dir=str(tmp_path)))


def test_predictor_options_reach_the_predictor_and_its_saved_parameters():
    """A numbers-changing setting is an option: it changes the fit, the saved parameters
    and the run's name (so two settings never share a file)."""
    import numpy as np

    from code.evaluation.evaluation_helper import predictor_options
    from code.evaluation.prediction.predictors import make_predictor
    from code.evaluation.table import FeatureTable
    from code.runs import differences

    rng = np.random.default_rng(0)
    records = [{"signal": f"s{i}", "prompt": f"p{i % 20}", "hearing_loss": "Mild", "n_words": 5}
               for i in range(200)]
    x = rng.uniform(0, 1, (200, 1))
    table = FeatureTable([r["signal"] for r in records], ["asr.score"], x)
    y = 100 / (1 + np.exp(-8 * (x[:, 0] - 0.5)))
    fitted = {}
    for rate in (0.03, 0.3):
        cfg = _cfg(predictor="gbm", predictor_options={"learning_rate": rate})
        model = make_predictor("gbm", options=predictor_options(cfg))
        model.fit(table, y, records)
        fitted[rate] = model.predict(table, records)
        assert model.params()["settings"]["learning_rate"] == rate
    assert not np.allclose(fitted[0.03], fitted[0.3])
    cfg = _cfg(predictor="gbm", predictor_options={"learning_rate": 0.3})
    home = {"metadata_dir": "x", "challenge": "clip1"}
    assert differences(cfg, home=home)["predictor_options"] == {"learning_rate": 0.3}
