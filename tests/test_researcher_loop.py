"""The researcher's loop as a new user runs it: add a model, run, edit it, rerun."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, demo_records, make_clip_root

from code.data.audio import read_audio

LOUDER = '''

def louder(signal_tensor, audiogram_levels):
    return signal_tensor * {gain}


MODELS["Louder"] = louder
'''


def _project(tmp_path: Path) -> Path:
    """A copy of the project's code, as a user's checkout to edit."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "code", project / "code", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("main.py", "compute_csvs.py"):
        shutil.copy(ROOT / name, project / name)
    return project


def _run(project: Path, *args) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "main.py", *map(str, args)], cwd=project,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_editing_a_model_recomputes_its_audio(tmp_path):
    project = _project(tmp_path)
    records = demo_records("valid")[:3]
    data = make_clip_root(tmp_path / "data", "valid", records)
    models = project / "code" / "models" / "hearing_aid_models.py"
    original = models.read_text()
    args = ["--data-root", data, "--model", "Louder", "--stages", "1", "--jobs", "1",
            "--results-dir", tmp_path / "results"]
    wav = tmp_path / "results" / "Louder" / f"{records[0]['signal']}.wav"
    source = read_audio(data / "cadenza_data" / "valid" / "signals" / f"{records[0]['signal']}.flac")

    models.write_text(original + LOUDER.format(gain=2.0))
    first = _run(project, *args)
    assert "0 reused, 3 to enhance" in first.stderr
    assert np.allclose(read_audio(wav), 2.0 * source, atol=1e-6)

    again = _run(project, *args)
    assert "3 reused, 0 to enhance" in again.stderr

    models.write_text(original + LOUDER.format(gain=0.1))
    edited = _run(project, *args)
    assert "3 to enhance" in edited.stderr and "3 model code" in edited.stderr
    assert np.allclose(read_audio(wav), 0.1 * source, atol=1e-6)

    forced = _run(project, *args, "--recompute", "1")
    assert "3 --recompute" in forced.stderr


def test_paths_from_the_config_follow_main_py(tmp_path):
    """`python path/to/main.py` from another folder finds the demo and writes beside main.py."""
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "--stages", "1", "--help"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    text = " ".join(proc.stdout.split())
    choices = text.split("--model MODEL the hearing-aid model", 1)[1].split("]", 1)[0]
    assert proc.returncode == 0 and all(m in choices for m in ("NALR", "NLR1", "identity"))
    assert "(default: 'NLR1')" in text and "[choices: none, 1, 2, all]" in text
    from main import parse_config

    cfg = parse_config(["--stages", "1"])
    assert Path(cfg.data_root) == ROOT / "data" / "demo"
    assert Path(cfg.results_dir) == ROOT / "results"
    given = parse_config(["--data-root", "elsewhere", "--results-dir", "out"])
    assert (given.data_root, given.results_dir) == ("elsewhere", "out")  # relative to the caller


def test_reports_of_the_two_routes_do_not_overwrite_each_other(tmp_path):
    import dataclasses

    from main import CONFIG

    from code.pipeline import write_hearing_aid_report

    records = demo_records("valid")
    predictions = {m: {r["signal"]: v for r in records} for m, v in (("identity", 40.0), ("NLR1", 50.0))}
    for kind in ("signals", "unprocessed"):
        cfg = dataclasses.replace(CONFIG, input=kind, results_dir=str(tmp_path))
        write_hearing_aid_report(cfg, predictions, records)
    names = sorted(p.name for p in tmp_path.glob("hearing_aid_report_*.csv"))
    assert names == ["hearing_aid_report_valid_signals.csv", "hearing_aid_report_valid_unprocessed.csv"]


def test_reports_with_other_report_settings_keep_their_whole_names(tmp_path):
    """A report's baseline and alpha are in its name, dots and all, so neither replaces the default's."""
    import dataclasses

    from main import CONFIG

    from code.pipeline_report import write_hearing_aid_report

    records = demo_records("valid")
    predictions = {m: {r["signal"]: v for r in records} for m, v in (("identity", 40.0), ("NLR1", 50.0))}
    quality = {m: {r["signal"]: v for r in records} for m, v in (("identity", 0.6), ("NLR1", 0.9))}
    for settings in ({}, {"alpha": 0.3}, {"baseline": "NLR1"}):
        cfg = dataclasses.replace(CONFIG, input="unprocessed", models="identity,NLR1",
                                  results_dir=str(tmp_path), **settings)
        write_hearing_aid_report(cfg, predictions, records, quality)
    names = sorted(p.name for p in tmp_path.glob("hearing_aid_report_*"))
    assert names == sorted(f"hearing_aid_report_valid_unprocessed{label}{end}"
                           for label in ("", "_alpha0.3", "_vs-NLR1")
                           for end in (".csv", ".png", "_tradeoff.png"))


