"""Stage-2 pair features are declarations (``code/evaluation/features/registry.py``): a new one
is a module and one registration line; the run's name, the features file and the store keys
follow from the selection, so no two feature sets share an output."""

from __future__ import annotations

import ast
import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

from code.config import DEFAULTS, check_config, field_choices
from code.evaluation.features.registry import FEATURES, PairFeature, feature
from code.runs import data_set, run_name, selected_features

SISDR_MODULE = '''"""SI-SDR (dB) of each ear of the scored audio against the unprocessed audio."""

import numpy as np


def sisdr_features(heard, reference, sample_rate):
    out = {}
    n = min(heard.shape[-1], reference.shape[-1])
    for index, ear in enumerate(("left", "right")):
        x, s = heard[index, :n].astype(np.float64), reference[index, :n].astype(np.float64)
        target = s * (np.dot(x, s) / max(np.dot(s, s), 1e-12))
        out[f"sisdr.{ear}"] = float(10 * np.log10(max(np.sum(target ** 2), 1e-12)
                                                  / max(np.sum((x - target) ** 2), 1e-12)))
    return out
'''
SISDR_LINE = ('FEATURES["sisdr"] = PairFeature("code.evaluation.features.sisdr", "sisdr_features", '
              'columns=("sisdr.left", "sisdr.right"))\n')


def _name(**settings) -> str:
    cfg = dataclasses.replace(DEFAULTS, **settings)
    return run_name(cfg, "NLR1", home=data_set(cfg))


def test_the_selection_names_the_run():
    assert _name() == "NLR1"
    assert _name(haspi=True) == _name(features="stoi,haspi") == _name(features="haspi,stoi", haspi=True)
    assert _name(haspi=True).startswith("NLR1-haspi-")
    assert _name(features="").startswith("NLR1-no-stoi-")
    assert len({_name(), _name(haspi=True), _name(features=""), _name(features="haspi")}) == 4
    assert selected_features(dataclasses.replace(DEFAULTS, features="stoi,haspi", haspi=True)) == ("stoi", "haspi")


def test_unknown_features_are_refused_naming_the_option():
    problem = check_config(dataclasses.replace(DEFAULTS, features="stoi,hapsi"))
    assert "--features" in problem and "'hapsi'" in problem and "did you mean 'haspi'" in problem
    assert field_choices()["features"] == list(FEATURES)
    with pytest.raises(ValueError, match="registered features: stoi, haspi"):
        feature("hapsi")


def test_every_feature_is_declared_whole():
    for name, spec in FEATURES.items():
        assert isinstance(spec, PairFeature) and spec.columns, name
        assert callable(spec.compute()), name
        assert all(hasattr(DEFAULTS, field) for field in spec.options.values()), name
        assert re.fullmatch(r"[0-9a-f]{16,}", spec.code_key()), name


def test_no_feature_name_is_spelled_outside_its_module_and_the_registry():
    """The options (config.py) name them; the official precomputed files are named after
    their own measures (scoring.py)."""
    allowed = {"code/evaluation/features/registry.py", "code/config.py", "code/evaluation/asr/scoring.py"}
    allowed |= {spec.module.replace(".", "/") + ".py" for spec in FEATURES.values()}
    found = []
    for path in [*(ROOT / "code").rglob("*.py"), ROOT / "main.py", ROOT / "compute_csvs.py"]:
        relative = str(path.relative_to(ROOT))
        if relative in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in FEATURES:
                found.append(f"{relative}:{node.lineno} {node.value!r}")
    assert not found, found


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(ROOT / "code", project / "code", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("main.py", "compute_csvs.py"):
        shutil.copy(ROOT / name, project / name)
    (project / "data").symlink_to(ROOT / "data", target_is_directory=True)
    return project


def _main(project: Path, *args) -> str:
    proc = subprocess.run([sys.executable, "main.py", *map(str, args)], cwd=project, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


@pytest.mark.slow
def test_a_new_feature_is_one_module_and_one_line(tmp_path):
    """SI-SDR added to a copy of the project, selected on the demo (SYNTHETIC labels: mechanics)."""
    project = _project(tmp_path)
    results = tmp_path / "results"
    _main(project, "--results-dir", results)
    plain = results / "submission_NLR1_valid.csv"
    before = plain.read_bytes()

    (project / "code" / "evaluation" / "features" / "sisdr.py").write_text(SISDR_MODULE)
    registry = project / "code" / "evaluation" / "features" / "registry.py"
    registry.write_text(registry.read_text() + "\n" + SISDR_LINE)
    log = _main(project, "--results-dir", results, "--features", "stoi,sisdr")
    assert re.search(r"Stage 2: sisdr: \d+ signal\(s\) to compute, 0 reused", log), log[-3000:]
    [new] = [p for p in results.glob("submission_NLR1-sisdr-*_valid.csv")]
    assert plain.read_bytes() == before and new.read_bytes()
    files = sorted((results / "NLR1").glob("features.valid.*.jsonl"))
    assert len(files) == 2 and sum("sisdr.left" in p.read_text() for p in files) == 1
    assert any((results / ".cache" / "sisdr").rglob("*.json"))

    again = _main(project, "--results-dir", results, "--features", "stoi,sisdr")
    assert re.search(r"Stage 2: sisdr: 0 signal\(s\) to compute, \d+ reused", again), again[-3000:]
    _main(project, "--results-dir", results)  # the plain run again, SI-SDR registered
    assert plain.read_bytes() == before
