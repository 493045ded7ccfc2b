"""The HTML report's content, read without a browser: word marks as the official scorer
counts them, the rows and players of the demo's page, relative links, escaping, names."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from code.evaluation.asr.scoring import LyricScorer
from code.evaluation.asr.word_marks import WordMarker
from code.evaluation.outputs.html_report import write_html_report
from code.evaluation.outputs.report_signals import load_run, page_name
from code.io_utils import read_jsonl
from tests.report_browser import page_data

pytestmark = pytest.mark.slow  # most tests read a demo run made by main.py (seconds)

PAGE = "report_valid_unprocessed.html"

# (lyric line, transcript, the normalised words the scorer counted heard)
MARK_CASES = [
    ("there is a fire burning deep inside of me", " There's a fire, burning in side me",
     ["THERE", "IS", "A", "FIRE", "BURNING", "ME"]),
    ("tomorrow we will fly across the open sky", "", []),
    ("tomorrow we will fly across the open sky", " Tomorrow we will fly across the open sky.",
     ["TOMORROW", "WE", "WILL", "FLY", "ACROSS", "THE", "OPEN", "SKY"]),
    ("we don't stop now", "we do not stop", ["WE", "DO", "NOT", "STOP"]),
    ("i have 2 cats", "I have two cats", ["I", "HAVE", "CATS"]),  # the scorer drops digit tokens
    ("the the the", "the", ["THE"]),
]


@pytest.fixture(scope="module")
def scorer() -> LyricScorer:
    return LyricScorer()


@pytest.mark.parametrize("prompt, transcript, heard", MARK_CASES)
def test_word_marks_are_the_scorers_hits(scorer, prompt, transcript, heard):
    marks = WordMarker().marks(prompt, transcript)
    counts = scorer.score(prompt, transcript)
    assert [w for w, h in marks if h] == heard
    assert sum(h for _, h in marks) == counts.hits
    assert len(marks) == counts.hits + counts.substitutions + counts.deletions


def test_page_marks_add_up_to_the_scores_files(demo_report_run):
    page = demo_report_run / PAGE
    data = page_data(page)
    runs = [load_run(demo_report_run / f"submission_{r['name']}_valid.csv") for r in data["runs"]]
    checked = 0
    for i, run in enumerate(runs):
        scores = {r["signal"]: r for r in read_jsonl(run.scores_file)}
        for row in data["rows"]:
            record = scores[row["signal"]]
            for ear, transcript, correctness in zip(row["runs"][i]["ears"], record["transcripts"],
                                                    record["ear_correctness"]):
                assert ear["text"] == transcript
                assert sum(h for _, h in ear["marks"]) == ear["correct"]
                assert ear["correct"] / ear["n"] == pytest.approx(correctness, abs=1e-12), row["signal"]
                checked += 1
    assert checked == 2 * 24 * 2


def test_the_demo_page_has_24_rows_of_5_players_that_travel_with_the_folder(demo_report_run, tmp_path):
    data = page_data(demo_report_run / PAGE)
    assert [r["name"] for r in data["runs"]] == ["identity-unprocessed", "NLR1-unprocessed"]
    assert len(data["rows"]) == 24
    labels = ["unprocessed", "identity output", "identity heard", "NLR1 output", "NLR1 heard"]
    for row in data["rows"]:
        assert [a["label"] for a in row["audio"]] == labels
        s = row["signal"]
        expected = [f"report_valid_unprocessed_files/audio/{s}_unproc.flac",
                    f"identity/from_unprocessed/{s}.wav", f"identity/from_unprocessed/heard/{s}.wav",
                    f"NLR1/from_unprocessed/{s}.wav", f"NLR1/from_unprocessed/heard/{s}.wav"]
        assert [a["src"] for a in row["audio"]] == expected  # what the listener heard is the heard/ file
    copy = tmp_path / "elsewhere" / "shared"
    shutil.copytree(demo_report_run, copy, symlinks=False, ignore=shutil.ignore_patterns(".cache"))
    for row in page_data(copy / PAGE)["rows"]:
        for a in row["audio"]:
            for link in (a["src"], a["spec"]):
                assert not link.startswith(("/", "file:")), link
                assert (copy / link).is_file(), link
    assert (demo_report_run / "hearing_aid_report_valid_unprocessed.png").is_file()


def test_the_page_fetches_nothing_and_warns_of_synthetic_labels(demo_report_run):
    text = (demo_report_run / PAGE).read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text, re.I)
    assert not re.search(r"<script[^>]+src=|<link[^>]+stylesheet|@import|url\(", text, re.I)
    assert "SYNTHETIC labels" in text
    assert "git_commit" in text and "metadata_digest" in text  # what made it


def test_the_page_shows_music_quality_beside_intelligibility(demo_report_run):
    """The hearing-aid chain's page has the HAAQI table of the report's CSV and both figures."""
    import csv

    text = (demo_report_run / PAGE).read_text(encoding="utf-8")
    assert "<h2>Music quality (HAAQI)</h2>" in text
    assert 'src="hearing_aid_report_valid_unprocessed_tradeoff.png"' in text
    with (demo_report_run / "hearing_aid_report_valid_unprocessed.csv").open(newline="") as f:
        nlr1 = next(r for r in csv.DictReader(f) if r["model"] == "NLR1" and r["hearing_loss"] == "All")
    assert f"{float(nlr1['mean_haaqi']):.3f} [{float(nlr1['haaqi_ci95_low']):.3f}" in text
    assert 0.0 < float(nlr1["mean_haaqi"]) <= 1.0 and int(nlr1["haaqi_n"]) == 24


def test_the_page_shows_the_report_it_is_given(demo_report_run, tmp_path):
    """A report under another name (a run with --baseline or --alpha) is the one the page shows."""
    results = tmp_path / "results"
    shutil.copytree(demo_report_run, results, ignore=shutil.ignore_patterns(".cache"))
    for path in results.glob("hearing_aid_report_valid_unprocessed*"):
        path.rename(path.with_name(path.name.replace("unprocessed", "unprocessed_alpha0.3")))
    csvs = sorted(results.glob("submission_*_valid.csv"))
    plain = write_html_report(csvs, tmp_path / "plain.html", spectrograms=False)
    assert "Music quality (HAAQI)" not in plain.read_text(encoding="utf-8")  # not under the default name
    given = write_html_report(csvs, tmp_path / "given.html", spectrograms=False,
                              report=results / "hearing_aid_report_valid_unprocessed_alpha0.3")
    text = given.read_text(encoding="utf-8")
    assert "<h2>Music quality (HAAQI)</h2>" in text and "_alpha0.3_tradeoff.png" in text


def test_text_from_the_data_is_escaped(demo_report_run, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(demo_report_run, results, ignore=shutil.ignore_patterns(".cache"))
    csvs = sorted(results.glob("submission_*_valid.csv"))
    run = load_run(csvs[0])
    records = json.loads(Path(run.provenance["data_set"]["metadata_file"]).read_text())
    records[0]["prompt"] = 'there is a fire </script><script>alert("p")</script> & me'
    metadata = tmp_path / "valid_metadata.json"
    metadata.write_text(json.dumps(records))
    for csv in csvs:
        provenance = csv.with_name(csv.stem + ".run.json")
        record = json.loads(provenance.read_text())
        record["data_set"]["metadata_file"] = str(metadata)
        provenance.write_text(json.dumps(record))
        scores = load_run(csv).scores_file
        lines = read_jsonl(scores)
        lines[0]["transcripts"][0] = '</script><img src=x onerror=alert(1)> fire'
        scores.write_text("".join(json.dumps(line) + "\n" for line in lines))
    page = write_html_report(csvs, results / "escaped.html", spectrograms=False)
    text = page.read_text(encoding="utf-8")
    assert "<script>alert" not in text and "<img src=x" not in text
    data = page_data(page)
    assert data["rows"][0]["prompt"] == records[0]["prompt"]
    shown = {ear["text"] for row in data["rows"] for v in row["runs"] for ear in v["ears"]}
    assert '</script><img src=x onerror=alert(1)> fire' in shown


@pytest.mark.parametrize("provenance, name", [
    ({"model": "NLR1", "tag": "", "input": "unprocessed", "split": "valid", "run": "NLR1-unprocessed"},
     "report_valid_unprocessed"),
    ({"model": "NLR1", "tag": "", "input": "signals", "split": "train", "run": "NLR1"}, "report_train_signals"),
    ({"model": "NLR1", "tag": "x", "input": "unprocessed", "split": "valid", "run": "NLR1-x-unprocessed-gbm-f7d8de"},
     "report_valid_unprocessed_x_gbm-f7d8de"),
    ({"model": "identity", "tag": "", "input": "signals", "split": "valid", "run": "identity-demo_clip2-4c8063"},
     "report_valid_signals_demo_clip2-4c8063"),
])
def test_pages_are_named_as_the_hearing_aid_report(provenance, name):
    assert page_name(provenance) == name


def test_compute_csvs_writes_the_page_of_the_runs_it_compares(demo_report_run, tmp_path, capsys):
    import compute_csvs

    results = tmp_path / "results"
    shutil.copytree(demo_report_run, results, ignore=shutil.ignore_patterns(".cache"))
    (results / PAGE).unlink()
    assert compute_csvs.main([str(results), "--html"]) == 0
    data = page_data(results / PAGE)
    assert len(data["rows"]) == 24 and len(data["runs"]) == 2
    assert "Against the listeners" in (results / PAGE).read_text()
    assert (results / "report_valid_unprocessed_files" / "comparison.png").is_file()
    assert compute_csvs.main([str(results), "--html", str(tmp_path / "mine.html")]) == 0
    assert len(page_data(tmp_path / "mine.html")["rows"]) == 24
