"""Bad input refused before any heavy work, with one clear paragraph (exit status 2) and no
traceback; ``--skip-invalid`` leaves such records out and lists them. Every bad-input kind
the project knows goes through ``main.py`` here (``BAD_INPUTS``).

Environment faults (a full or read-only file system) and SIGTERM: tests/test_environment_faults.py."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import soundfile as sf

from code.data.validation import validate_split
from code.errors import DataError
from tests.conftest import demo_records, make_clip_root, run_main

FREQUENCIES = [125, 250, 500, 750, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 10000, 12000, 14000, 16000]


def _audiograms(levels, frequencies=FREQUENCIES, category="Mild") -> str:
    return json.dumps({category: {"levels": levels, "frequencies": frequencies}})


def _records(mutate):
    def change(root, records):
        (root / "cadenza_data/metadata/valid_metadata.json").write_text(json.dumps(mutate(records)))
    return change


def _first(**fields):
    return _records(lambda rs: [{**rs[0], **fields}] + rs[1:])


def _signal_file(root, records, i=0):
    return root / "cadenza_data/valid/signals" / f"{records[i]['signal']}.flac"


def _one_sample(root, records):
    sf.write(_signal_file(root, records), np.zeros((1, 2)), 16000)


def _truncated(root, records):
    path = _signal_file(root, records)
    path.write_bytes(path.read_bytes()[:200])


def _nested_metadata(root, records):
    (root / "cadenza_data/metadata/valid_metadata.json").write_text("[" * 100_000 + "]" * 100_000)


def _results_file(root, records):
    (root / "a_file").write_text("not a folder")


HUGE = "x" * 1_000_000

# (id, data change or None, extra arguments (ROOT: the data root), what the message says)
BAD_INPUTS = [
    # audiograms (--audiograms)
    ("audiogram level NaN", None, ["--audiograms", _audiograms(["NaN"] + [0] * 14).replace('"NaN"', "NaN")],
     "levels must be finite numbers, got nan"),
    ("audiogram level 1e9", None, ["--audiograms", _audiograms([1e9] * 15)], "outside -10..120 dB HL"),
    ("audiogram making NLR1 NaN", None, ["--audiograms", _audiograms([1000] * 15)], "outside -10..120 dB HL"),
    ("audiogram categories' frequencies differ", None,
     ["--audiograms", json.dumps({"Mild": {"levels": [0, 0], "frequencies": [250, 500]},
                                  "Moderate": {"levels": [0, 0, 0], "frequencies": [250, 500, 1000]}})],
     "give every category the same frequencies"),
    ("audiogram frequencies differ from the defaults", None,
     ["--audiograms", _audiograms([10, 20], [250, 500])], "the audiogram table mixes frequency sets"),
    ("audiogram not an object", None, ["--audiograms", '{"Mild": [1, 2]}'], "must be an object"),
    ("audiogram levels not numbers", None, ["--audiograms", _audiograms(["10"] * 15)],
     "levels must be a non-empty list of numbers"),
    ("audiogram JSON nested deeply", None, ["--audiograms", '{"Mild": ' + "[" * 100_000 + "]" * 100_000 + "}"],
     "nests its JSON too deeply"),
    ("audiogram category unknown", None, ["--audiograms", '{"Severe": {}}'], "unknown category 'Severe'"),
    ("audiogram without HAAQI's 6000 Hz", None,
     ["--input", "unprocessed", "--models", "identity,NLR1", "--audiograms", json.dumps(
         {c: {"levels": [10, 20, 30, 40, 50, 60], "frequencies": [125, 250, 500, 1000, 2000, 4000]}
          for c in ("No Loss", "Mild", "Moderate")})],
     "HAAQI needs an audiogram spanning 250..6000 Hz"),
    # music quality in the hearing-aid report
    ("quality metric unknown", None, ["--quality", "haqi"], "--quality must be one of ['haaqi', 'none']"),
    ("alpha outside 0..1", None, ["--alpha", "1.5"], "--alpha must be within 0..1"),
    # other options
    ("gbm learning rate -5", None, ["--predictor", "gbm", "--predictor-options", '{"learning_rate": -5}'],
     "the gbm predictor refuses them: The 'learning_rate' parameter"),
    ("predictor options nested", None, ["--predictor", "gbm", "--predictor-options", '{"max_iter": [1]}'],
     "must be a number, a string"),
    ("predictor option unknown", None, ["--predictor", "gbm", "--predictor-options", '{"rate": 1}'],
     "gbm has no setting ['rate']"),
    ("sample rate 0", None, ["--sample-rate", "0"], "--sample-rate must be a rate in Hz"),
    ("sample rate negative", None, ["--sample-rate", "-44100"], "--sample-rate must be a rate in Hz"),
    ("results folder is a file", _results_file, ["--results-dir", "ROOT/a_file"], "is a file; expected a folder"),
    ("unknown model", None, ["--model", "NLR9"], "unknown model 'NLR9'"),
    ("bad shard", None, ["--shard", "5/2"], "1 <= K <= N"),
    # metadata
    ("signal ID of 300 characters", _first(signal="s" * 300), [], "too long to name a file: 300 bytes"),
    ("signal ID with a NUL", _first(signal="ab\x00cd"), [], "holds a control character ('\\x00' at position 2)"),
    ("signal ID a path", _first(signal="../../etc/passwd"), [], "is not a plain file name"),
    ("duplicate signal ID", _records(lambda rs: rs + [rs[0]]), [], "duplicate signal ID"),
    ("prompt of punctuation only", _first(prompt="?!... ,", n_words=2), [], "has no words"),
    ("empty prompt", _first(prompt=" "), [], "empty prompt"),
    ("hearing_loss of 1,000,000 characters", _first(hearing_loss=HUGE), [], "... (1000000 characters)"),
    ("unknown hearing_loss", _first(hearing_loss="Profound"), [], "unknown hearing_loss 'Profound'"),
    ("correctness out of range", _first(correctness=1.5), [], "correctness 1.5 is not a number in 0..1"),
    ("n_words not a number", _first(n_words="x"), [], "n_words 'x' is not a positive integer"),
    ("metadata JSON nested deeply", _nested_metadata, [], "nests its JSON too deeply"),
    # audio
    ("audio of 1 sample", _one_sample, [], "too short to process: 1 sample(s) (0.000 s at 16000 Hz); at least 0.1 s"),
    ("audio truncated", _truncated, [], "cannot decode"),
    ("audio missing", lambda root, rs: _signal_file(root, rs).unlink(), [], "audio file not found"),
]


def _prepared(tmp_path, change):
    records = demo_records("valid")[:3]
    root = make_clip_root(tmp_path / "data", "valid", records)
    if change is not None:
        change(root, records)
    return root


@pytest.mark.parametrize("case,change,extra,expected", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_refused_before_work_without_traceback(tmp_path, caplog, capsys, case, change,
                                                            extra, expected):
    root = _prepared(tmp_path, change)
    results = tmp_path / "results"
    extra = [str(a).replace("ROOT", str(root)) for a in extra]
    argv = ["--data-root", root, "--results-dir", results, "--stages", "1", *extra]
    code, text = run_main(argv, caplog, capsys)
    assert code == 2, text[-3000:]
    assert expected in text, text[-3000:]
    assert "Traceback" not in text
    assert max(len(line) for line in text.splitlines()) < 2000  # no value is quoted whole
    assert not (results / "NLR1").exists()  # refused before Stage 1


def _skipped(tmp_path, change) -> tuple[list[str], list[str]]:
    root = _prepared(tmp_path, change)
    data = validate_split(root, "valid", skip_invalid=True)
    return [r["signal"] for r in data.records], [str(p) for p in data.skipped]


SKIPPED = [
    ("signal ID of 300 characters", _first(signal="s" * 300), "too long to name a file"),
    ("signal ID with a NUL", _first(signal="ab\x00cd"), "control character"),
    ("audio of 1 sample", _one_sample, "too short to process"),
    ("prompt of punctuation only", _first(prompt="?!... ,", n_words=2), "has no words"),
]


@pytest.mark.parametrize("case,change,expected", SKIPPED, ids=[s[0] for s in SKIPPED])
def test_skip_invalid_leaves_the_record_out_and_lists_it(tmp_path, case, change, expected):
    kept, skipped = _skipped(tmp_path, change)
    assert kept == [r["signal"] for r in demo_records("valid")[1:3]]
    assert len(skipped) == 1 and expected in skipped[0]


def test_a_signal_far_longer_than_its_reference_is_warned_about(tmp_path, caplog):
    root = _prepared(tmp_path, None)
    records = demo_records("valid")[:3]
    sf.write(_signal_file(root, records), np.full((44100 * 10, 2), 0.1), 44100)  # 10 s, reference ~2.5 s
    with caplog.at_level(logging.WARNING):
        data = validate_split(root, "valid")
    assert len(data.records) == 3
    assert f"signal {records[0]['signal']}: audio is 10.0 s long, its unprocessed reference" in caplog.text
    assert "STOI compares only the first" in caplog.text
    assert "audio is" not in caplog.text.replace(records[0]["signal"] + ": audio is", "")  # only that one


def test_a_flood_of_junk_records_lists_the_first_50_and_counts_the_rest(tmp_path, caplog):
    junk = [{"signal": f"junk{i:04d}", "prompt": "some words", "hearing_loss": "Mild"} for i in range(300)]
    root = make_clip_root(tmp_path / "data", "valid", demo_records("valid")[:1] + junk)
    with pytest.raises(DataError) as err:
        validate_split(root, "valid")
    message = str(err.value)
    assert "300 problem(s)" in message and "... and 250 more" in message
    listed = [line for line in message.splitlines() if line.startswith("  signal junk")]
    assert len(listed) == 50
    path = str(root / "cadenza_data/valid/signals/junk0000.flac")
    assert listed[0] == f"  signal junk0000: audio file not found: {path}"  # the path once
    with caplog.at_level(logging.WARNING):
        data = validate_split(root, "valid", skip_invalid=True)
    assert len(data.skipped) == 300 and len(data.records) == 1
    assert caplog.text.count("skipping invalid record") == 50
    assert "... and 250 more invalid record(s) skipped" in caplog.text


def test_debug_keeps_the_traceback_for_a_bug_report(tmp_path, caplog, capsys):
    root = _prepared(tmp_path, _nested_metadata)
    argv = ["--data-root", root, "--results-dir", tmp_path / "results", "--stages", "1"]
    code, text = run_main(argv, caplog, capsys)
    assert code == 2 and "Traceback" not in text
    code, text = run_main([*argv, "--debug"], caplog, capsys)
    assert code == 2 and "nests its JSON too deeply" in text and "Traceback" in text


def test_run_called_directly_refuses_a_nan_audiogram_too(tmp_path):
    import dataclasses

    from code.errors import ConfigError
    from code.pipeline import run
    from main import CONFIG

    root = _prepared(tmp_path, None)
    cfg = dataclasses.replace(CONFIG, data_root=str(root), results_dir=str(tmp_path / "results"),
                              audiograms={"Mild": {"levels": [float("nan")] * 15, "frequencies": FREQUENCIES}})
    with pytest.raises(ConfigError, match="levels must be finite numbers"):
        run(cfg)
    assert not (tmp_path / "results").exists()