@pytest.mark.slow
def test_compare_recipe_prints_both_models_and_their_paired_difference(tmp_path, caplog, capsys):
    """The README's recipe on a small labelled data set: out-of-fold predictions of two
    models, then compute_csvs.py with one row per model and the paired difference. In this
    process, with the demo's shipped store: the demo audio's values are read, not transcribed
    (a gbm run that put the predictor in the features' key would still transcribe)."""
    import compute_csvs
    from tests.conftest import run_main

    records = demo_records("train")
    prompts = sorted({r["prompt"] for r in records})[:5]
    data = make_clip_root(tmp_path / "data", "train", [r for r in records if r["prompt"] in prompts],
                          shipped_store=True)
    results = tmp_path / "results"
    code, log = run_main(["--data-root", data, "--split", "train", "--models", "identity,NLR1",
                          "--results-dir", results], caplog)
    assert code == 0, log[-3000:]
    assert "out-of-fold" in log and "NCC" in log
    assert (results / "hearing_aid_report_train_signals.csv").is_file()
    capsys.readouterr()
    assert compute_csvs.main([str(results), "--data-root", str(data)]) == 0
    table = capsys.readouterr().out
    rows = [line.split()[0] for line in table.split("paired with")[0].splitlines()
            if line.startswith(("identity ", "NLR1 "))]
    assert sorted(rows) == ["NLR1", "identity"]
    paired = table.split("paired with the identity run")[1]
    assert "NLR1 (train)" in paired and "[" in paired
    # gbm from audio end to end: the features are cached, only the predictor changes
    code, gbm = run_main(["--data-root", data, "--split", "train", "--model", "identity",
                          "--predictor", "gbm", "--folds", "3", "--stages", "1,2",
                          "--results-dir", results], caplog)
    assert code == 0, gbm[-3000:]
    assert "0 signal(s) to transcribe" in gbm
    assert list(results.glob("submission_identity-gbm-folds3-*_train.predictor.joblib"))
    features = list((results / "identity").glob("features.train.*.jsonl"))
    assert len(features) == 1 and "stoi.left" in features[0].read_text().splitlines()[0]


def _stage1_line(log: str, model: str) -> str:
    """The Stage-1 summary line of ``model`` in a run's log."""
    lines = [line for line in log.splitlines() if f"Stage 1 ({model}," in line and " to enhance" in line]
    assert lines, f"no Stage-1 line for {model} in:\n{log[-3000:]}"
    return lines[-1]


@pytest.mark.slow
def test_a_model_key_covers_its_own_code_and_what_it_calls(tmp_path):
    """Adding a model recomputes no other; editing NLR1's compressor recomputes NLR1 and
    LyricAid (which uses NLR1 as its level reference), never identity; a comment does nothing."""
    project = _project(tmp_path)
    records = demo_records("valid")[:2]
    data = make_clip_root(tmp_path / "data", "valid", records)
    args = ["--data-root", data, "--stages", "1", "--jobs", "1", "--results-dir", tmp_path / "results"]
    three = ["--models", "identity,NLR1,LyricAid", *args]
    first = _run(project, *three).stderr
    assert all("0 reused, 2 to enhance" in _stage1_line(first, m) for m in ("identity", "NLR1", "LyricAid"))

    models = project / "code" / "models" / "hearing_aid_models.py"
    models.write_text(models.read_text() + LOUDER.format(gain=2.0))
    added = _run(project, *three).stderr
    assert all("2 reused, 0 to enhance" in _stage1_line(added, m) for m in ("identity", "NLR1", "LyricAid"))
    louder = _run(project, "--model", "Louder", *args).stderr
    assert "0 reused, 2 to enhance" in _stage1_line(louder, "Louder")
    assert "Stage 1 (NLR1," not in louder

    prescriptions = project / "code" / "models" / "prescriptions.py"
    original = prescriptions.read_text()
    loop = "        out[i] = signal[i] * curr * makeup_gain\n"
    assert loop in original
    prescriptions.write_text(original.replace(loop, "        # the gain, applied\n" + loop))
    commented = _run(project, *three).stderr
    assert all("2 reused, 0 to enhance" in _stage1_line(commented, m) for m in ("identity", "NLR1", "LyricAid"))

    prescriptions.write_text(original.replace(loop, loop.replace("makeup_gain", "makeup_gain * 0.5")))
    edited = _run(project, *three).stderr
    assert "2 reused, 0 to enhance" in _stage1_line(edited, "identity")
    for model in ("NLR1", "LyricAid"):
        assert "0 reused, 2 to enhance (2 model code)" in _stage1_line(edited, model)
