"""Every benchmark and script runs in the tests at its smallest size (one or two signals, one
repeat, cut short), so none rots unseen: each answers ``--help`` without doing work, and each
prints its last line (``msbg_speedup=...``) or writes what it builds. Those that need a
pipeline run, Whisper inference or a training are marked slow; the rest are in the fast loop.

``TOOLS`` lists every file of ``benchmarks/`` and ``scripts/`` with the test that runs it: a
new one fails ``test_every_benchmark_and_script_is_run`` until it is added."""

from __future__ import annotations

import importlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import threadpoolctl

from tests.conftest import DEMO_ROOT, DEMO_STORE, ROOT, demo_records, make_clip_root

CHECKPOINT = os.environ.get("CLIP_OPENAI_CHECKPOINT")
SHARED_CHECKPOINT = ROOT.parent / "shared" / "models" / "openai-whisper-tiny.en.pt"

# file: the test below that runs it at its smallest size (another module's test: "module::name")
TOOLS = {
    "benchmarks/ablations.py": "test_ablations.py::test_the_command_prints_a_row_per_group",
    "benchmarks/asr_speed.py": "test_asr_speed",
    "benchmarks/asr_throughput.py": "test_asr_throughput",
    "benchmarks/enhance_speed.py": "test_speed_benchmarks",
    "benchmarks/gpu_check.py": "test_stage2_benchmarks.py::test_gpu_check_runs_every_part_on_the_cpu",
    "benchmarks/haaqi_speed.py": "test_speed_benchmarks",
    "benchmarks/haspi_speed.py": "test_speed_benchmarks",
    "benchmarks/lyricaid_report.py": "test_report_benchmarks",
    "benchmarks/lyricaid_tradeoff.py": "test_lyricaid_tradeoff",
    "benchmarks/msbg_speed.py": "test_speed_benchmarks",
    "benchmarks/msbg_torch.py": "test_msbg_torch",
    "benchmarks/official_audio_path.py": "test_official_audio_path",
    "benchmarks/official_baseline.py": "test_official_baseline.py::test_prints_the_train_out_of_fold_and_valid_figures",
    "benchmarks/predictors.py": "test_predictors_benchmark",
    "benchmarks/quality_guard.py": "test_report_benchmarks",
    "benchmarks/report_quality_cost.py": "test_report_benchmarks",
    "benchmarks/scale.py": "test_scale",
    "benchmarks/stage2_scaling.py": "test_stage2_benchmarks.py::test_stage2_scaling_ends_with_its_speedup_line",
    "benchmarks/training_objective.py": "test_training_objective",
    "scripts/make_demo_clip2.py": "test_make_demo_clip2",
    "scripts/make_demo_data.py": "test_make_demo_data",
    "scripts/make_demo_store.py": "test_make_demo_store",
}


def _module(path: str):
    """The tool's module, imported once; what its import sets in the environment (e.g.
    ``OPENBLAS_NUM_THREADS`` for its own process) is undone, so later tests' subprocesses
    do not inherit it."""
    saved = dict(os.environ)
    try:
        return importlib.import_module(path.removesuffix(".py").replace("/", "."))
    finally:
        if dict(os.environ) != saved:
            os.environ.clear()
            os.environ.update(saved)


def _run(path: str, argv: list, capsys) -> str:
    """``python <path> *argv`` in this process (the modules are imported once); its stdout."""
    capsys.readouterr()
    code = _module(path).main([str(a) for a in argv])
    assert code in (None, 0), f"{path} {argv} exited {code}"
    return capsys.readouterr().out


def _checkpoint() -> str:
    """The openai-whisper checkpoint the slow tests use: CI sets it (and requires it)."""
    if CHECKPOINT:
        return CHECKPOINT
    if SHARED_CHECKPOINT.exists():
        return str(SHARED_CHECKPOINT)
    pytest.skip("set CLIP_OPENAI_CHECKPOINT to an openai-whisper .pt file")


