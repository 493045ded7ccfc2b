"""Runs never overwrite each other, and comparisons pair like with like."""

from __future__ import annotations

import dataclasses
import json
import shlex

import numpy as np
import pytest

from tests.conftest import ROOT, clip2_demo_copy, demo_records, make_clip_root

from code.config import DEFAULTS
from code.evaluation.outputs.report import report_rows
from code.runs import run_name

CLIP2_DEMO = ROOT / "data" / "demo_clip2"


def test_run_names_follow_what_differs(tmp_path):
    home = tmp_path / "home"
    make_clip_root(home, "valid", demo_records("valid")[:3])
    cfg = dataclasses.replace(DEFAULTS, data_root=str(home), results_dir=str(tmp_path / "results"))
    assert run_name(cfg, "NLR1") == "NLR1"  # the first data set is the results folder's home
    named = {run_name(dataclasses.replace(cfg, **change), "NLR1")
             for change in ({}, {"predictor": "gbm"}, {"fit_split": "train,valid"},
                            {"fit_split": "valid,train"}, {"folds": 2}, {"seed": 1},
                            {"input": "unprocessed"}, {"tag": "x"},
                            {"audiograms": {"Mild": {"levels": [1], "frequencies": [1000]}}},
                            {"audiograms": {"Mild": {"levels": [2], "frequencies": [1000]}}},
                            {"data_root": str(CLIP2_DEMO)}, {"jobs": 1, "device": "cpu"})}
    # jobs/device change no prediction; the order of the fit splits does not matter
    assert len(named) == 10
    assert run_name(dataclasses.replace(cfg, predictor="gbm"), "NLR1").startswith("NLR1-gbm-")
    assert run_name(dataclasses.replace(cfg, data_root=str(CLIP2_DEMO)), "NLR1").startswith(
        "NLR1-demo_clip2-")
    assert run_name(dataclasses.replace(cfg, input="unprocessed"), "NLR1") == "NLR1-unprocessed"


def test_report_gives_the_paired_change_with_a_bootstrap_interval():
    """Hand-made table: the change is the mean paired difference; its interval resamples
    prompts, so it is narrow when the change is the same on every prompt and wide when not."""
    records = [{"signal": f"s{i}", "prompt": f"p{i // 3}", "hearing_loss": "Mild"} for i in range(12)]
    rng = np.random.default_rng(1)
    base = {r["signal"]: float(v) for r, v in zip(records, rng.uniform(20, 80, 12))}
    steady = {s: v + 5.0 for s, v in base.items()}  # +5 everywhere
    mixed = {s: v + (10.0 if int(s[1:]) < 6 else -10.0) for s, v in base.items()}  # +10 / -10
    rows = report_rows({"identity": base, "steady": steady, "mixed": mixed}, records)
    by = {(r["model"], r["hearing_loss"]): r for r in rows}
    s = by[("steady", "Mild")]
    assert s["baseline"] == "identity" and s["change"] == pytest.approx(5.0)
    assert s["change_ci95_low"] == pytest.approx(5.0) and s["change_ci95_high"] == pytest.approx(5.0)
    m = by[("mixed", "All")]
    assert m["change"] == pytest.approx(0.0)
    assert m["change_ci95_low"] < -5 and m["change_ci95_high"] > 5  # the prompts disagree
    assert by[("identity", "Mild")]["change"] == 0.0
    # a mean's interval ignores the pairing: far wider than the change's
    assert s["ci95_high"] - s["ci95_low"] > 10
    other = report_rows({"NLR1": base, "Louder": steady}, records, baseline="NLR1")
    assert {r["model"]: r["change"] for r in other if r["hearing_loss"] == "All"} == \
        {"NLR1": 0.0, "Louder": pytest.approx(5.0)}
    assert np.isnan(report_rows({"NLR1": base}, records)[0]["change"])  # no identity: no change


def test_resume_advice_is_the_same_command_and_a_recompute_goes_on(tmp_path):
    """After an interruption the advice is the command itself; with --recompute, what was
    redone is recorded, so running that command again goes on instead of starting over."""
    from code.pipeline import RecomputeProgress, resume_advice

    argv = ["--data-root", "my data", "--recompute", "all"]
    cfg = dataclasses.replace(DEFAULTS, results_dir=str(tmp_path), recompute="all")
    advice = resume_advice(cfg, argv)
    assert advice.endswith("python main.py --data-root 'my data' --recompute all")
    assert "not start over" in advice
    plain = resume_advice(dataclasses.replace(cfg, recompute="none"), argv[:2])
    assert "to continue, run the same command again: python main.py --data-root 'my data'" in plain
    first = RecomputeProgress(cfg)
    assert first.wanted("1", "NLR1") and first.wanted("2", "NLR1")
    first.mark("1", "NLR1")  # Stage 1 of NLR1 redone, then the interruption
    again = RecomputeProgress(cfg)  # the same command again
    assert not again.wanted("1", "NLR1") and again.wanted("2", "NLR1") and again.wanted("1", "identity")
    assert again.cfg_for("1", "NLR1").recompute == "none" and again.cfg_for("2", "NLR1").recompute == "all"
    again.finish()  # the run ended: the next --recompute starts over
    assert RecomputeProgress(cfg).wanted("1", "NLR1")
    other = RecomputeProgress(dataclasses.replace(cfg, predictor="gbm"))
    first.mark("1", "NLR1")
    assert other.wanted("1", "NLR1")  # another run's progress is its own


