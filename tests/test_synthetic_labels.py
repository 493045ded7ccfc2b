"""Synthetic labels are a property the data set declares (a marker in its metadata folder),
so every place that prints figures on them says so, whatever the folder is called."""

from __future__ import annotations

import shutil

import compute_csvs
from code.data.synthetic import SYNTHETIC_MARKER, labels_are_synthetic
from tests.conftest import CLIP2_DEMO, DEMO_ROOT, demo_records, run_main


def test_the_shipped_demos_declare_their_labels_synthetic():
    assert labels_are_synthetic(DEMO_ROOT / "cadenza_data" / "metadata")
    assert labels_are_synthetic(CLIP2_DEMO / "cadenza_data" / "clip2" / "metadata")
    assert not labels_are_synthetic(None) and not labels_are_synthetic("")


def _bare_csv(path, split="valid"):
    rows = [f"{r['signal']},{40 + i % 7}" for i, r in enumerate(demo_records(split))]
    path.write_text("signal_ID,intelligibility_score\n" + "\n".join(rows) + "\n")
    return path


def test_compute_csvs_says_so_for_a_renamed_copy_and_not_without_the_marker(tmp_path, capsys):
    copy = tmp_path / "my_experiment"  # the demo's metadata under another name
    shutil.copytree(DEMO_ROOT / "cadenza_data" / "metadata", copy / "cadenza_data" / "metadata")
    csv = _bare_csv(tmp_path / "guess.csv")
    assert compute_csvs.main([str(csv), "--data-root", str(copy), "--baseline", ""]) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC labels: these figures prove the mechanics, never quality" in out
    assert "the data set of the CSVs without provenance declares" in out  # a bare CSV: labels from --data-root
    (copy / "cadenza_data" / "metadata" / SYNTHETIC_MARKER).unlink()  # now a "real" data set
    assert compute_csvs.main([str(csv), "--data-root", str(copy), "--baseline", ""]) == 0
    assert "SYNTHETIC" not in capsys.readouterr().out


def test_main_and_compute_csvs_say_so_for_a_demo_copied_elsewhere(tmp_path, caplog, capsys):
    """The whole demo copied to a folder of another name: main.py's "vs listeners" line and
    compute_csvs.py's table (a run with provenance) carry the note."""
    copy = tmp_path / "elsewhere"
    shutil.copytree(DEMO_ROOT, copy)
    code, log = run_main(["--data-root", copy, "--results-dir", tmp_path / "results"], caplog)
    assert code == 0, log[-2000:]
    (line,) = [x for x in log.splitlines() if "valid vs listeners" in x]
    assert line.endswith("(SYNTHETIC labels: these figures prove the mechanics, never quality)")
    assert compute_csvs.main([str(tmp_path / "results"), "--baseline", ""]) == 0
    assert "the data set elsewhere declares its labels made up" in capsys.readouterr().out