def _program(name: str) -> None:
    """Skip without the program ``name``; CI installs it and sets CLIP_REQUIRE_TOOLS=1 (then fail)."""
    if shutil.which(name) is None:
        if os.environ.get("CLIP_REQUIRE_TOOLS") == "1":
            raise RuntimeError(f"CLIP_REQUIRE_TOOLS=1 but {name} is not installed")
        pytest.skip(f"{name} is not installed (apt-get install {name})")


def _small_root(root: Path, valid: int = 3, train_prompts: int = 5, per_prompt: int = 3) -> Path:
    """A data root with the demo's first ``valid`` validation signals (one per category) and
    ``per_prompt`` training signals of each of its first ``train_prompts`` prompts, the
    shipped store linked."""
    train = demo_records("train")
    prompts = list(dict.fromkeys(r["prompt"] for r in train))[:train_prompts]
    kept = [r for r in train if r["prompt"] in prompts]
    kept = [r for i, r in enumerate(kept) if [q["prompt"] for q in kept[:i]].count(r["prompt"]) < per_prompt]
    make_clip_root(root, "train", kept, shipped_store=True)
    records, seen = [], set()
    for r in demo_records("valid"):
        if r["hearing_loss"] not in seen and len(records) < valid:
            records.append(r)
            seen.add(r["hearing_loss"])
    return make_clip_root(root, "valid", records)


def test_every_benchmark_and_script_is_run():
    found = {str(p.relative_to(ROOT)) for folder in ("benchmarks", "scripts") for p in (ROOT / folder).glob("*.py")
             if not p.name.startswith("_")}
    assert found == set(TOOLS), f"add to TOOLS (and run at its smallest size): {sorted(found - set(TOOLS))}"
    here = Path(__file__).read_text()
    for test in set(TOOLS.values()):
        module, _, name = test.rpartition("::")
        text = (ROOT / "tests" / module).read_text() if module else here
        assert f"def {name}(" in text, test


