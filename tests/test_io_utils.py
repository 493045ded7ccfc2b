"""Crash-safe output: torn JSONL lines are dropped, atomic writes leave no partial file."""

from __future__ import annotations

import pytest

from code.io_utils import append_jsonl, read_jsonl, repair_jsonl, write_text_atomic


def test_torn_last_line_is_dropped_and_repaired(tmp_path):
    path = tmp_path / "scores.jsonl"
    append_jsonl(path, {"signal": "a", "score": 0.5})
    append_jsonl(path, {"signal": "b", "score": 1.0})
    with path.open("a") as f:
        f.write('{"signal": "c", "sco')  # killed mid-write
    assert [r["signal"] for r in read_jsonl(path)] == ["a", "b"]
    repair_jsonl(path)
    append_jsonl(path, {"signal": "c", "score": 0.0})
    assert [r["signal"] for r in read_jsonl(path)] == ["a", "b", "c"]


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "out.csv"
    write_text_atomic(path, "old\n")

    class Boom(Exception):
        pass

    from code.io_utils import atomic_path
    with pytest.raises(Boom):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise Boom
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_get_the_umask_permissions(tmp_path, umask, mode):
    import os

    import numpy as np

    from code.io_utils import write_json_atomic, write_wav_atomic

    old = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "a.csv", "x\n")
        write_json_atomic(tmp_path / "b.json", {"a": 1})
        write_wav_atomic(tmp_path / "c.wav", np.zeros((2, 10), dtype=np.float32), 16000)
        append_jsonl(tmp_path / "d.jsonl", {"a": 1})
    finally:
        os.umask(old)
    for name in ("a.csv", "b.json", "c.wav", "d.jsonl"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


def test_same_audio_gives_the_same_bytes(tmp_path):
    """Identical samples -> identical files, so their digests (cache keys) agree."""
    import time

    import numpy as np

    from code.data.audio import read_audio
    from code.io_utils import write_wav_atomic
    from code.keys import file_digest

    audio = np.random.default_rng(0).normal(0, 0.5, (2, 4410)).astype(np.float32)
    audio[0, 10] = 1.7  # above full scale: kept
    write_wav_atomic(tmp_path / "a.wav", audio, 44100)
    time.sleep(1.1)
    write_wav_atomic(tmp_path / "b.wav", audio, 44100)
    assert file_digest(tmp_path / "a.wav") == file_digest(tmp_path / "b.wav")
    assert np.array_equal(read_audio(tmp_path / "a.wav", 44100), audio)
