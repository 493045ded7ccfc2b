"""The README's add-a-model recipe, followed word for word, keeps the fast loop green: its
snippet appended to ``code/models/hearing_aid_models.py`` in a copy of the project, the tests
that read the model registry pass there."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# The tests that read the registry (its names, each model's contract, key or help line).
REGISTRY_TESTS = ["tests/test_models.py", "tests/test_model_contract.py", "tests/test_keys.py",
                  "tests/test_import_graph.py", "tests/test_config.py"]


def readme_model_snippet() -> str:
    """The Python block of the README's "Add a model" section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Add a model", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return block


def test_the_readme_snippet_registers_a_model():
    snippet = readme_model_snippet()
    assert 'MODELS["Louder"] = louder' in snippet


@pytest.mark.slow
def test_following_the_readme_keeps_the_registry_tests_green(tmp_path):
    project = tmp_path / "project"
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache")
    for folder in ("code", "tests", "benchmarks", "scripts", "docs"):
        shutil.copytree(ROOT / folder, project / folder, ignore=ignore)
    for name in ("main.py", "compute_csvs.py", "pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy(ROOT / name, project / name)
    (project / "data").symlink_to(ROOT / "data", target_is_directory=True)
    models = project / "code" / "models" / "hearing_aid_models.py"
    models.write_text(models.read_text() + "\n\n" + readme_model_snippet())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-m", "not slow", "-p", "no:cacheprovider",
                           *REGISTRY_TESTS], cwd=project, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-4000:]
    check = subprocess.run([sys.executable, "-c", "from code.models.hearing_aid_models import MODELS; "
                            "print(sorted(MODELS))"], cwd=project, capture_output=True, text=True, env=env)
    assert "'Louder'" in check.stdout, check.stderr
