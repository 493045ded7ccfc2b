"""Audio the pipeline cannot use, found before any work (exit 2, one clear paragraph, no
traceback): unprocessed audio too quiet for the hearing-loss simulator, a symbolic link
loop, a corrupt or missing unprocessed reference Stage 2 compares with; and, once Stage 1
runs, a model whose output is of the wrong type or shape, non-finite, or too quiet for the
simulator (named with the model and signal). ``--skip-invalid`` leaves the bad records out.

The simulator's rule itself (``code.data.levels``) is checked against the simulators here
too: just under its threshold they return NaN, just over it they do not."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import soundfile as sf

from code.data.audio import read_audio
from code.data.levels import ACTIVE_FLOOR_DBFS, LEVEL_WINDOW_S, simulator_level_problem
from code.data.validation import validate_split
from code.models import hearing_aid_models
from tests.conftest import DEMO_ROOT, demo_records, make_clip_root, run_main

SPLIT = "cadenza_data/valid"


def _path(root, records, kind="unprocessed", i=0):
    name = records[i]["signal"] + ("_unproc" if kind == "unprocessed" else "")
    return root / SPLIT / kind / f"{name}.flac"


def _scaled(peak_dbfs: float, kind: str = "unprocessed"):
    """The first record's audio of ``kind`` rescaled to a peak of ``peak_dbfs``, as 24-bit FLAC."""
    def change(root, records):
        path = _path(root, records, kind)
        audio, rate = sf.read(path, dtype="float64")
        sf.write(path, audio / np.max(np.abs(audio)) * 10 ** (peak_dbfs / 20), rate, subtype="PCM_24")
    return change


def _lsb_noise(root, records):
    """16-bit noise of -1, 0 or +1 least significant bit, 2 s long."""
    noise = np.random.default_rng(0).integers(-1, 2, size=(88200, 2)).astype(np.int16)
    sf.write(_path(root, records), noise, 44100, subtype="PCM_16")


def _loop(kind):
    def change(root, records):
        path = _path(root, records, kind)
        path.unlink()
        path.symlink_to(path.name)  # points at itself
    return change


def _truncated_reference(root, records):
    path = _path(root, records)
    path.write_bytes(path.read_bytes()[:200])


def _no_unprocessed(root, records):
    shutil.rmtree(root / SPLIT / "unprocessed")


def _one_unprocessed_missing(root, records):
    _path(root, records).unlink()


def _train_without_unprocessed(root, records):
    make_clip_root(root, "train", demo_records("train")[:6])
    shutil.rmtree(root / "cadenza_data/train/unprocessed")


UNPROCESSED = ["--input", "unprocessed"]
STAGE2 = ["--stages", "1,2", "--fit-split", "valid", "--folds", "2"]  # refused before Stage 1

# (id, data change, extra arguments, what the message says)
BAD_AUDIO = [
    ("unprocessed audio at -75 dBFS peak", _scaled(-75), UNPROCESSED,
     "audio too quiet for the hearing-loss simulator: the loudest 10 ms frame of its left channel is at"),
    ("unprocessed audio of 16-bit 1-LSB noise", _lsb_noise, UNPROCESSED,
     "under the -80 dBFS that MSBG's level calibration needs"),
    ("signal a symlink loop", _loop("signals"), [], "is a symbolic link that leads to no file (a loop"),
    ("unprocessed a symlink loop", _loop("unprocessed"), UNPROCESSED, "is a symbolic link that leads to no file"),
    ("corrupt unprocessed reference, --input signals", _truncated_reference, STAGE2,
     "its unprocessed reference (Stage 2 compares with it): cannot decode audio file"),
    ("unprocessed reference a symlink loop, --input signals", _loop("unprocessed"), STAGE2,
     "its unprocessed reference (Stage 2 compares with it): audio file"),
    ("--haspi on a split without unprocessed audio", _no_unprocessed, [*STAGE2, "--haspi"],
     "--haspi compares each signal with its unprocessed audio, and split 'valid' has none"),
    ("--haspi with one reference missing", _one_unprocessed_missing, [*STAGE2, "--haspi"],
     "--haspi needs its unprocessed reference, which is missing"),
    ("--haspi fitting on a split without unprocessed audio", _train_without_unprocessed,
     ["--stages", "1,2", "--haspi", "--fit-split", "train", "--folds", "2"],
     "fit split 'train' lacks it for 6 of its 6 labelled record(s)"),
]


