"""Options that name what a run writes or reads, refused while the command line is read
(exit 2, ``main.py: error: ...``, no traceback, nothing written): a ``--tag`` or
``--team-id`` too long for a file name, an empty item in ``--models`` or ``--asr-models``,
a model listed twice (3,000 times ``identity`` is refused, not run 3,000 times)."""

from __future__ import annotations

import pytest

from code.config import DEFAULTS, check_config
from code.config_lists import MAX_NAME_BYTES
from tests.conftest import run_main

MANY_IDENTITY = ",".join(["identity"] * 3000)

# (id, arguments, what the message says)
BAD_OPTIONS = [
    ("--tag of 300 characters", ["--tag", "x" * 300],
     "--tag must be at most 64 bytes long (it becomes part of the run's file names), got 300"),
    ("--team-id of 300 characters", ["--team-id", "T" * 300], "--team-id must be at most 64 bytes long"),
    ("--tag of 33 two-byte letters", ["--tag", "é" * 33], "got 66"),
    ("--asr-models with an empty item", ["--asr-models", "tiny.en,,tiny.en"],
     "--asr-models has an empty item in 'tiny.en,,tiny.en'"),
    ("--asr-models of a comma", ["--asr-models", ","], "--asr-models has an empty item in ','"),
    ("--asr-models with a trailing comma", ["--asr-models", "tiny.en,"], "has an empty item"),
    ("--models with an empty item", ["--models", "identity,,NLR1"], "--models has an empty item"),
    ("--models with identity 3000 times", ["--models", MANY_IDENTITY],
     "--models lists a model twice: 'identity' 3000 times (3000 items, 1 different); give each once: "
     "--models 'identity'"),
    ("--models with one repeated", ["--models", "identity,NLR1,identity"],
     "give each once: --models 'identity,NLR1'"),
    ("--asr-models with one repeated", ["--asr-models", "tiny.en,tiny.en"],
     "--asr-models lists a model twice: 'tiny.en' 2 times"),
]


@pytest.mark.parametrize("case,extra,expected", BAD_OPTIONS, ids=[b[0] for b in BAD_OPTIONS])
def test_a_bad_name_option_is_refused_at_once(tmp_path, caplog, capsys, case, extra, expected):
    results = tmp_path / "results"
    code, text = run_main(["--results-dir", results, *extra], caplog, capsys)
    assert code == 2, text[-3000:]
    assert expected in text, text[-3000:]
    assert "Traceback" not in text
    assert max(len(line) for line in text.splitlines()) < 2000  # no value is quoted whole
    assert not results.exists()


@pytest.mark.parametrize("fields", [
    {"tag": "t" * MAX_NAME_BYTES}, {"team_id": "T" * MAX_NAME_BYTES},
    {"models": "identity,NLR1"}, {"asr_models": "tiny.en"}, {"models": " identity , NLR1 "},
])
def test_names_within_the_limits_pass(fields):
    import dataclasses

    assert check_config(dataclasses.replace(DEFAULTS, **fields)) is None
