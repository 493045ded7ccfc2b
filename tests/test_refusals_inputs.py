"""Options that name other things (a stack's members, a Whisper model path) refused before any
work, through ``main.py``, with one clear line naming the option (exit status 2) and no
traceback; and the stack's documented members accepted. Demo labels are SYNTHETIC: the runs
here prove mechanics, never quality."""

from __future__ import annotations

import json

import pytest

from code.evaluation.prediction.predictors import make_predictor
from tests.conftest import run_main
from tests.test_refusals import _prepared

DOCS_STACK = {"members": [{"predictor": "logistic-hl"}, {"predictor": "gbm", "settings": {"max_iter": 100}}]}


def _stack(options) -> list[str]:
    return ["--predictor", "stack", "--predictor-options", json.dumps(options)]


def _folder_with(*names):
    def make(tmp_path):
        folder = tmp_path / "model"
        folder.mkdir()
        for name in names:
            (folder / name).write_bytes(b"\0" * 16)
        return folder
    return make


def _file(name):
    def make(tmp_path):
        path = tmp_path / name
        path.write_bytes(b"\0" * 16)
        return path
    return make


# (id, extra arguments; a callable of tmp_path gives an --asr-models path, what the message says)
BAD_OPTIONS = [
    ("stack inner_folds null", _stack({"inner_folds": None}), "stack's inner_folds must be at least 2 (a whole number of folds), got None"),
    ("stack inner_folds text", _stack({"inner_folds": "x"}), "stack's inner_folds must be at least 2 (a whole number of folds), got 'x'"),
    ("stack inner_folds 2.9", _stack({"inner_folds": 2.9}), "stack's inner_folds must be at least 2 (a whole number of folds), got 2.9"),
    ("stack inner_folds true", _stack({"inner_folds": True}), "stack's inner_folds must be at least 2 (a whole number of folds)"),
    ("stack inner_folds 1", _stack({"inner_folds": 1}), "stack's inner_folds must be at least 2 (a whole number of folds), got 1"),
    ("stack members not a list", _stack({"members": "gbm"}), "stack's members must be a non-empty list, got 'gbm'"),
    ("stack members empty", _stack({"members": []}), "stack's members must be a non-empty list"),
    ("stack member not an object", _stack({"members": ["gbm"]}), "a stack member is {'predictor': NAME"),
    ("stack member key unknown", _stack({"members": [{"predictor": "gbm", "weight": 1}]}),
     "member 1 is {'predictor': 'gbm', 'weight': 1}"),
    ("stack member's predictor not a name", _stack({"members": [{"predictor": ["gbm"]}]}),
     "member 1 is {'predictor': ['gbm']}"),
    ("stack member unknown predictor", _stack({"members": [{"predictor": "gmb"}]}),
     "stack member 1 ('gmb'): unknown predictor 'gmb'; did you mean 'gbm'?"),
    ("stack member a stack", _stack({"members": [{"predictor": "gbm"}, {"predictor": "stack"}]}),
     "stack member 2 ('stack'): a stack cannot be its own member"),
    ("stack member setting unknown", _stack({"members": [{"predictor": "gbm", "settings": {"rate": 1}}]}),
     "stack member 1 ('gbm'): gbm has no setting ['rate']"),
    ("stack member logistic with settings", _stack({"members": [{"predictor": "logistic", "settings": {"k": 1}}]}),
     "stack member 1 ('logistic'): logistic has no settings"),
    ("stack member setting nested", _stack({"members": [{"predictor": "gbm", "settings": {"max_iter": [1]}}]}),
     "stack member 1 ('gbm'): setting 'max_iter' must be a number, a string, true/false or null, got [1]"),
    ("stack member settings not an object", _stack({"members": [{"predictor": "gbm", "settings": 5}]}),
     "stack member 1 ('gbm'): 'settings' must be a JSON object"),
    ("stack member feature not a name", _stack({"members": [{"predictor": "logistic", "feature": 3}]}),
     "stack member 1 ('logistic'): 'feature' must be a column name or null, got 3"),
    ("stack member setting refused by the member", _stack({"members": [{"predictor": "gbm", "settings": {"max_iter": -1}}]}),
     "the stack predictor refuses them: The 'max_iter' parameter"),
    ("members given to gbm", ["--predictor", "gbm", "--predictor-options", json.dumps(DOCS_STACK)],
     "gbm has no setting ['members']"),
]