def _prepared(tmp_path, change):
    records = demo_records("valid")[:3]
    root = make_clip_root(tmp_path / "data", "valid", records)
    if change is not None:
        change(root, records)
    return root, records


@pytest.mark.parametrize("case,change,extra,expected", BAD_AUDIO, ids=[b[0] for b in BAD_AUDIO])
def test_bad_audio_is_refused_before_work_without_traceback(tmp_path, caplog, capsys, case, change,
                                                            extra, expected):
    root, records = _prepared(tmp_path, change)
    results = tmp_path / "results"
    argv = ["--data-root", root, "--results-dir", results, "--stages", "1", "--jobs", "1", *extra]
    code, text = run_main(argv, caplog, capsys)
    assert code == 2, text[-3000:]
    assert expected in text, text[-3000:]
    assert "Traceback" not in text
    whole_split = case.startswith(("--haspi on a split", "--haspi fitting"))
    assert whole_split or f"signal {records[0]['signal']}" in text  # the record is named
    assert not any(p.name.startswith("NLR1") for p in results.glob("*"))  # refused before Stage 1


# (id, data change, validate_split arguments, what the listed reason says)
SKIPPED = [
    ("unprocessed audio at -75 dBFS peak", _scaled(-75), {"input_kinds": ("unprocessed",)},
     "too quiet for the hearing-loss simulator"),
    ("signal a symlink loop", _loop("signals"), {}, "symbolic link that leads to no file"),
    ("corrupt unprocessed reference", _truncated_reference, {"references": "check"},
     "its unprocessed reference (Stage 2 compares with it)"),
    ("--haspi with one reference missing", _one_unprocessed_missing, {"references": "require"},
     "--haspi needs its unprocessed reference"),
]


@pytest.mark.parametrize("case,change,kwargs,expected", SKIPPED, ids=[s[0] for s in SKIPPED])
def test_skip_invalid_leaves_the_record_out_and_lists_it(tmp_path, case, change, kwargs, expected):
    root, records = _prepared(tmp_path, change)
    data = validate_split(root, "valid", skip_invalid=True, **kwargs)
    assert [r["signal"] for r in data.records] == [r["signal"] for r in records[1:]]
    assert len(data.skipped) == 1 and expected in str(data.skipped[0])


def test_a_reference_missing_without_haspi_is_no_problem(tmp_path):
    root, records = _prepared(tmp_path, _one_unprocessed_missing)
    assert len(validate_split(root, "valid", references="check").records) == 3


def test_quiet_signals_input_is_no_problem(tmp_path):
    """Without the simulator (``--input signals``) quiet audio is scored as it is."""
    root, records = _prepared(tmp_path, _scaled(-75, "signals"))
    assert len(validate_split(root, "valid").records) == 3


def test_quiet_audio_skipped_then_stage_1_runs(tmp_path, caplog, capsys):
    root, records = _prepared(tmp_path, _scaled(-75))
    results = tmp_path / "results"
    argv = ["--data-root", root, "--results-dir", results, "--stages", "1", "--jobs", "1",
            *UNPROCESSED, "--skip-invalid"]
    code, text = run_main(argv, caplog, capsys)
    assert code == 0, text[-3000:]
    assert f"skipping invalid record: signal {records[0]['signal']}: audio too quiet" in text
    heard = sorted((results / "NLR1" / "from_unprocessed" / "heard").glob("*.wav"))
    assert [p.stem for p in heard] == sorted(r["signal"] for r in records[1:])
    for path in heard:
        assert np.all(np.isfinite(sf.read(path)[0]))


