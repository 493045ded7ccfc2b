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
    ("stack inner_folds null", _stack({"inner_folds": None}), "stack's inner_folds must be a whole number of at least 2, got None"),
    ("stack inner_folds text", _stack({"inner_folds": "x"}), "stack's inner_folds must be a whole number of at least 2, got 'x'"),
    ("stack inner_folds 2.9", _stack({"inner_folds": 2.9}), "stack's inner_folds must be a whole number of at least 2, got 2.9"),
    ("stack inner_folds true", _stack({"inner_folds": True}), "stack's inner_folds must be a whole number"),
    ("stack inner_folds 1", _stack({"inner_folds": 1}), "stack's inner_folds must be a whole number of at least 2, got 1"),
    ("stack members not a list", _stack({"members": "gbm"}), "stack's members must be a non-empty list, got 'gbm'"),
    ("stack members empty", _stack({"members": []}), "stack's members must be a non-empty list"),
    ("stack member not an object", _stack({"members": ["gbm"]}), "a stack member is {'predictor': NAME"),
    ("stack member key unknown", _stack({"members": [{"predictor": "gbm", "weight": 1}]}),
     "member 1 is {'predictor': 'gbm', 'weight': 1}"),
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
