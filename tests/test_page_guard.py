"""The rules that keep a shared page inside its folders, without running a pipeline: page
names from provenance (plain, carrying the report's settings), which files a page may link,
and which output paths ``compute_csvs.py`` accepts. The end-to-end cases:
tests/test_refusals_pages.py."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from code.errors import DataError
from code.evaluation.outputs.page_guard import shareable
from code.evaluation.outputs.report_signals import UnsafeProvenance, page_name
from code.evaluation.outputs.targets import check_output_file, check_output_folder

RUN = {"model": "NLR1", "tag": "", "input": "unprocessed", "split": "valid", "run": "NLR1-unprocessed",
       "config": {"models": "identity,NLR1"}}


def _with(**fields) -> dict:
    config = {**RUN["config"], **fields.pop("config", {})}
    return {**RUN, **fields, "config": config}


NAMES = [  # (provenance, baseline given to the page or None, page name)
    (_with(), None, "report_valid_unprocessed"),
    (_with(config={"alpha": 0.3}), None, "report_valid_unprocessed_alpha0.3"),
    (_with(config={"alpha": 0.0}), None, "report_valid_unprocessed_alpha0"),
    (_with(config={"baseline": "NLR1"}), None, "report_valid_unprocessed_vs-NLR1"),
    (_with(config={"baseline": "NLR1"}), "identity", "report_valid_unprocessed"),  # compute_csvs' own
    (_with(config={"quality": "none"}), None, "report_valid_unprocessed_quality=none"),
    (_with(config={"alpha": 0.3, "models": ""}), None, "report_valid_unprocessed"),  # one model: no quality
    (_with(input="signals", run="NLR1", config={"alpha": 0.3}), None, "report_valid_signals"),
]


@pytest.mark.parametrize("provenance, baseline, name", NAMES)
def test_page_names_carry_the_reports_settings(provenance, baseline, name):
    assert page_name(provenance, baseline=baseline) == name


HOSTILE = [  # (provenance, baseline, what the message says)
    (_with(split="../../../../x"), None, "its 'split' is '../../../../x'"),
    (_with(split="/abs"), None, "its 'split' is '/abs'"),
    (_with(split=".."), None, "its 'split' is '..'"),
    (_with(tag="a/../../b"), None, "its 'tag' is 'a/../../b'"),
    (_with(tag=".hidden"), None, "its 'tag' is '.hidden'"),
    (_with(input="..\\..\\x"), None, "its 'input'"),
    (_with(model="../m"), None, "its 'model' is '../m'"),
    (_with(run="x\ny"), None, "its 'run'"),
    (_with(split=7), None, "its 'split' is 7"),
    ({k: v for k, v in RUN.items() if k != "split"}, None, "its 'split' is None"),
    (_with(config={"baseline": "../../x"}), None, "not a plain file name"),
    (_with(), "../../x", "not a plain file name"),
    (_with(config={"alpha": "x"}), None, "cannot name a page"),
]


@pytest.mark.parametrize("provenance, baseline, message", HOSTILE)
def test_a_hostile_provenance_names_no_page(provenance, baseline, message):
    with pytest.raises(UnsafeProvenance) as caught:
        page_name(provenance, baseline=baseline)
    assert message in str(caught.value)
    assert isinstance(caught.value, DataError)  # the scripts' exit 2


def _regular(inside, outside):
    (inside / "a.flac").write_bytes(b"fLaC")
    return inside / "a.flac"


def _link_out(inside, outside):
    (outside / "passwd").write_text("secret")
    (inside / "leak.flac").symlink_to(outside / "passwd")
    return inside / "leak.flac"


def _link_in(inside, outside):
    (inside / "real.flac").write_bytes(b"fLaC")
    (inside / "alias.flac").symlink_to(inside / "real.flac")
    return inside / "alias.flac"


def _folder_link_out(inside, outside):
    (outside / "x.flac").write_bytes(b"fLaC")
    (inside / "audio").symlink_to(outside, target_is_directory=True)
    return inside / "audio" / "x.flac"


def _dotdot(inside, outside):
    (outside / "y.flac").write_bytes(b"fLaC")
    return inside / ".." / outside.name / "y.flac"


def _device(inside, outside):
    (inside / "null.flac").symlink_to(os.devnull)
    return inside / "null.flac"


def _pipe(inside, outside):
    os.mkfifo(inside / "pipe.flac")
    return inside / "pipe.flac"


def _loop(inside, outside):
    (inside / "loop.flac").symlink_to(inside / "loop.flac")
    return inside / "loop.flac"


SHAREABLE = [(_regular, True), (_link_in, True), (_link_out, False), (_folder_link_out, False),
             (_dotdot, False), (_device, False), (_pipe, False), (_loop, False)]


@pytest.mark.parametrize("make, ok", SHAREABLE, ids=[m.__name__.strip("_") for m, _ in SHAREABLE])
def test_a_page_links_only_regular_files_inside_its_folders(tmp_path, make, ok):
    inside, outside = tmp_path / "data", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    assert shareable(make(inside, outside), [Path(os.path.realpath(inside))]) is ok


def _make(kind: str, folder: Path) -> Path:
    if kind == "folder":
        (folder / "x.html").mkdir()
        return folder / "x.html"
    if kind == "devnull":
        (folder / "null.json").symlink_to(os.devnull)
        return folder / "null.json"
    if kind == "pipe":
        os.mkfifo(folder / "p.png")
        return folder / "p.png"
    if kind == "csv":
        (folder / "submission_x_valid.csv").write_text("signal_ID,intelligibility_score\n")
        return folder / "submission_x_valid.csv"
    if kind == "file under a file":
        (folder / "f").write_text("")
        return folder / "f" / "x.json"
    return folder / "new" / "deeper" / kind  # absent: made when written


OUTPUT_FILES = [  # (what, suffixes, accepted or the message)
    ("folder", (".html", ".htm"), "is a folder"),
    ("devnull", (".json",), "is not a regular file"),
    ("pipe", (".png",), "is not a regular file"),
    ("csv", (".json",), "not .csv (it would write over that file)"),
    ("file under a file", (".json",), "is not a folder, so nothing can be written under it"),
    ("x.json", (".json",), None),
    ("x.png", (".json",), "expected a file name ending .json, not .png"),
]


@pytest.mark.parametrize("kind, suffixes, message", OUTPUT_FILES)
def test_output_files_are_checked_before_any_work(tmp_path, kind, suffixes, message):
    path = _make(kind, tmp_path)
    before = sorted(tmp_path.rglob("*"))
    if message is None:
        check_output_file(path, option="--json", suffixes=suffixes)
    else:
        with pytest.raises(DataError) as caught:
            check_output_file(path, option="--json", suffixes=suffixes)
        assert message in str(caught.value) and str(path) in str(caught.value)
    assert sorted(tmp_path.rglob("*")) == before  # the check writes nothing it leaves


def test_an_html_folder_must_be_a_folder(tmp_path):
    (tmp_path / "page.csv").write_text("")
    with pytest.raises(DataError, match="exists and is not a folder"):
        check_output_folder(tmp_path / "page.csv", option="--html")
    check_output_folder(tmp_path / "new", option="--html")
    assert not (tmp_path / "new").exists()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("chattr") is None,
                    reason="an immutable folder needs root and chattr (CI runs as root)")
def test_an_immutable_folder_is_an_environment_error(tmp_path):
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    subprocess.run(["chattr", "+i", str(frozen)], check=True)
    try:
        with pytest.raises(OSError, match="Operation not permitted"):
            check_output_file(frozen / "x.json", option="--json", suffixes=(".json",))
    finally:
        subprocess.run(["chattr", "-i", str(frozen)], check=False)