class Louder:
    """The README's example model: more gain for more loss."""

    def __call__(self, signal_tensor, audiogram_levels):
        gain_db = (audiogram_levels.mean(dim=1) * 0.5).clamp(max=20.0)
        return signal_tensor * 10 ** (gain_db[:, None, None] / 20)


@pytest.mark.slow
def test_a_new_users_sequence_overwrites_nothing_and_compares_like_with_like(
        tmp_path, monkeypatch, capsys, caplog):
    """A researcher's sequence of runs on a small copy of the demo, in one results folder: every run
    writes its own files (earlier ones stay byte-identical), a rerun reuses its own, and
    compute_csvs lists each run once, scores none against another data set's labels and
    pairs only runs that match."""
    import compute_csvs
    import main

    from code import config
    from code.models import hearing_aid_models

    monkeypatch.setitem(hearing_aid_models.MODELS, "Louder", Louder)
    monkeypatch.setattr(config, "registered_names", lambda path, registry: [])
    train, valid = demo_records("train"), demo_records("valid")
    keep_train = sorted({r["prompt"] for r in train})[:4]
    keep_valid = sorted({r["prompt"] for r in valid})[:2]
    data = make_clip_root(tmp_path / "demo", "train", [r for r in train if r["prompt"] in keep_train],
                          shipped_store=True)  # the demo audio's values: read, not transcribed
    make_clip_root(data, "valid", [r for r in valid if r["prompt"] in keep_valid])
    results = tmp_path / "results"
    common = ["--results-dir", str(results), "--jobs", "1"]
    steps = [["--data-root", str(data)],
             ["--data-root", str(clip2_demo_copy(tmp_path))],
             ["--data-root", str(data), "--predictor", "gbm"],
             ["--data-root", str(data), "--fit-split", "train,valid"],
             ["--data-root", str(data), "--model", "Louder"],
             ["--data-root", str(data), "--input", "unprocessed", "--models", "identity,NLR1"]]
    seen: dict[str, bytes] = {}
    for step in steps + steps[:1]:
        caplog.clear()
        assert main.main(step + common) == 0, caplog.text[-3000:]
        for name, content in seen.items():
            assert (results / name).read_bytes() == content, f"{shlex.join(step)} changed {name}"
        seen.update({p.name: p.read_bytes() for p in results.glob("*.csv")
                     if p.name.startswith(("submission_", "evalai_"))})
    assert "0 to enhance" in caplog.text  # the first run again: its own outputs reused
    names = sorted(p.name for p in results.glob("submission_*_valid.csv"))
    assert len(names) == 7, names
    assert "submission_NLR1_valid.csv" in names and "submission_Louder_valid.csv" in names
    for name in names:
        record = json.loads((results / name.replace(".csv", ".run.json")).read_text())
        assert record["data_set"]["metadata_digest"] and record["code_version"]["sources_digest"]
    clip2 = next(n for n in names if "demo_clip2" in n)
    assert json.loads((results / clip2.replace(".csv", ".run.json")).read_text())["challenge"] == "clip2"
    report = (results / "hearing_aid_report_valid_unprocessed.csv").read_text().splitlines()
    assert report[0].endswith("combined_change,combined_change_ci95_low,combined_change_ci95_high")  # with HAAQI

    capsys.readouterr()
    assert compute_csvs.main([str(results), "--json", str(tmp_path / "f.json")]) == 0
    text = capsys.readouterr().out
    figures = json.loads((tmp_path / "f.json").read_text())
    rows = figures["rows"]
    assert len(rows) == 6 and len({r["run"] for r in rows}) == 6  # CLIP2 valid has no labels
    assert all(r["data_set"] == "demo" and r["n"] == 6 and r["truth_not_predicted"] == 0 for r in rows)
    assert "demo_clip2" in text and "no labels" in text  # said, not scored
    paired = figures["paired"]
    assert [(d["model"], d["baseline"]) for d in paired] == [("NLR1-unprocessed (valid)", "identity-unprocessed")]
    assert "python main.py --model identity" in text  # how to make the missing baselines
    assert "ICASSP" not in text