# (id, model standing in for identity, extra arguments, what the message says, the record it names)
BAD_MODELS = [  # the first record's listener has no loss (no simulator): the second is named
    ("output at -80 dB", lambda s, a: s * 1e-4, UNPROCESSED,
     "model identity's output is too quiet for the hearing-loss simulator", 1),
    ("wrong shape", lambda s, a: s[:, :1], [], "model identity returned shape", 0),
    ("NaN output", lambda s, a: s * float("nan"), [], "model identity output has NaN or infinite samples", 0),
    ("a list, not a tensor", lambda s, a: s.tolist(), [], "model identity returned list", 0),
]


@pytest.mark.parametrize("case,model,extra,expected,named", BAD_MODELS, ids=[b[0] for b in BAD_MODELS])
def test_a_bad_model_output_is_named_without_traceback(tmp_path, caplog, capsys, monkeypatch, case,
                                                       model, extra, expected, named):
    monkeypatch.setitem(hearing_aid_models.MODELS, "identity", model)
    root, records = _prepared(tmp_path, None)
    argv = ["--data-root", root, "--results-dir", tmp_path / "results", "--stages", "1", "--jobs", "1",
            "--model", "identity", *extra]
    code, text = run_main(argv, caplog, capsys)
    assert code == 2, text[-3000:]
    assert expected in text and records[named]["signal"] in text, text[-3000:]
    assert "Traceback" not in text
    if case == "output at -80 dB":
        assert records[0]["hearing_loss"] == "No Loss" and records[1]["hearing_loss"] != "No Loss"
        assert f"signal {records[0]['signal']}" not in text  # passed through unsimulated


def _first_unprocessed() -> np.ndarray:
    records = demo_records("valid")
    path = DEMO_ROOT / SPLIT / "unprocessed" / f"{records[0]['signal']}_unproc.flac"
    return read_audio(path)[:, :22050].astype(np.float64)


@pytest.mark.parametrize("simulator", ["fast", "reference", "torch"])
def test_the_rule_is_the_simulators_own(simulator):
    """Scaled so its loudest 10 ms frame sits 0.05 dB over or under -80 dBFS RMS, the same
    audio is simulated (finite) or refused by the rule (and the simulator returns NaN)."""
    from code.hearing_loss.simulator import simulate_hearing_loss
    from code.models.audiograms import DEFAULT_AUDIOGRAMS

    audio = _first_unprocessed()
    win = round(LEVEL_WINDOW_S * 44100)
    frames = audio[:, : audio.shape[1] // win * win].reshape(2, -1, win)
    loudest_db = 10 * np.log10(np.max(np.mean(frames**2, axis=-1), axis=-1))  # per channel
    for offset, fine in ((0.05, True), (-0.05, False)):
        scaled = audio * 10 ** ((ACTIVE_FLOOR_DBFS + offset - loudest_db) / 20)[:, None]
        assert (simulator_level_problem(scaled, 44100) is None) == fine
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # pyclarity's 0/0
            heard = simulate_hearing_loss(scaled, DEFAULT_AUDIOGRAMS["Mild"], 44100, simulator=simulator,
                                          device="cpu")
        assert bool(np.all(np.isfinite(heard))) == fine, (simulator, offset)


def test_a_digitally_silent_ear_is_no_problem():
    audio = _first_unprocessed()
    audio[1] = 0.0
    assert simulator_level_problem(audio, 44100) is None
    audio[0] *= 1e-5
    assert "left channel" in simulator_level_problem(audio, 44100)


def test_the_window_is_pyclaritys():
    from clarity.evaluator.msbg.msbg_utils import WIN_SECS

    assert LEVEL_WINDOW_S == WIN_SECS


def test_quietness_is_remembered_with_the_audio_check(tmp_path):
    """The audio-check cache keeps whether a file is too quiet: a rerun that decodes nothing
    still refuses it."""
    root, records = _prepared(tmp_path, _scaled(-75))
    cache = tmp_path / "checks.json"
    for _ in range(2):
        data = validate_split(root, "valid", input_kinds=("unprocessed",), skip_invalid=True,
                              check_cache=cache)
        assert [p.signal for p in data.skipped] == [records[0]["signal"]]
    assert json.loads(cache.read_text())["files"]  # the second pass read them from here
