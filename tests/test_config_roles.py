"""Settings declare their role where they are defined (``setting(default, role, help, ...)`` in
``code/config.py``), and run names, keys, ``--recompute`` progress, SLURM submissions, suggested
commands and ``--help`` follow from those declarations."""

from __future__ import annotations

import dataclasses

import pytest

from code.config import DEFAULTS, ExperimentConfig, field_help
from code.config_fields import NAMED_ROLES, RESOURCES, ROLES, WORK, fields_with_role, role_problems, setting
from code.runs import command_for, data_set, run_name


def test_every_setting_declares_its_role_and_help():
    """A field added without a role (or a prediction setting with neither a run-name label nor
    a reason for none) fails here, so no setting goes unclassified."""
    assert role_problems(ExperimentConfig) == []
    assert {f.metadata["role"] for f in dataclasses.fields(ExperimentConfig)} == set(ROLES)


def test_a_field_without_a_role_is_named():
    """The check itself: a plain field, a prediction setting without a label, a resource with a
    label are each refused by name."""
    @dataclasses.dataclass(frozen=True)
    class Grown(ExperimentConfig):
        new_knob: int = 3  # a setting added the old way: a comment, no declaration
        new_metric: str = setting("", NAMED_ROLES[1], "a Stage-2 setting")
        new_cpus: int = setting(1, RESOURCES, "CPUs", label=lambda v: f"cpus{v}")

    problems = "\n".join(role_problems(Grown))
    assert "ExperimentConfig.new_knob has no role" in problems
    assert "new_metric changes prediction: give it a label" in problems
    assert "new_cpus (resources) changes no prediction" in problems


def test_help_reads_the_declarations():
    """``--help`` shows each field's declared help, not text read from the source."""
    import main

    text = main.build_parser(DEFAULTS).format_help()
    flat = " ".join(text.split())
    for f in dataclasses.fields(ExperimentConfig):
        assert field_help()[f.name] == f.metadata["help"]
        words = " ".join(f.metadata["help"].split())[:60]
        assert words in flat, f"--{f.name.replace('_', '-')}'s help is not in --help"


def test_run_names_keep_their_labels_and_order():
    """Labels are written in today's order (ranks in the declarations), so a run's name is the
    one it always had."""
    cfg = dataclasses.replace(
        DEFAULTS, predictor="gbm", predictor_options={"learning_rate": 0.05}, feature="stoi.better_ear",
        stoi_max_lag_s=0.1, features="stoi,haspi", asr_engine="openai-whisper", input="unprocessed",
        msbg="torch", target="phoneme_correctness", fit_split="valid,train", seed=3, asr_models="tiny.en,base.en")
    assert run_name(cfg, "NLR1", home=data_set(cfg)) == (
        "NLR1-unprocessed-phoneme-msbg=torch-stoi-lag0.1-haspi-openai-whisper-asr=tiny.en+base.en-gbm-options"
        "-feature=stoi.better_ear-fit=train+valid-seed3-639f8f")
    same = {"msbg": "torch", "asr_compute_type": "int8", "asr_models": "tiny.en", "fit_split": "train"}
    for name, value in same.items():  # declared not to apply here, or the same value resolved
        plain = dataclasses.replace(DEFAULTS, asr_engine="openai-whisper") if name == "asr_compute_type" else DEFAULTS
        changed = dataclasses.replace(plain, **{name: value})
        assert run_name(changed, "NLR1", home=data_set(cfg)) == run_name(plain, "NLR1", home=data_set(cfg)), name


def _other(value):
    """A value other than the default: another count, or another device."""
    return value + 3 if isinstance(value, int) else "cpu" if value != "cpu" else "cuda"


@pytest.mark.parametrize("name", fields_with_role(ExperimentConfig, RESOURCES))
def test_resources_change_no_name_key_or_command(tmp_path, name):
    """A RESOURCES setting (CPUs, devices, batch sizes) changes no run name, no --recompute
    progress, no SLURM submission and no suggested command."""
    from code.cluster import run_folder
    from code.pipeline import RecomputeProgress

    base = dataclasses.replace(DEFAULTS, results_dir=str(tmp_path), recompute="all")
    cfg = dataclasses.replace(base, **{name: _other(getattr(DEFAULTS, name))})
    home = data_set(base)
    assert run_name(cfg, "NLR1", home=home) == run_name(base, "NLR1", home=home)
    assert RecomputeProgress(cfg).path == RecomputeProgress(base).path
    assert run_folder(cfg) == run_folder(base)
    assert command_for(dataclasses.asdict(cfg), model="NLR1") == command_for(dataclasses.asdict(base), model="NLR1")


def test_work_settings_keep_their_command_and_progress(tmp_path):
    """A WORK setting (trusting the shipped store) changes no run name, but it is another
    command: its own --recompute progress, and spelled out in suggested commands."""
    from code.pipeline import RecomputeProgress

    base = dataclasses.replace(DEFAULTS, results_dir=str(tmp_path), recompute="all")
    work = dataclasses.replace(base, trust_shipped_store=False)
    assert "trust_shipped_store" in fields_with_role(ExperimentConfig, WORK)
    assert RecomputeProgress(work).path != RecomputeProgress(base).path
    assert "--no-trust-shipped-store" in command_for(dataclasses.asdict(work), model="NLR1")
    assert run_name(work, "NLR1", home=data_set(base)) == "NLR1"
