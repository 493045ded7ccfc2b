"""Predictors declare what they take (``code/evaluation/prediction/capabilities.py``), so
that a new one is one class in one file plus its registration, used everywhere a built-in
of its kind is: with ``--feature``, as a ``stack`` member, on the official precomputed scores."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT

from code.evaluation.asr.scoring import OFFICIAL_TRAIN_SCORES
from code.evaluation.prediction.capabilities import TAKES, tags_of
from code.evaluation.prediction.predictors import PREDICTORS

ISOTONIC = '''"""``isotonic``: one feature column through a monotone (isotonic) fit to the 0..100 targets."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
from sklearn.isotonic import IsotonicRegression

from code.evaluation.prediction.capabilities import ONE_COLUMN, pick_feature
from code.io_utils import write_json_atomic


class IsotonicPredictor:
    name: ClassVar[str] = "isotonic"
    takes: ClassVar[str] = ONE_COLUMN
    handles_missing: ClassVar[bool] = False
    uses_feature: ClassVar[bool] = True
    fits_precomputed: ClassVar[bool] = True
    trains_on_device: ClassVar[bool] = False

    @classmethod
    def used_columns(cls, names, feature):
        return [pick_feature(names, feature)]

    def __init__(self, *, feature=None, seed=0):
        self.feature, self.column, self.model = feature, None, None
        self.notes, self.skipped = [], []

    def fit(self, features, target_0_100, records):
        self.column = pick_feature(features.names, self.feature)
        self.model = IsotonicRegression(y_min=0.0, y_max=100.0, out_of_bounds="clip")
        self.model.fit(features.column(self.column), np.asarray(target_0_100, dtype=float))

    def predict(self, features, records):
        return self.model.predict(features.column(self.column))

    def params(self):
        return {"predictor": self.name, "feature": self.column}

    def save(self, path_stem):
        path = Path(f"{path_stem}.json")
        write_json_atomic(path, self.params())
        return [path]
'''
REGISTRATION = ("\nfrom code.evaluation.prediction.isotonic import IsotonicPredictor  # noqa: E402\n"
                "PREDICTORS[\"isotonic\"] = IsotonicPredictor\n")

STACK = '''
import json, sys
import numpy as np
from code.evaluation.prediction.fitting import fit_predict
from code.evaluation.table import FeatureTable

rng = np.random.default_rng(0)
records = [{"signal": f"s{i}", "prompt": f"p{i // 3}", "hearing_loss": ("No Loss", "Mild", "Moderate")[i % 3],
            "n_words": 5} for i in range(120)]
score = rng.uniform(0, 1, len(records))
truth = 100 * np.clip(score + rng.normal(0, 0.1, len(records)), 0, 1)
table = FeatureTable([r["signal"] for r in records], ["asr.m.better_ear", "noise"],
                     np.stack([score, rng.normal(size=len(records))], axis=1))
members = [{"predictor": "isotonic"}, {"predictor": "gbm", "settings": {"max_iter": 20}}]
predicted, model = fit_predict("stack", fit_table=table, fit_records=records, fit_target_0_100=truth,
                               predict_table=table, predict_records=records, n_folds=2,
                               options={"settings": {"members": members, "inner_folds": 2}})
values = np.array([predicted[r["signal"]] for r in records])
print(json.dumps({"rmse": float(np.sqrt(np.mean((values - truth) ** 2))), "columns": model.columns,
                  "weights": [float(w) for w in model.weights]}))
