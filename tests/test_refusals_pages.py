"""The listening page and the comparison's outputs under bad input and hostile data: records
skipped with ``--skip-invalid`` stay off the page (listed), a data file linked to somewhere
else is never linked nor copied, a hostile ``.run.json`` writes nothing outside the results
folder, reports of other settings never share a page, ``compute_csvs.py``'s outputs are
checked before any work, and a page made after the metadata changed says so.

One ``--skip-invalid --models`` data set is run three times into one results folder (the
default report, ``--baseline NLR1``, ``--alpha 0``); every test reads a copy of it."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from code.evaluation.outputs.html_report import write_html_report
from tests.conftest import demo_records, make_clip_root
from tests.report_browser import page_data

pytestmark = pytest.mark.slow  # three short runs of main.py (about a minute each under load)

SECRET = "root:x:0:0:SECRET"
PAGES = {  # the run's extra arguments -> its page and the alpha its quality table shows
    (): ("report_valid_unprocessed.html", "alpha 0.5000"),
    ("--baseline", "NLR1"): ("report_valid_unprocessed_vs-NLR1.html", "alpha 0.5000"),
    ("--alpha", "0"): ("report_valid_unprocessed_alpha0.html", "alpha 0.0000"),
}


@pytest.fixture(scope="module")
def skip_runs(tmp_path_factory):
    """Six valid records: one with an unknown hearing loss, one whose unprocessed file links to
    a text file outside the data set (both skipped), one whose file links to real audio
    outside it (run, but not shareable). Returns (data root, results, {args: (exit, log)},
    the three records' IDs)."""
    base = tmp_path_factory.mktemp("pages")
    root = base / "data"
    make_clip_root(root, "train", shipped_store=True)
    records = demo_records("valid")[:6]
    records[0]["hearing_loss"] = "Profound"
    make_clip_root(root, "valid", records, shipped_store=True)
    outside = base / "outside"
    outside.mkdir()
    (outside / "passwd").write_text(SECRET + "\n")
    audio = root / "cadenza_data" / "valid" / "unprocessed"
    shutil.copy(audio / f"{records[2]['signal']}_unproc.flac", outside / "real.flac")
    for i, target in ((1, outside / "passwd"), (2, outside / "real.flac")):
        link = audio / f"{records[i]['signal']}_unproc.flac"
        link.unlink()
        link.symlink_to(target)
    results = base / "results"
    logs = {}
    handler_level = logging.getLogger().level
    for extra in PAGES:
        records_log = _LogCapture()
        logging.getLogger().addHandler(records_log)
        logging.getLogger().setLevel(logging.INFO)
        import main

        try:
            code = main.main(["--input", "unprocessed", "--models", "identity,NLR1", "--skip-invalid",
                              "--data-root", str(root), "--results-dir", str(results), *extra])
        except Exception as e:  # noqa: BLE001 -- a crash is what the first test reports
            code = f"crashed: {type(e).__name__}: {e}"
        finally:
            logging.getLogger().removeHandler(records_log)
            logging.getLogger().setLevel(handler_level)
        logs[extra] = (code, records_log.text())
    return root, results, logs, [r["signal"] for r in records[:3]]


class _LogCapture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    def text(self) -> str:
        return "\n".join(self.lines)


def _copy(skip_runs, tmp_path, *, fix_metadata: bool = True) -> Path:
    """The runs' results folder copied to ``tmp_path/R`` with, by default, its metadata
    copied and the unknown hearing loss corrected (so compute_csvs has labels)."""
    root, results, _, ids = skip_runs
    copy = tmp_path / "a" / "b" / "R"
    shutil.copytree(results, copy, ignore=shutil.ignore_patterns(".cache"))
    if fix_metadata:
        metadata = tmp_path / "valid_metadata.json"
        records = json.loads((root / "cadenza_data/metadata/valid_metadata.json").read_text())
        records[0]["hearing_loss"] = "Mild"
        metadata.write_text(json.dumps(records))
        for path in copy.glob("*.run.json"):
            record = json.loads(path.read_text())
            record["data_set"]["metadata_file"] = str(metadata)
            path.write_text(json.dumps(record))
    return copy


def _files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# --- rows 1, 4 and 7: the runs themselves ---------------------------------------------------

@pytest.mark.parametrize("extra", list(PAGES), ids=lambda e: " ".join(e) or "default")
def test_skip_invalid_models_runs_write_their_own_page_without_the_skipped(skip_runs, extra):
    root, results, logs, ids = skip_runs
    code, log = logs[extra]
    assert code == 0, log[-2000:]
    assert "done: 2 submission(s)" in log
    page, alpha = PAGES[extra]
    text = (results / page).read_text(encoding="utf-8")
    shown = [row["signal"] for row in page_data(results / page)["rows"]]
    assert len(shown) == 4 and ids[0] not in shown and ids[1] not in shown
    assert "2 record(s) left out" in text and ids[0] in text and "Profound" in text
    assert "<h2>Music quality (HAAQI)</h2>" in text and f"with {alpha}." in text


@pytest.mark.parametrize("page", [p for p, _ in PAGES.values()])
def test_no_page_links_or_copies_a_file_outside_the_data_set_and_results(skip_runs, page):
    root, results, _, ids = skip_runs
    links = [a["src"] for row in page_data(results / page)["rows"] for a in row["audio"]]
    assert links and not any(ids[1] in src or ids[2] + "_unproc" in src for src in links)
    files = results / page.replace(".html", "_files")
    roots = [os.path.realpath(results), os.path.realpath(root)]
    for path in files.rglob("*"):
        assert not path.is_symlink(), path
        assert any(os.path.realpath(path).startswith(r + os.sep) for r in roots), path
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    text = (results / page).read_text(encoding="utf-8")
    assert "1 audio file(s) not linked" in text and f"{ids[2]}_unproc.flac" in text


def test_zip_of_the_page_folder_holds_no_outside_file(skip_runs, tmp_path):
    """The documented way to share the page: ``zip -r`` stores what links point at."""
    if shutil.which("zip") is None:
        pytest.skip("no zip on this machine")
    _, results, _, ids = skip_runs
    archive = tmp_path / "page.zip"
    subprocess.run(["zip", "-qr", str(archive), "report_valid_unprocessed.html", "report_valid_unprocessed_files"],
                   cwd=results, check=True)
    assert SECRET.encode() not in archive.read_bytes()


def test_compute_csvs_page_keeps_the_quality_table_of_the_last_runs_alpha(skip_runs, tmp_path, caplog):
    import compute_csvs

    copy = _copy(skip_runs, tmp_path)
    for page in copy.glob("report_*.html"):
        page.unlink()
    assert compute_csvs.main([str(copy), "--html"]) == 0
    pages = sorted(p.name for p in copy.glob("report_*.html"))
    assert pages == ["report_valid_unprocessed_alpha0.html"]  # the CSVs' provenance: the --alpha 0 run
    text = (copy / pages[0]).read_text(encoding="utf-8")
    assert "<h2>Music quality (HAAQI)</h2>" in text and "with alpha 0.0000." in text


def test_compute_csvs_scores_skip_invalid_runs_without_their_invalid_records(skip_runs, tmp_path, caplog, capsys):
    """The ``done:`` line of a ``--skip-invalid`` run suggests compute_csvs: it scores the run."""
    import compute_csvs

    copy = _copy(skip_runs, tmp_path, fix_metadata=False)
    caplog.set_level("WARNING")
    capsys.readouterr()
    assert compute_csvs.main([str(copy), "--html"]) == 0
    assert "1 invalid record(s) left out of the labels, as the run left them out" in caplog.text
    out = capsys.readouterr().out
    assert "not scored" not in out and "identity" in out and "NLR1" in out
    assert "Against the listeners" in (copy / "report_valid_unprocessed_alpha0.html").read_text(encoding="utf-8")


# --- row 17: metadata edited after the runs --------------------------------------------------

def test_a_page_made_after_the_metadata_changed_says_so(skip_runs, tmp_path, caplog):
    import compute_csvs

    copy = _copy(skip_runs, tmp_path)
    metadata = tmp_path / "valid_metadata.json"
    records = json.loads(metadata.read_text())
    for r in records[3:]:  # other words, as many: the scores counted the old ones
        r["prompt"] = " ".join("zebra" for _ in r["prompt"].split())
    metadata.write_text(json.dumps(records))
    caplog.set_level("WARNING")
    assert compute_csvs.main([str(copy), "--html"]) == 0
    text = (copy / "report_valid_unprocessed_alpha0.html").read_text(encoding="utf-8")
    assert "Metadata changed since the runs." in text and "valid_metadata.json changed since the run" in text
    assert "signal(s) whose marks differ from their scores" in text
    assert all("marks_disagree" not in r for r in page_data(copy / "report_valid_unprocessed_alpha0.html")["rows"])
    assert "changed since the run" in caplog.text
    untouched = _copy(skip_runs, tmp_path / "second", fix_metadata=False)
    write_html_report(sorted(untouched.glob("submission_*.csv")), untouched / "p.html", spectrograms=False)
    assert "Metadata changed" not in (untouched / "p.html").read_text(encoding="utf-8")


# --- row 3: a hostile .run.json ---------------------------------------------------------------

def _set(**fields):
    def change(record):
        record.update(fields)
    return change


def _config(**fields):
    def change(record):
        record["config"].update(fields)
    return change


HOSTILE = [  # (id, change to every .run.json, extra compute_csvs arguments, what the message names)
    ("split", _set(split="../../../../x"), [], "its 'split' is '../../../../x'"),
    ("tag", _set(tag="../../../../x"), [], "its 'tag' is '../../../../x'"),
    ("input", _set(input="../../../../x"), [], "its 'input' is '../../../../x'"),
    ("model", _set(model="../../../m"), [], "its 'model' is '../../../m'"),
    ("run", _set(run="../../x"), [], "its 'run' is '../../x'"),
    ("absolute split", _set(split="/tmp/x"), [], "its 'split' is '/tmp/x'"),
    ("dot split", _set(split=".."), [], "its 'split' is '..'"),
    ("config baseline", _config(baseline="../../../x"), ["--baseline", "../../../x"], "not a plain file name"),
    ("config alpha", _config(alpha="x", models="identity,NLR1"), [], "cannot name a page"),
]


@pytest.mark.parametrize("change, extra, message", [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_a_hostile_provenance_writes_nothing_outside_the_results_folder(skip_runs, tmp_path, caplog, change,
                                                                       extra, message):
    import compute_csvs

    copy = _copy(skip_runs, tmp_path)
    for path in copy.glob("*.run.json"):
        record = json.loads(path.read_text())
        change(record)
        path.write_text(json.dumps(record))
    for page in copy.glob("report_*"):
        shutil.rmtree(page) if page.is_dir() else page.unlink()
    before = _files_under(tmp_path)
    caplog.set_level("INFO")
    code = compute_csvs.main([str(copy), "--html", *extra])
    assert code == 2, caplog.text[-2000:]
    assert message in caplog.text
    assert "Traceback" not in caplog.text
    assert _files_under(tmp_path) == before  # no page, no _files folder, anywhere


# --- row 10: compute_csvs.py's outputs --------------------------------------------------------

def _devnull(folder: Path) -> Path:
    (folder / "null.json").symlink_to(os.devnull)
    return folder / "null.json"


def _fifo(folder: Path) -> Path:
    os.mkfifo(folder / "pipe.png")
    return folder / "pipe.png"


def _named_folder(name: str):
    def make(folder: Path) -> Path:
        (folder / name).mkdir()
        return folder / name
    return make


def _existing_csv(folder: Path) -> Path:
    return next((folder / "a" / "b" / "R").glob("submission_NLR1*.csv"))


def _read_only(folder: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only file system needs root (CI runs as root)")
    (folder / "ro").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(folder / "ro")], check=True)
    return folder / "ro"


def _immutable(folder: Path) -> Path:
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        pytest.skip("an immutable folder needs root and chattr (CI runs as root)")
    (folder / "frozen").mkdir()
    subprocess.run(["chattr", "+i", str(folder / "frozen")], check=True)
    return folder / "frozen"


OUTPUTS = [  # (id, option, the place (made in the test's folder), name under it or "", exit, message)
    ("json to /dev/null", "--json", _devnull, "", 2, "is not a regular file"),
    ("plot to a pipe", "--plot", _fifo, "", 2, "is not a regular file"),
    ("json over a CSV", "--json", _existing_csv, "", 2, "expected a file name ending .json, not .csv"),
    ("plot over a CSV", "--plot", _existing_csv, "", 2, "expected a file name ending .png"),
    ("html over a CSV", "--html", _existing_csv, "", 2, "exists and is not a folder"),
    ("html to a folder x.html", "--html", _named_folder("x.html"), "", 2, "is a folder; give a file name"),
    ("json to a folder", "--json", _named_folder("x.json"), "", 2, "is a folder"),
    ("plot to a folder", "--plot", _named_folder("c.png"), "", 2, "is a folder"),
    ("html on a read-only fs", "--html", _read_only, "page.html", 1, "Read-only file system"),
    ("json on a read-only fs", "--json", _read_only, "x.json", 1, "Read-only file system"),
    ("plot on a read-only fs", "--plot", _read_only, "c.png", 1, "Read-only file system"),
    ("html in an immutable folder", "--html", _immutable, "page.html", 1, "Operation not permitted"),
    ("html folder immutable", "--html", _immutable, "", 1, "Operation not permitted"),
]


@pytest.mark.parametrize("option, place, name, code, message", [c[1:] for c in OUTPUTS],
                         ids=[c[0] for c in OUTPUTS])
def test_compute_csvs_refuses_an_output_it_cannot_write(skip_runs, tmp_path, caplog, option, place, name,
                                                        code, message):
    import compute_csvs

    copy = _copy(skip_runs, tmp_path)
    for page in copy.glob("report_*"):
        shutil.rmtree(page) if page.is_dir() else page.unlink()
    target = place(tmp_path)
    try:
        target = target / name if name else target
        before = _files_under(tmp_path)
        csvs = {p: p.read_bytes() for p in copy.glob("*.csv")}
        caplog.set_level("INFO")
        assert compute_csvs.main([str(copy), option, str(target)]) == code, caplog.text[-2000:]
        assert message in caplog.text and option in caplog.text
        assert "Traceback" not in caplog.text
        assert _files_under(tmp_path) == before  # no page, no _files folder
        assert all(p.read_bytes() == data for p, data in csvs.items())
        assert os.path.realpath(os.devnull) == "/dev/null" and not Path(os.devnull).is_file()
    finally:
        if place is _read_only:
            subprocess.run(["umount", str(tmp_path / "ro")], check=False)
        if place is _immutable:
            subprocess.run(["chattr", "-i", str(tmp_path / "frozen")], check=False)


def test_a_page_that_fails_leaves_no_files_folder(skip_runs, tmp_path):
    copy = _copy(skip_runs, tmp_path)
    out = tmp_path / "page.html"
    out.mkdir()  # the page cannot be written over a folder
    with pytest.raises(OSError):
        write_html_report(sorted(copy.glob("submission_*.csv")), out, spectrograms=False)
    assert not (tmp_path / "page_files").exists()


@pytest.mark.parametrize("linked", ["page_files", "page_files/audio", "page_files/spec"])
def test_a_page_never_writes_through_a_linked_files_folder(skip_runs, tmp_path, linked):
    """A shared results folder whose page folder links elsewhere: nothing is written there."""
    from code.errors import DataError

    copy = _copy(skip_runs, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (copy / "page_files").mkdir()
    (copy / linked).rmdir() if (copy / linked).is_dir() else None
    (copy / linked).symlink_to(outside, target_is_directory=True)
    with pytest.raises(DataError, match="is a symbolic link"):
        write_html_report(sorted(copy.glob("submission_*.csv")), copy / "page.html")
    assert (copy / linked).is_symlink() and not any(outside.iterdir())