@pytest.mark.parametrize("case,extra,expected", BAD_OPTIONS, ids=[b[0] for b in BAD_OPTIONS])
def test_bad_option_is_refused_before_work_without_traceback(tmp_path, caplog, capsys, case, extra, expected):
    root = _prepared(tmp_path, None)
    results = tmp_path / "results"
    argv = ["--data-root", root, "--results-dir", results, "--stages", "1", *extra]
    code, text = run_main(argv, caplog, capsys)
    assert code == 2, text[-3000:]
    assert expected in text, text[-3000:]
    assert "Traceback" not in text
    assert not (results / "NLR1").exists()  # refused before Stage 1


@pytest.mark.parametrize("value", [2, 3, 3.0])
def test_whole_inner_folds_are_accepted(value):
    assert make_predictor("stack", options={"settings": {"inner_folds": value}}).settings["inner_folds"] == int(value)


def test_members_are_built_with_their_own_settings():
    stack = make_predictor("stack", options={"settings": DOCS_STACK})
    assert [m["predictor"] for m in stack.settings["members"]] == ["logistic-hl", "gbm"]


@pytest.mark.slow
def test_the_docs_stack_runs_on_the_demo_from_the_command_line_and_from_a_file(tmp_path, caplog, capsys):
    """The example of docs/features-and-predictors.md, as JSON text and as a JSON file: both
    are the same run (one submission name), fitted with those members."""
    results = tmp_path / "results"
    code, text = run_main(["--results-dir", results, *_stack(DOCS_STACK)], caplog, capsys)
    assert code == 0, text[-3000:]
    written = sorted(p.name for p in results.glob("submission_NLR1-stack-*_valid.csv"))
    assert len(written) == 1
    options = tmp_path / "stack.json"
    options.write_text(json.dumps(DOCS_STACK))
    code, text = run_main(["--results-dir", results, "--predictor", "stack", "--predictor-options", options],
                          caplog, capsys)
    assert code == 0, text[-3000:]
    assert sorted(p.name for p in results.glob("submission_NLR1-stack-*_valid.csv")) == written
    params = json.loads((results / written[0].replace(".csv", ".predictor.json")).read_text())
    members = params["members"]
    assert [m["predictor"] for m in members] == ["logistic-hl", "gbm"]
    assert members[1]["params"]["settings"]["max_iter"] == 100


# An ASR model path: a model's files are looked for by name, before any work and without reading
# anything under the path (a 1 GB file there would take seconds to hash; the digest memory stays absent).
def _non_model_folder(*names):
    def make(tmp_path):
        folder = tmp_path / "not_a_model"
        folder.mkdir()
        with open(folder / "big.bin", "wb") as f:
            f.truncate(1 << 30)  # sparse: costs no disk, would cost seconds to hash
        for name in names:
            (folder / name).write_text("{}")
        return folder
    return make


def _model_file(name):
    def make(tmp_path):
        (tmp_path / name).write_bytes(b"\0" * 64)
        return tmp_path / name
    return make


# (id, engine, the path's maker, how it is given, what the message says)
BAD_MODEL_PATHS = [
    ("folder of other files, faster-whisper", "faster-whisper", _non_model_folder(), "--asr-models",
     "is a folder but not a faster-whisper model: it has no model.bin and no config.json"),
    ("folder with config.json only", "faster-whisper", _non_model_folder("config.json"), "--asr-model",
     "is a folder but not a faster-whisper model: it has no model.bin ("),
    ("a .pt file to faster-whisper", "faster-whisper", _model_file("tiny.pt"), "--asr-model",
     "is a file; faster-whisper reads a model folder"),
    ("a folder to openai-whisper", "openai-whisper", _non_model_folder("model.bin", "config.json"), "--asr-models",
     "is a folder; openai-whisper reads a checkpoint file ending in .pt"),
    ("a .bin file to openai-whisper", "openai-whisper", _model_file("model.bin"), "--asr-model",
     "is a .bin file; openai-whisper reads a checkpoint file ending in .pt"),
]


