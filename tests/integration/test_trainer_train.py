"""The real `kubeloop-trainer train` entrypoint, run as a subprocess exactly as the image runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kubeloop.contract import EXIT_CODES, TrainerFailed, TrainerSucceeded, parse_termination_message
from kubeloop_trainer.artifact import read_artifact
from sklearn.datasets import load_breast_cancer, load_diabetes

pytestmark = pytest.mark.integration

TRAINER = shutil.which("kubeloop-trainer") or str(Path(sys.executable).parent / "kubeloop-trainer")


def run_trainer(task: dict | None, tmp_path: Path, env: dict | None = None, inline: bool = False):
    """Run `kubeloop-trainer train`; returns the process and the parsed termination message."""
    term = tmp_path / f"termination-{os.urandom(3).hex()}"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBELOOP_", "AWS_"))}
    full_env["KUBELOOP_TERMINATION_LOG"] = str(term)
    if task is not None and inline:
        full_env["KUBELOOP_TASK"] = json.dumps(task)
    elif task is not None:
        path = tmp_path / "task.json"
        path.write_text(json.dumps(task))
        full_env["KUBELOOP_TASK_FILE"] = str(path)
    full_env.update(env or {})
    proc = subprocess.run([TRAINER, "train"], env=full_env, capture_output=True, text=True, timeout=300)
    summary = parse_termination_message(term.read_text()) if term.exists() else None
    return proc, summary


@pytest.fixture(scope="module")
def breast_cancer_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "breast_cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(path, index=False)
    return path


def test_classification_from_csv(breast_cancer_csv, tmp_path):
    out = tmp_path / "artifact"
    task = {
        "model": "cancer",
        "data": {
            "uri": f"file://{breast_cancer_csv}",
            "target": "target",
            "validation": {
                "expectedColumns": {"mean radius": "float", "target": "int"},
                "ranges": {"mean radius": {"min": 0}},
                "minRows": 500,
            },
        },
        "estimator": {"classPath": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 30}},
        "artifactUri": f"file://{out}",
    }
    proc, summary = run_trainer(task, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert isinstance(summary, TrainerSucceeded)
    assert summary.task == "classification" and summary.data_rows == 569 and summary.test_rows == 143
    assert set(summary.metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}
    assert summary.metrics["accuracy"] > 0.9 and summary.metrics["roc_auc"] > 0.95
    assert "data gate passed" in proc.stdout and "artifact written" in proc.stdout
    art = read_artifact(summary.artifact_uri, ("sklearn.",), expected_digest=summary.digest)
    assert art.signature.classes == [0, 1] and len(art.signature.features) == 30
    assert sorted(p.name for p in out.iterdir()) == [
        "drift_profile.json", "manifest.json", "metrics.json", "model.skops", "model_card.md", "signature.json",
    ]  # fmt: skip


def test_regression_from_parquet_on_a_pvc(tmp_path):
    root = tmp_path / "volumes"
    (root / "training-data" / "sets").mkdir(parents=True)
    load_diabetes(as_frame=True, scaled=False).frame.to_parquet(
        root / "training-data" / "sets" / "diabetes.parquet"
    )
    task = {
        "model": "diabetes",
        "data": {"uri": "pvc://training-data/sets/diabetes.parquet", "format": "parquet", "target": "target"},
        "estimator": {
            "classPath": "sklearn.ensemble.GradientBoostingRegressor",
            "params": {"n_estimators": 50},
        },
        "testSize": 0.2,
        "seed": 5,
        "artifactUri": f"file://{tmp_path / 'artifact'}",
    }
    proc, summary = run_trainer(task, tmp_path, env={"KUBELOOP_PVC_ROOT": str(root)})
    assert proc.returncode == 0, proc.stderr
    assert isinstance(summary, TrainerSucceeded) and summary.task == "regression"
    assert set(summary.metrics) == {"rmse", "mae", "r2"}
    assert 0.2 < summary.metrics["r2"] < 1.0 and summary.metrics["mae"] < summary.metrics["rmse"] < 80
    assert (summary.train_rows, summary.test_rows) == (353, 89)


def test_data_gate_violations_are_named(tmp_path):
    frame = load_breast_cancer(as_frame=True).frame.head(60).copy()
    frame.loc[0:2, "mean radius"] = -1.0
    frame.loc[0:29, "mean texture"] = np.nan
    frame["patient"] = "p"  # text where the gate expects a number
    data = tmp_path / "bad.csv"
    frame.drop(columns=["worst area"]).to_csv(data, index=False)
    task = {
        "model": "cancer",
        "data": {
            "uri": f"file://{data}",
            "target": "target",
            "validation": {
                "expectedColumns": {"worst area": "float", "patient": "int"},
                "ranges": {"mean radius": {"min": 0}},
                "maxNullFraction": 0.1,
                "minRows": 100,
            },
        },
        "estimator": {"classPath": "sklearn.linear_model.LogisticRegression"},
        "artifactUri": f"file://{tmp_path / 'never'}",
    }
    proc, summary = run_trainer(task, tmp_path)
    assert proc.returncode == EXIT_CODES["DataValidationFailed"] == 3
    assert isinstance(summary, TrainerFailed) and summary.reason == "DataValidationFailed"
    assert summary.data_hash and summary.data_hash.startswith("sha256:")
    named = {(v.check, v.column) for v in summary.violations}
    assert named == {
        ("min_rows", None),
        ("missing_column", "worst area"),
        ("type", "patient"),
        ("range", "mean radius"),
        ("null_fraction", "mean texture"),
    }
    for column in ("worst area", "patient", "mean radius", "mean texture"):
        assert column in summary.message and f"'{column}'" in proc.stdout
    assert not (tmp_path / "never").exists()


def test_a_forbidden_estimator_fails_before_touching_data(tmp_path):
    task = {
        "model": "x",
        "data": {"uri": "file:///nonexistent.csv", "target": "y"},
        "estimator": {"classPath": "os.system"},
        "artifactUri": f"file://{tmp_path / 'a'}",
    }
    proc, summary = run_trainer(task, tmp_path, inline=True)
    assert proc.returncode == EXIT_CODES["EstimatorRejected"]
    assert isinstance(summary, TrainerFailed) and summary.reason == "EstimatorRejected"
    assert "outside the allowed modules sklearn." in summary.message


def test_an_invalid_task_names_the_field(tmp_path):
    task = {"model": "x", "data": {"uri": "ftp://x/y.csv", "target": "y"}, "estimator": {"classPath": "a.B"}}
    proc, summary = run_trainer(task, tmp_path)
    assert proc.returncode == EXIT_CODES["InvalidTask"]
    assert isinstance(summary, TrainerFailed) and summary.reason == "InvalidTask"
    assert "data.uri" in summary.message and "artifactUri" in summary.message


def test_no_task_at_all(tmp_path):
    proc, summary = run_trainer(None, tmp_path)
    assert proc.returncode == 2
    assert isinstance(summary, TrainerFailed) and "KUBELOOP_TASK_FILE" in summary.message


def test_categorical_data_with_nulls_trains_and_profiles(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    color = rng.choice(["red", "green", "blue"], size=n)
    x = rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "color": color, "label": np.where((color == "red") ^ (x > 0), "a", "b")})
    frame.loc[::25, "color"] = None
    data = tmp_path / "mixed.csv"
    frame.to_csv(data, index=False)
    task = {
        "model": "mixed",
        "data": {"uri": f"file://{data}", "target": "label", "validation": {"maxNullFraction": 0.05}},
        "estimator": {"classPath": "sklearn.ensemble.HistGradientBoostingClassifier"},
        "artifactUri": f"file://{tmp_path / 'artifact'}",
    }
    proc, summary = run_trainer(task, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary.metrics["accuracy"] > 0.9
    art = read_artifact(summary.artifact_uri, ("sklearn.",))
    assert set(art.profile.categorical["color"].categories) == {"red", "green", "blue"}
    assert [f.kind for f in art.signature.features] == ["numeric", "categorical"]
