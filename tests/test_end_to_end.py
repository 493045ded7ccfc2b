"""The whole pipeline through `python main.py`, with real Whisper inference on the demo.

The first demo run is `python main.py` itself (a subprocess: the README's command); the
rest call ``main.main`` / ``compute_csvs.main`` in this process. The demo's first run reads
the fit set's values from the demo's shipped Stage-2 store, as a newcomer's does."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from code.data.audio import read_audio
from tests.conftest import DEMO_ROOT, ROOT, demo_records, make_clip_root, run_main as run_here


def run_main(*args, cwd=ROOT, check=True):
    proc = subprocess.run([sys.executable, "main.py", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"main.py failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """`python main.py` defaults (NLR1, demo valid split), into a temporary results folder."""
    results = tmp_path_factory.mktemp("results")
    first = run_main("--results-dir", results)
    return results, first


@pytest.mark.slow
def test_demo_run_writes_enhanced_audio_and_submission(demo_run):
    results, _ = demo_run
    records = demo_records("valid")
    for r in records:
        wav = results / "NLR1" / f"{r['signal']}.wav"
        source = read_audio(DEMO_ROOT / "cadenza_data" / "valid" / "signals" / f"{r['signal']}.flac")
        assert read_audio(wav).shape == source.shape
    assert json.loads((results / "NLR1" / "config_valid.json").read_text())["model"] == "NLR1"
    with (results / "submission_NLR1_valid.csv").open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["signal_ID", "intelligibility_score"]
    assert [row[0] for row in rows[1:]] == [r["signal"] for r in records]
    values = np.array([float(row[1]) for row in rows[1:]])
    assert np.all(np.isfinite(values)) and np.all((values >= 0) & (values <= 100))
    evalai = (results / "evalai_NLR1_valid.csv").read_text().splitlines()
    assert evalai == [",".join(row) for row in rows[1:]]


@pytest.mark.slow
def test_transcripts_are_kept_and_real(demo_run):
    results, _ = demo_run
    caches = list((results / "NLR1").glob("scores.valid.*.jsonl"))
    assert len(caches) == 1
    lines = [json.loads(line) for line in caches[0].read_text().splitlines()]
    assert len(lines) == len(demo_records("valid"))
    prompts = {r["signal"]: r["prompt"] for r in demo_records("valid")}
    for line in lines:
        assert len(line["transcripts"]) == 2 and line["score"] == max(line["ear_correctness"])
    # Whisper hears the words where the voice is clear (the demo spans drowned to plain).
    assert max(line["score"] for line in lines) > 0.7
    assert any(prompts[line["signal"]].split()[-1] in line["transcripts"][0].lower() for line in lines)


@pytest.mark.slow
def test_second_run_recomputes_nothing(demo_run, caplog):
    results, _ = demo_run
    wavs = {p: p.stat().st_mtime_ns for p in (results / "NLR1").glob("*.wav")}
    code, log = run_here(["--results-dir", results], caplog)
    assert code == 0, log[-3000:]
    n = len(demo_records("valid"))
    assert f"{n} reused, 0 to enhance" in log
    assert f"0 signal(s) to transcribe, {n} reused" in log
    assert {p: p.stat().st_mtime_ns for p in wavs} == wavs


@pytest.mark.slow
def test_compute_csvs_compares_demo_outputs(demo_run, tmp_path, capsys):
    """The demo's valid split is labelled (as CLIP1's since metadata v1.2): one row for NLR1,
    the leaderboard copy not listed again; the run itself logged the same figures."""
    import compute_csvs

    results, first = demo_run
    hint = first.stderr.strip().splitlines()[-1]
    assert hint.endswith(f"to compare with listeners: python compute_csvs.py {results}")  # as run below
    capsys.readouterr()
    assert compute_csvs.main([str(results), "--json", str(tmp_path / "figures.json")]) == 0
    out = capsys.readouterr().out
    rows = json.loads((tmp_path / "figures.json").read_text())["rows"]
    assert [(r["name"], r["split"]) for r in rows] == [("NLR1", "valid")]
    table = [line for line in out.splitlines() if line.startswith("NLR1 ") and not line.startswith("NLR1 (")]
    assert [line.split()[:3] for line in table] == [["NLR1", "demo", "valid"]]  # one table row
    assert "evalai" not in out and "not comparable" not in out
    assert f"RMSE {rows[0]['RMSE']:.2f}" in first.stderr  # main.py logged the same figure


@pytest.mark.parametrize("damage,expected", [
    (lambda root, rs: (root / "cadenza_data/valid/signals" / f"{rs[1]['signal']}.flac").write_bytes(b""),
     "audio file is empty"),
    (lambda root, rs: (root / "cadenza_data/metadata/valid_metadata.json").write_text(
        json.dumps([{**rs[0], "hearing_loss": "Profound"}] + rs[1:])), "unknown hearing_loss"),
])
def test_bad_input_fails_fast_without_csv(tmp_path, damage, expected, caplog):
    records = demo_records("valid")[:3]
    root = make_clip_root(tmp_path / "data", "valid", records)
    damage(root, records)
    code, log = run_here(["--data-root", root, "--results-dir", tmp_path / "results"], caplog)
    assert code != 0
    assert expected in log
    assert not list((tmp_path / "results").glob("submission_*"))


def test_not_a_clip_root(tmp_path, caplog, capsys):
    code, log = run_here(["--data-root", tmp_path, "--results-dir", tmp_path / "r"], caplog, capsys)
    assert code == 2 and "is not a CLIP data root" in log


def test_help_lists_every_field(caplog, capsys):
    """--help in this process; `python main.py --help` itself starts in
    test_researcher_loop.py::test_paths_from_the_config_follow_main_py."""
    import main

    with pytest.raises(SystemExit) as exit_:
        main.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--data-root", "--split", "--model", "--input", "--asr-engine", "--scores",
                 "--train-scores", "--shard", "--audiograms", "--results-dir"):
        assert flag in out