@pytest.mark.parametrize("case,engine,make,option,expected", BAD_MODEL_PATHS, ids=[b[0] for b in BAD_MODEL_PATHS])
def test_a_path_that_is_no_model_is_refused_at_once_without_reading_it(tmp_path, caplog, capsys, monkeypatch,
                                                                       case, engine, make, option, expected):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = make(tmp_path)
    root = _prepared(tmp_path, None)
    results = tmp_path / "results"
    value = f"tiny.en,{path}" if option == "--asr-models" else str(path)
    argv = ["--data-root", root, "--results-dir", results, "--stages", "1", "--asr-engine", engine, option, value]
    code, text = run_main(argv, caplog, capsys)
    assert code == 2, text[-3000:]
    assert f"{option} {str(path)!r} {expected}" in text, text[-3000:]
    assert "Traceback" not in text
    assert not (results / "NLR1").exists()  # refused before Stage 1
    assert not (tmp_path / "cache").exists()  # nothing under the path was hashed


def test_real_model_paths_are_accepted():
    from code.evaluation.asr.engines import _bundled_faster_whisper_model
    from code.evaluation.asr.settings import model_path_problem
    from tests.test_official_route import SHARED_CHECKPOINT

    bundled = _bundled_faster_whisper_model("tiny.en")
    assert bundled and model_path_problem("faster-whisper", bundled) is None
    assert model_path_problem("faster-whisper", "tiny.en") is None  # a name: ensure_available's to check
    if SHARED_CHECKPOINT.is_file():
        assert model_path_problem("openai-whisper", str(SHARED_CHECKPOINT)) is None


def _digest_files(tmp_path, n):
    from code.keys import remembered_digest

    folder = tmp_path / "files"
    folder.mkdir(exist_ok=True)
    for i in range(n):
        path = folder / f"f{i:04d}.bin"
        if not path.exists():
            path.write_bytes(str(i).encode())
        remembered_digest(path)


def test_the_digest_memory_appends_one_line_per_file_and_is_not_rewritten(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    memory = tmp_path / "cache" / "cadenza-clip" / "file_digests.jsonl"
    _digest_files(tmp_path, 1)
    before, inode = memory.read_text(), memory.stat().st_ino
    _digest_files(tmp_path, 3)  # f0000 is remembered: two new lines
    after = memory.read_text()
    assert memory.stat().st_ino == inode and after.startswith(before)
    assert len(after.splitlines()) == 3


def test_the_digest_memory_stays_bounded(tmp_path, monkeypatch):
    from code import keys

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(keys, "DIGEST_MEMORY_MAX_BYTES", 4000)
    _digest_files(tmp_path, 300)
    memory = tmp_path / "cache" / "cadenza-clip" / "file_digests.jsonl"
    lines = memory.read_text().splitlines()
    assert memory.stat().st_size <= 4000 and 5 < len(lines) < 300
    assert "f0299.bin" in lines[-1]  # the newest is kept
    assert json.loads(lines[-1])[1] == keys.file_digest(tmp_path / "files" / "f0299.bin")


def test_a_run_whose_provenance_names_a_non_model_folder_is_refused_without_reading_it(tmp_path, monkeypatch):
    """A results folder is untrusted: a ``.run.json`` naming ``/tmp``-like folder as its Whisper
    model would have every file under it hashed when the page is made."""
    from code.errors import DataError
    from code.evaluation.outputs.report_signals import load_run

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = _non_model_folder()(tmp_path)
    csv = tmp_path / "results" / "submission_NLR1_valid.csv"
    csv.parent.mkdir()
    csv.write_text("signal_ID,intelligibility_score\nS1,50.0\n")
    csv.with_suffix(".run.json").write_text(json.dumps(
        {"run": "NLR1", "model": "NLR1", "split": "valid", "config": {"asr_model": str(folder)}}))
    with pytest.raises(DataError, match=f"its Whisper model {str(folder)!r} is a folder but not a faster-whisper model"):
        load_run(csv)
    assert not (tmp_path / "cache").exists()