@pytest.mark.parametrize("path", sorted(TOOLS))
def test_every_tool_answers_help_without_work(path, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything written to the working folder would show here
    store = sorted(p.name for p in DEMO_STORE.iterdir())
    with pytest.raises(SystemExit) as exit_:
        _module(path).main(["--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("usage:")
    assert list(tmp_path.iterdir()) == [] and sorted(p.name for p in DEMO_STORE.iterdir()) == store


SPEED = {  # file: (smallest arguments, the last line's key)
    "benchmarks/msbg_speed.py": (["--signals", "2", "--seconds", "0.5"], "msbg_speedup="),
    "benchmarks/haaqi_speed.py": (["--signals", "1", "--seconds", "0.5"], "haaqi_speedup="),
    "benchmarks/haspi_speed.py": (["--signals", "1", "--seconds", "0.5"], "haspi_speedup="),
    "benchmarks/enhance_speed.py": (["--signals", "1", "--repeats", "1"], "enhance_speedup="),
}


@pytest.mark.parametrize("path", sorted(SPEED))
def test_speed_benchmarks(path, capsys):
    """BLAS runs one thread, as the benchmarks set it for their own process (numpy is loaded here)."""
    argv, key = SPEED[path]
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        last = _run(path, argv, capsys).strip().splitlines()[-1]
    assert last.startswith(key), last
    ratio = float(last.split("=")[1].split()[0])
    assert np.isfinite(ratio) and ratio > 0


@pytest.mark.slow
def test_msbg_torch(capsys):
    """Slow: about 2 s on an idle machine, but torch's threads on a busy one take 20 s and more."""
    argv = ["--per-category", "1", "--seconds", "0.5", "--device", "cpu"]
    last = _run("benchmarks/msbg_torch.py", argv, capsys).strip().splitlines()[-1]
    assert last.startswith("torch_msbg_max_abs_diff="), last


def test_predictors_benchmark(tmp_path, capsys):
    """The demo's metadata with SYNTHETIC feature values: mechanics only."""
    root = make_clip_root(tmp_path / "data", "train", demo_records("train"))
    rng = np.random.default_rng(0)
    rows = [{"signal": r["signal"], "asr.m.better_ear": float(np.clip(r["correctness"] + rng.normal(0, 0.1), 0, 1)),
             "asr.m.logprob_left": float(rng.normal())} for r in demo_records("train")]
    scores = tmp_path / "train.jsonl"
    scores.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = _run("benchmarks/predictors.py", ["--data-root", root, "--train-scores", scores, "--folds", "2",
                                            "--predictors", "logistic,gbm", "--feature", "asr.m.better_ear"], capsys)
    lines = [line.split()[0] for line in out.splitlines() if line.startswith("predictor=")]
    assert lines == ["predictor=mean", "predictor=logistic", "predictor=gbm"], out


def test_make_demo_clip2(tmp_path, capsys):
    out = tmp_path / "demo_clip2"
    _run("scripts/make_demo_clip2.py", ["--source", DEMO_ROOT, "--out", out], capsys)
    shipped = ROOT / "data" / "demo_clip2"
    built = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert built == sorted(str(p.relative_to(shipped)) for p in shipped.rglob("*") if p.is_file())
    assert not [p for p in (out / "cadenza_data").iterdir() if p.name != "clip2"]  # no folder left aside


@pytest.mark.slow
def test_make_demo_data(tmp_path, capsys):
    """One prompt per split (three signals each), with espeak-ng (CI installs it)."""
    _program("espeak-ng")
    out = tmp_path / "demo"
    (out / "cadenza_data" / "stage2_store").mkdir(parents=True)  # an old demo, replaced when complete
    _run("scripts/make_demo_data.py", ["--out", out, "--prompts", "1", "--jobs", "1", "--simulator", "fast"], capsys)
    assert sorted(p.name for p in (out / "cadenza_data").iterdir()) == ["metadata", "train", "valid"]
    for split in ("train", "valid"):
        records = json.loads((out / "cadenza_data" / "metadata" / f"{split}_metadata.json").read_text())
        assert len(records) == 3
        assert all((out / "cadenza_data" / split / "signals" / f"{r['signal']}.flac").exists() for r in records)


@pytest.mark.slow
def test_make_demo_store(tmp_path, capsys):
    """A small data set's store built from scratch (its own shipped store left out of the runs),
    into a new folder that replaces the old one only when complete."""
    data = _small_root(tmp_path / "demo", valid=2)
    out = tmp_path / "store"
    (out / "old").mkdir(parents=True)
    assert "shipped" in _run("scripts/make_demo_store.py", ["--data-root", data, "--out", out], capsys)
    assert {p.name for p in out.iterdir()} >= {"transcript", "score", "haaqi"} and not (out / "old").exists()
    assert (data / "cadenza_data" / "stage2_store").is_symlink()  # the data set's own store untouched


@pytest.mark.slow
def test_scale(capsys):
    last = _run("benchmarks/scale.py", ["--signals", "2", "--shipped-store"], capsys).strip().splitlines()[-1]
    assert last.startswith("scale signals=2 first_s="), last


@pytest.fixture(scope="module")
def chain_results(tmp_path_factory):
    """The hearing-aid chain (``--input unprocessed --models identity,NLR1``) on a small data root."""
    import main

    root = tmp_path_factory.mktemp("chain")
    data = _small_root(root / "data")
    results = root / "results"
    assert main.main(["--data-root", str(data), "--results-dir", str(results), "--input", "unprocessed",
                      "--models", "identity,NLR1"]) == 0
    return data / "cadenza_data", results


@pytest.mark.slow
def test_report_benchmarks(chain_results, capsys):
    data, results = chain_results
    common = ["--data-root", data, "--results-dir", results]
    last = _run("benchmarks/quality_guard.py", [*common, "--signals", "1"], capsys).strip().splitlines()[-1]
    assert last.startswith("guard_kendall_all="), last
    last = _run("benchmarks/report_quality_cost.py", [*common, "--pyclarity-signals", "1"],
                capsys).strip().splitlines()[-1]
    assert last.startswith("report_haaqi_s="), last
    last = _run("benchmarks/lyricaid_report.py", [*common, "--model", "NLR1", "--baseline", "identity"],
                capsys).strip().splitlines()[-1]
    assert last.startswith("pooled_change="), last


@pytest.mark.slow
def test_lyricaid_tradeoff(tmp_path, capsys):
    """LyricAid trained one epoch at one quality-guard weight on a small data root."""
    import main

    data = _small_root(tmp_path / "data")
    results = tmp_path / "results"
    assert main.main(["--data-root", str(data), "--results-dir", str(results), "--input", "unprocessed",
                      "--models", "NLR1,LyricAid", "--baseline", "NLR1", "--train", "--train-epochs", "1",
                      "--train-quality-weight", "0", "--train-asr-model", _checkpoint(), "--tag", "q0",
                      "--device", "cpu"]) == 0
    figure = tmp_path / "tradeoff.png"
    out = _run("benchmarks/lyricaid_tradeoff.py", ["--data-root", data / "cadenza_data", "--results-dir", results,
                                                   "--tags", "q0", "--out", figure], capsys)
    assert "LyricAid (weight 0)" in out and figure.stat().st_size > 0


@pytest.mark.slow
def test_asr_speed(capsys):
    _program("ffmpeg")
    last = _run("benchmarks/asr_speed.py", ["--openai-checkpoint", _checkpoint(), "--signals", "1",
                                            "--batch-size", "2"], capsys).strip().splitlines()[-1]
    assert last.startswith("asr_speedup="), last


@pytest.mark.slow
def test_official_audio_path(capsys):
    _program("ffmpeg")
    last = _run("benchmarks/official_audio_path.py", ["--openai-checkpoint", _checkpoint(), "--signals", "1"],
                capsys).strip().splitlines()[-1]
    assert last.startswith("transcripts_differ="), last


@pytest.mark.slow
def test_asr_throughput(capsys):
    out = _run("benchmarks/asr_throughput.py", ["--openai-models", _checkpoint(), "--batch-sizes", "2",
                                                "--ears", "2", "--repeats", "1"], capsys)
    lines = [line for line in out.splitlines() if "batch_size=2 ears_per_s=" in line and "identical=" in line]
    assert len(lines) == 2, out  # faster-whisper's and openai-whisper's


@pytest.mark.slow
def test_training_objective(tmp_path, capsys):
    data = _small_root(tmp_path / "data")
    last = _run("benchmarks/training_objective.py", ["--openai-checkpoint", _checkpoint(), "--data-root",
                                                     data / "cadenza_data", "--splits", "valid"],
                capsys).strip().splitlines()[-1]
    assert last.startswith("objective_spearman="), last


def test_a_rebuilt_folder_is_swapped_in_only_when_complete(tmp_path):
    from code.io_utils import replaced_folder

    target = tmp_path / "store"
    (target / "kind").mkdir(parents=True)
    (target / "kind" / "old.json").write_text("{}")
    with pytest.raises(KeyboardInterrupt):
        with replaced_folder(target) as new:
            (new / "half.json").write_text("{}")
            raise KeyboardInterrupt  # an interruption halfway
    assert [p.name for p in tmp_path.iterdir()] == ["store"] and (target / "kind" / "old.json").exists()
    with replaced_folder(target) as new:
        (new / "kind").mkdir()
        (new / "kind" / "new.json").write_text("{}")
        assert (target / "kind" / "old.json").exists()  # the old one stays until the new one is complete
    assert [p.name for p in tmp_path.iterdir()] == ["store"] and [p.name for p in (target / "kind").iterdir()] == ["new.json"]
