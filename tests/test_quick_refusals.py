"""A user's mistake on the command line is refused at once: before torch, Whisper or
pyclarity are imported (those take seconds), with what was expected."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = ("torch", "whisper", "faster_whisper", "clarity", "numba", "scipy")


def _main(*argv: str) -> tuple[int, str, list[str]]:
    """``main.main(argv)`` in a fresh interpreter: exit code, stderr, heavy modules imported."""
    script = (f"import json, sys, main\nrc = main.main({list(argv)!r})\n"
              f"print(json.dumps([rc, [m for m in {HEAVY!r} if m in sys.modules]]))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    if done.stdout.strip():
        rc, heavy = json.loads(done.stdout.strip().splitlines()[-1])
        return rc, done.stderr, heavy
    return done.returncode, done.stderr, []


@pytest.mark.parametrize("argv, expected", [
    (["--modle", "NLR1"], "unknown option --modle: did you mean --model?"),
    (["--data-rot", "x"], "unknown option --data-rot: did you mean --data-root?"),
    (["--model", "NLR1", "stray"], "unexpected value 'stray'"),
])
def test_a_mistyped_option_gets_the_closest_one(argv, expected):
    rc, err, heavy = _main(*argv)
    assert rc == 2 and expected in err and heavy == []
    assert "usage:" not in err  # one line, not argparse's usage block


def test_a_bad_data_root_is_refused_before_heavy_imports(tmp_path):
    rc, err, heavy = _main("--data-root", str(tmp_path / "nowhere"))
    assert rc == 2 and "is not a CLIP data root" in err and heavy == []


def test_a_missing_metadata_file_is_refused_before_heavy_imports(tmp_path):
    (tmp_path / "cadenza_data" / "metadata").mkdir(parents=True)
    (tmp_path / "cadenza_data" / "metadata" / "train_metadata.json").write_text("[]")
    rc, err, heavy = _main("--data-root", str(tmp_path), "--split", "valid")
    assert rc == 2 and "no metadata file for split 'valid'" in err and "holds train_metadata.json" in err
    assert heavy == []


def test_a_log_file_gets_lines_not_progress_bars(tmp_path):
    """``python main.py > run.log 2>&1``: no bar redrawn with carriage returns among the log
    lines; the run still closes with its done line."""
    log = tmp_path / "run.log"
    with log.open("w") as f:
        done = subprocess.run([sys.executable, "main.py", "--results-dir", str(tmp_path / "results")], cwd=ROOT,
                              stdout=f, stderr=subprocess.STDOUT, timeout=600)
    text = log.read_bytes().decode()  # as written: read_text would turn \r into \n
    assert done.returncode == 0, text[-2000:]
    assert "\r" not in text and "INFO code.pipeline: done: 1 submission(s)" in text


def test_compute_csvs_suggests_the_closest_option_too():
    done = subprocess.run([sys.executable, "compute_csvs.py", "--plto", "out.png"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "unknown option --plto: did you mean --plot?" in done.stderr
