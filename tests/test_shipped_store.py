"""The demo ships Stage-2 values (``data/demo/cadenza_data/stage2_store/``) so that a
newcomer's first run does not transcribe the fit set. They are keyed like any stored value
(audio content, settings, code), so they are current only while the code that made them
is unchanged: this test says when to rebuild them, and that stale ones are not used."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tests.conftest import DEMO_ROOT

from code.config import DEFAULTS
from code.data.validation import validate_split
from code.evaluation.asr.settings import asr_settings
from code.evaluation.cache import Store
from code.evaluation.features import extract
from code.evaluation.features.registry import FEATURES
from code.keys import key_of

SHIPPED = DEMO_ROOT / "cadenza_data" / extract.SHIPPED_STORE
REBUILD = "the demo's shipped Stage-2 values are stale: run python scripts/make_demo_store.py"


def _fit_items():
    split = validate_split(DEMO_ROOT, "train", check_audio=False)
    return [(r, split.layout.audio_path(r["signal"], "signals"),
             split.layout.audio_path(r["signal"], "unprocessed")) for r in split.records]


def test_the_fit_set_values_are_shipped_and_current(tmp_path):
    store = Store(tmp_path / "digests")  # digests only; values are looked up in the shipped store
    shipped = Store(SHIPPED)
    settings = asr_settings(DEFAULTS)
    missing = []
    for record, path, reference in _fit_items():
        digest = store.digest(path)
        if shipped.get("transcript", extract.transcript_key(digest, settings, DEFAULTS.sample_rate)) is None:
            missing.append(f"transcript of {record['signal']}")
        stoi = key_of("intrusive", audio=digest, reference=store.digest(reference),
                      sample_rate=DEFAULTS.sample_rate, max_lag_s=DEFAULTS.stoi_max_lag_s,
                      code=FEATURES["stoi"].code_key())
        if shipped.get("intrusive", stoi) is None:
            missing.append(f"STOI of {record['signal']}")
    assert not missing, f"{REBUILD} ({len(missing)} values missing, e.g. {missing[:2]})"


def test_a_stale_shipped_value_is_not_used(tmp_path, monkeypatch):
    """Other code (here: one more function among the transcribing code) means other keys: the
    shipped values are not found and the signal would be transcribed afresh."""
    record, path, _ = _fit_items()[0]
    digest = Store(tmp_path).digest(path)
    settings = asr_settings(DEFAULTS)
    current = extract.transcript_key(digest, settings, DEFAULTS.sample_rate)
    monkeypatch.setattr(extract, "TRANSCRIPT_CODE", extract.TRANSCRIPT_CODE + (extract.asr_features,))
    stale = extract.transcript_key(digest, settings, DEFAULTS.sample_rate)
    assert stale != current and Store(SHIPPED).get("transcript", stale) is None
    other = dataclasses.replace(DEFAULTS, asr_compute_type="int8")
    assert Store(SHIPPED).get("transcript", extract.transcript_key(digest, asr_settings(other), 44100)) is None
    assert Path(SHIPPED).is_dir()


def test_the_clip2_demo_command_transcribes_nothing(tmp_path, caplog):
    """The CLIP2 demo ships the same store (its audio is the demo's), so its documented
    command, ``python main.py --data-root data/demo_clip2``, reads every Whisper value."""
    from tests.conftest import CLIP2_DEMO, run_main

    assert (CLIP2_DEMO / "cadenza_data" / "clip2" / extract.SHIPPED_STORE).is_dir()
    code, log = run_main(["--data-root", CLIP2_DEMO, "--results-dir", tmp_path / "results"], caplog)
    assert code == 0, log[-2000:]
    counts = [line for line in log.splitlines() if "signal(s) to transcribe" in line]
    assert len(counts) == 2 and all(": 0 signal(s) to transcribe" in line for line in counts), counts
