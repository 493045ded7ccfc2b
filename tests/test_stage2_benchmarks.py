"""``benchmarks/stage2_scaling.py`` and ``benchmarks/gpu_check.py`` at their smallest, so that
neither rots: the scaling benchmark's last line, and the GPU check's every part on the CPU."""

from __future__ import annotations

import json
import re

import pytest


@pytest.mark.slow  # starts worker pools: seconds
def test_stage2_scaling_ends_with_its_speedup_line(capsys):
    from benchmarks.stage2_scaling import main

    main(["--signals", "1", "--seconds", "0.6", "--max-jobs", "2", "--measures", "haaqi,stoi"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"haaqi_jobs2_speedup=\d+\.\d\d identical=True", lines[-1]), lines[-1]
    assert any(line.startswith("haaqi: today (one process") for line in lines)
    assert any(line.startswith("stoi:  2 free:") for line in lines)


@pytest.mark.slow  # Whisper, the torch simulator and a training step on the CPU: tens of seconds
def test_gpu_check_runs_every_part_on_the_cpu(tmp_path):
    from benchmarks.gpu_check import PARTS, main

    out = tmp_path / "gpu_check.json"
    assert main(["--device", "cpu", "--smoke", "--out", str(out)]) == 0
    results = json.loads(out.read_text())
    assert results["device"] == "cpu" and results["smoke"] is True
    assert list(results["parts"]) == list(PARTS)
    assert all(part["ok"] for part in results["parts"].values()), results
    asr = results["parts"]["asr"]
    assert asr["tokens"] == 4 and set(asr["models"]["tiny.en"]["ears_per_s"]) == {"1", "2"}
    assert all(rate > 0 for rate in asr["models"]["tiny.en"]["ears_per_s"].values())
    assert results["parts"]["simulator"]["max_abs_diff"] < 1e-6
    assert results["parts"]["training"]["items"] == 2
    assert "collected" in results["parts"]["cuda_tests"]["summary"]


def test_gpu_check_refuses_an_unknown_part(capsys):
    from benchmarks.gpu_check import main

    with pytest.raises(SystemExit) as stop:
        main(["--device", "cpu", "--parts", "asr,warp"])
    assert stop.value.code == 2 and "--parts" in capsys.readouterr().err