'''


def test_every_predictor_declares_its_tags():
    for name, cls in PREDICTORS.items():
        tags = tags_of(cls)
        assert tags["takes"] in TAKES and cls.name == name


def test_a_predictor_without_tags_is_refused():
    class Bare:
        name = "bare"
        takes = "one column"

    with pytest.raises(TypeError, match=r"Bare must declare \['handles_missing'"):
        tags_of(Bare)


def test_no_predictor_name_is_spelled_outside_its_class_and_the_registry():
    """Its own module (the class; a stack's default members) and the registry name them;
    ``--predictor``'s default is named where the option is (config.py, main.py's CONFIG, a
    benchmark's ``default=``)."""
    allowed = {"code/evaluation/prediction/predictors.py", "code/config.py", "main.py"}
    allowed |= {str(Path(sys.modules[cls.__module__].__file__).relative_to(ROOT)) for cls in PREDICTORS.values()}
    found = []
    for path in [*(ROOT / "code").rglob("*.py"), ROOT / "main.py", ROOT / "compute_csvs.py",
                 *(ROOT / "benchmarks").glob("*.py")]:
        relative = str(path.relative_to(ROOT))
        if relative in allowed:
            continue
        tree = ast.parse(path.read_text())
        defaults = {id(k.value) for node in ast.walk(tree) if isinstance(node, ast.Call)
                    for k in node.keywords if k.arg == "default"}  # an option's default (a benchmark's)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in PREDICTORS and id(node) not in defaults:
                found.append(f"{relative}:{node.lineno} {node.value!r}")
    assert not found, found


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    ignore = shutil.ignore_patterns("__pycache__")
    for folder in ("code", "benchmarks"):
        shutil.copytree(ROOT / folder, project / folder, ignore=ignore)
    for name in ("main.py", "compute_csvs.py"):
        shutil.copy(ROOT / name, project / name)
    (project / "data").symlink_to(ROOT / "data", target_is_directory=True)
    (project / "code" / "evaluation" / "prediction" / "isotonic.py").write_text(ISOTONIC)
    registry = project / "code" / "evaluation" / "prediction" / "predictors.py"
    registry.write_text(registry.read_text() + REGISTRATION)
    return project


def _python(project: Path, *args) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=project, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _official_root(root: Path) -> tuple[Path, Path]:
    """A metadata-only CLIP1 root for the signals of the official precomputed training scores,
    with SYNTHETIC labels (a noisy function of the score): mechanics only."""
    scores = Path(OFFICIAL_TRAIN_SCORES["whisper.mixture"])
    rows = [json.loads(line) for line in scores.read_text().splitlines()[:600]]
    rng = np.random.default_rng(0)
    records = []
    for i, row in enumerate(rows):
        correctness = float(np.clip(row["whisper.mixture"] * 0.8 + rng.normal(0, 0.1), 0, 1))
        records.append({"signal": row["signal"], "fma": f"{i // 3:06d}", "original_prompt": f"Line {i // 3}",
                        "prompt": f"line {i // 3} of four words", "original_response": "x", "response": "x",
                        "n_words": 5, "words_correct": round(5 * correctness),
                        "correctness": correctness, "hearing_loss": ("No Loss", "Mild", "Moderate")[i % 3]})
    (root / "cadenza_data" / "metadata").mkdir(parents=True)
    (root / "cadenza_data" / "metadata" / "train_metadata.json").write_text(json.dumps(records))
    return root, scores


@pytest.mark.slow
def test_a_one_column_predictor_is_one_class_in_one_file(tmp_path):
    project = _project(tmp_path)
    # with --feature, on the demo (SYNTHETIC labels)
    run = _python(project, "main.py", "--results-dir", tmp_path / "results", "--predictor", "isotonic",
                  "--feature", "stoi.left")
    assert "predictor isotonic takes one column (stoi.left); missing values refused" in run.stderr
    assert "is ignored" not in run.stderr
    assert list((tmp_path / "results").glob("submission_NLR1-isotonic-feature=stoi.left-*_valid.csv"))
    # as a stack member: given the column one-column members take
    stack = json.loads(_python(project, "-c", STACK).stdout.splitlines()[-1])
    assert stack["columns"][0] == "asr.m.better_ear" and len(stack["weights"]) == 2 and stack["rmse"] < 15
    # on the official precomputed training scores
    root, scores = _official_root(tmp_path / "clip1")
    out = _python(project, "benchmarks/predictors.py", "--data-root", root, "--train-scores", scores,
                  "--predictors", "isotonic", "--folds", "3").stdout
    line = next(line for line in out.splitlines() if line.startswith("predictor=isotonic"))
    assert float(line.split("rmse=")[1].split()[0]) < 20, out
