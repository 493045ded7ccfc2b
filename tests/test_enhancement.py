"""Stage 1 caching: code changes recompute, damaged outputs are redone, stale audio is found."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
import torch

from code.data.audio import read_audio
from code.data.validation import validate_split
from code.enhancement import enhance_split
from code.enhancement_plan import DAMAGED, FORCED, NEW, check_outputs_current, output_dir
from code.keys import code_digest
from code.models import hearing_aid_models
from code.models.audiograms import DEFAULT_AUDIOGRAMS
from code.models.hearing_aid_models import model_settings
from code.resources import available_cpus


def quieter(signals, audiogram_levels):
    return signals * 0.5


def quieter_edited(signals, audiogram_levels):
    return signals * 0.25


def _split(demo_root, n=3):
    split = validate_split(demo_root, "valid", check_audio=False)
    return dataclasses.replace(split, records=split.records[:n])


def _run(split, tmp_path, model="identity", **kw):
    return enhance_split(split, model_name=model, audiograms=DEFAULT_AUDIOGRAMS,
                         results_dir=tmp_path, jobs=1, **kw)


def test_code_digest_follows_the_source():
    assert code_digest(quieter) == code_digest(quieter)
    assert code_digest(quieter) != code_digest(quieter_edited)
    namespace_a, namespace_b = {}, {}
    exec("def f(x, a):\n    return x * 2\n", namespace_a)  # no source file: bytecode is hashed
    exec("def f(x, a):\n    return x * 3\n", namespace_b)
    assert code_digest(namespace_a["f"]) != code_digest(namespace_b["f"])


def test_function_model_settings_hold_no_address():
    settings = model_settings(quieter)
    assert settings["callable"].endswith("test_enhancement.quieter")
    assert "0x" not in str(settings)


def test_editing_a_model_recomputes(demo_root, tmp_path, monkeypatch, caplog):
    split = _split(demo_root)
    monkeypatch.setitem(hearing_aid_models.MODELS, "quieter", quieter)
    first = _run(split, tmp_path, "quieter")
    assert (first.done, first.reused, first.reasons[NEW]) == (3, 0, 3)
    again = _run(split, tmp_path, "quieter")
    assert (again.done, again.reused) == (0, 3)  # a function model is reusable
    monkeypatch.setitem(hearing_aid_models.MODELS, "quieter", quieter_edited)
    with caplog.at_level(logging.INFO, logger="code.enhancement"):
        edited = _run(split, tmp_path, "quieter")
    assert (edited.done, edited.reasons["model code"]) == (3, 3)
    assert "0 reused, 3 to enhance (3 model code)" in caplog.text


def test_damaged_or_missing_output_is_recomputed(demo_root, tmp_path):
    split = _split(demo_root)
    _run(split, tmp_path)
    out = output_dir(tmp_path, "identity", "signals")
    signals = [r["signal"] for r in split.records]
    truncated = out / f"{signals[0]}.wav"
    truncated.write_bytes(truncated.read_bytes()[:1000])
    (out / f"{signals[1]}.wav").write_bytes(b"")
    assert check_outputs_current(split, model_name="identity", audiograms=DEFAULT_AUDIOGRAMS,
                                 results_dir=tmp_path) == signals[:2]
    redo = _run(split, tmp_path)
    assert (redo.done, redo.reused, redo.reasons[DAMAGED]) == (2, 1, 2)
    assert check_outputs_current(split, model_name="identity", audiograms=DEFAULT_AUDIOGRAMS,
                                 results_dir=tmp_path) == []
    forced = _run(split, tmp_path, recompute=True)
    assert (forced.done, forced.reasons[FORCED]) == (3, 3)


def test_stale_audio_is_reported_and_tags_keep_runs_apart(demo_root, tmp_path):
    split = _split(demo_root, 4)
    _run(split, tmp_path, "NLR1")
    changed = dict(DEFAULT_AUDIOGRAMS, Mild=DEFAULT_AUDIOGRAMS["Moderate"])
    stale = check_outputs_current(split, model_name="NLR1", audiograms=changed, results_dir=tmp_path)
    assert stale == [r["signal"] for r in split.records if r["hearing_loss"] == "Mild"]
    tagged = enhance_split(split, model_name="NLR1", audiograms=changed, results_dir=tmp_path,
                           jobs=1, tag="moderate-as-mild")
    assert tagged.done == 4
    assert (tmp_path / "NLR1-moderate-as-mild").is_dir()
    assert check_outputs_current(split, model_name="NLR1", audiograms=DEFAULT_AUDIOGRAMS,
                                 results_dir=tmp_path) == []  # the untagged run is untouched
    with pytest.raises(ValueError, match="plain name"):
        output_dir(tmp_path, "NLR1", "signals", "../x")


def test_available_cpus_follows_affinity_and_slurm(monkeypatch):
    import os

    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert available_cpus() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert available_cpus() == 1


@pytest.mark.parametrize("model,input_kind,n", [
    ("NLR1", "signals", 4),
    pytest.param("identity", "unprocessed", 2, marks=pytest.mark.slow),  # the simulator in workers
])
def test_worker_processes_give_bit_identical_audio(demo_root, tmp_path, model, input_kind, n):
    # The model always runs in this process (workers only decode, write and simulate), and
    # NLR1 does the same arithmetic on an item whatever its batch, so the samples are identical
    # (Stage 2 would otherwise see other digests and transcribe again).
    split = _split(demo_root, n)
    for jobs, folder in ((1, "one"), (2, "two")):
        summary = enhance_split(split, model_name=model, audiograms=DEFAULT_AUDIOGRAMS,
                                results_dir=tmp_path / folder, input_kind=input_kind, jobs=jobs,
                                batch_size=3 if jobs == 1 else 2)
        assert summary.done == n
    for r in split.records:
        files = [output_dir(tmp_path / f, model, input_kind) / f"{r['signal']}.wav" for f in ("one", "two")]
        if input_kind == "unprocessed":
            files += [p.parent / "heard" / p.name for p in files]
        for one, two in zip(files[::2], files[1::2]):
            assert np.array_equal(read_audio(one), read_audio(two))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device")])])
def test_torch_simulator_runs_on_the_device_stage1_is_given(demo_root, tmp_path, monkeypatch, device):
    import code.hearing_loss.simulator

    asked = []

    def recording(audio, design, *, device=None):  # records the device; the real simulator is tested elsewhere
        asked.append(device)
        return np.asarray(audio, dtype=np.float32)

    monkeypatch.setattr(code.hearing_loss.simulator, "simulate_numpy", recording)
    split = validate_split(demo_root, "valid", check_audio=False)
    split = dataclasses.replace(split, records=[r for r in split.records if r["hearing_loss"] == "Mild"][:1])
    # identity is a plain function, so only the simulator can reach for the device.
    enhance_split(split, model_name="identity", audiograms=DEFAULT_AUDIOGRAMS, results_dir=tmp_path,
                  input_kind="unprocessed", simulator="torch", device=device, jobs=1)
    assert asked == [device]


def test_a_cuda_device_without_one_is_named():
    import torch

    from code.resources import torch_device

    assert torch_device("") == torch_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="--device 'cuda', but torch sees no CUDA device"):
            torch_device("cuda")


def quieter_renamed(signals, audiogram_levels):
    return signals * 0.25


quieter_renamed.__name__ = quieter_renamed.__qualname__ = "quieter"  # same name: only the code differs


def test_editing_a_model_under_the_same_name_recomputes(demo_root, tmp_path, monkeypatch):
    split = _split(demo_root)
    monkeypatch.setitem(hearing_aid_models.MODELS, "quieter", quieter)
    assert _run(split, tmp_path, "quieter").done == 3
    monkeypatch.setitem(hearing_aid_models.MODELS, "quieter", quieter_renamed)
    edited = _run(split, tmp_path, "quieter")
    assert (edited.done, edited.reasons["model code"]) == (3, 3)


@pytest.mark.slow
def test_simulator_workers_share_the_cores():
    """Simulator workers pin numba and torch threads so that they share the cores."""
    import numba
    import torch

    from code.enhancement import _finisher

    pool, workers = _finisher("unprocessed", 2, 2)
    with pool:
        numba_threads = {pool.submit(numba.get_num_threads).result() for _ in range(2 * workers)}
        torch_threads = {pool.submit(torch.get_num_threads).result() for _ in range(2 * workers)}
    expected = min(max(1, available_cpus() // workers), numba.config.NUMBA_NUM_THREADS)
    assert numba_threads == {expected} and torch_threads == {1}


GAIN = {"value": 0.5}


class SetGain:
    """A model whose settings, not its code, change between runs."""

    def __call__(self, signals, audiogram_levels):
        return signals * GAIN["value"]

    def settings(self):
        return {"gain": GAIN["value"]}


def test_recompute_reasons_are_exact_and_copies_of_the_data_reuse(demo_root, tmp_path, monkeypatch):
    """Each changed part of the key is named; the same audio reached through another
    folder (a copy of the data root) is reused, and changed audio is called so."""
    from conftest import make_clip_root

    monkeypatch.setitem(hearing_aid_models.MODELS, "gain", SetGain)
    records = _split(demo_root, 6).records
    copy = make_clip_root(tmp_path / "copy", "valid", records)
    results = tmp_path / "results"

    def run(root, **kw):
        split = dataclasses.replace(validate_split(root, "valid", check_audio=False), records=records)
        return enhance_split(split, model_name="gain", audiograms=kw.pop("audiograms", DEFAULT_AUDIOGRAMS),
                             results_dir=results, jobs=1, **kw)

    assert run(demo_root).reasons[NEW] == 6
    assert (run(copy).done, run(copy / "cadenza_data").done) == (0, 0)  # same bytes, other folders
    monkeypatch.setitem(GAIN, "value", 0.25)
    assert {k: v for k, v in run(copy).reasons.items() if v} == {"model settings": 6}
    mild = dict(DEFAULT_AUDIOGRAMS, Mild=DEFAULT_AUDIOGRAMS["Moderate"])
    n_mild = sum(r["hearing_loss"] == "Mild" for r in records)
    assert {k: v for k, v in run(copy, audiograms=mild).reasons.items() if v} == {"audiogram": n_mild}
    audio = copy / "cadenza_data" / "valid" / "signals"
    first, second = (audio / f"{r['signal']}.flac" for r in records[:2])
    first.write_bytes(second.read_bytes())  # other audio under the first signal's name
    assert {k: v for k, v in run(copy, audiograms=mild).reasons.items() if v} == {"input audio": 1}
