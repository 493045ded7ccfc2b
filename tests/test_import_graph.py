"""The layers of ``code/`` as the README's "How the code is laid out" gives them: every
import (at the top of a module or inside a function) goes to the same layer or a
lower one, and no chain of imports comes back to where it started.

Read with the standard library's ``ast``; nothing is imported.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Bottom first. A module may import modules of its own layer or of a lower one.
LAYERS = [
    ("config and errors", ("code.config", "code.config_fields", "code.config_lists", "code.config_values", "code.errors",
                           "code.slurm_options")),
    ("plumbing", ("code.io_utils", "code.resources", "code.keys")),
    ("data pieces", ("code.data.",)),
    ("run identity", ("code.runs",)),
    ("signal processing", ("code.hearing_loss.", "code.models.")),
    ("the Librarian", ("code.data_loading",)),
    ("Stage 1", ("code.enhancement_plan", "code.enhancement")),
    ("training", ("code.training.",)),
    ("Stage 2: store and table", ("code.evaluation.cache", "code.evaluation.table", "code.evaluation.pair_values",
                                  "code.evaluation.shipped_values", "code.evaluation.pair_workers")),
    ("Stage 2: quality", ("code.evaluation.quality.",)),
    ("Stage 2: asr", ("code.evaluation.asr.",)),
    ("Stage 2: features", ("code.evaluation.features.",)),
    ("Stage 2: comparison", ("code.evaluation.comparison.",)),
    ("Stage 2: prediction", ("code.evaluation.prediction.",)),
    ("Stage 2: outputs", ("code.evaluation.outputs.",)),
    ("Stage 2: the Judge", ("code.evaluation.evaluation_helper",)),
    ("the pipeline", ("code.pipeline_report", "code.pipeline")),
    ("the cluster", ("code.cluster", "code.cluster_checks")),
]


PACKAGES = ("code.data", "code.evaluation", "code.hearing_loss", "code.models", "code.training", "code.evaluation.asr",
            "code.evaluation.features", "code.evaluation.quality", "code.evaluation.comparison", "code.evaluation.prediction",
            "code.evaluation.outputs")  # package folders (their __init__ is empty)


def layer_of(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or (p.endswith((".", "_")) and module.startswith(p)) for p in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and the README's map)")


def project_modules() -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / "code").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules ``path`` imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {n for n in names if n in modules and n != "code"}
    return found


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()
            if name not in ("code", *PACKAGES)}


def test_every_import_goes_down_or_across():
    wrong = []
    for module, targets in graph().items():
        for target in targets:
            if target in PACKAGES:
                continue
            if layer_of(target) > layer_of(module):
                wrong.append(f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} "
                             f"({LAYERS[layer_of(target)][0]})")
    assert not wrong, "imports from a lower layer to a higher one:\n" + "\n".join(sorted(wrong))


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt):] + [node, nxt]) if nxt in path
                              else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, path + [node])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_config_and_errors_import_nothing_heavy():
    """`main.py --help`, a mistyped option, `compute_csvs.py` and every error class
    need no torch, Whisper, numba, pyclarity or scikit-learn."""
    heavy = ("torch", "whisper", "faster_whisper", "numba", "clarity", "sklearn", "ctranslate2")
    probe = ("import sys, main, code.config, code.errors, code.data.validation, compute_csvs; "
             f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_registries_read_without_import_match_the_imported_ones():
    """``main.py`` checks model and predictor names by reading the registries' source
    (no torch at parse time); the names must be what the modules register."""
    from code.config import MODELS_FILE, PREDICTORS_FILE, registered_names
    from code.evaluation.prediction.predictors import PREDICTORS
    from code.models.hearing_aid_models import MODELS

    assert registered_names(MODELS_FILE, "MODELS") == list(MODELS)
    assert registered_names(PREDICTORS_FILE, "PREDICTORS") == list(PREDICTORS)
    assert all(cls.name == name for name, cls in PREDICTORS.items())


@pytest.mark.parametrize("source,expected", [
    ('MODELS = {"a": f, "b": g}\n', ["a", "b"]),
    ('MODELS = {"a": f}\nMODELS["Louder"] = louder\n', ["a", "Louder"]),
    ('MODELS = {"a": f}\nMODELS.update(b=g)\n', []),  # not readable: checked when the run starts
    ('MODELS = dict(a=f)\n', []),
])
def test_registry_names_read_from_source(tmp_path, source, expected):
    from code.config import registered_names

    path = tmp_path / "models.py"
    path.write_text(source)
    assert registered_names(path, "MODELS") == expected
