"""Training and serving through the local S3-compatible store (versitygw) over s3://, as in a cluster."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import numpy as np
import pytest
import tritonclient.http as triton
from kubeloop.contract import TrainerSucceeded, parse_termination_message
from kubeloop_trainer.artifact import read_artifact
from sklearn.datasets import load_breast_cancer, load_diabetes

pytestmark = pytest.mark.integration

TRAINER = shutil.which("kubeloop-trainer") or str(Path(sys.executable).parent / "kubeloop-trainer")


def _env(s3, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBELOOP_", "AWS_", "POD_IP"))}
    env.update(s3.env())
    env.update(extra)
    return env


def _fs(s3):
    return fsspec.filesystem("s3", skip_instance_cache=True, **s3.storage_options())


def _train(s3, tmp_path: Path, task: dict) -> tuple[subprocess.CompletedProcess, TrainerSucceeded]:
    term = tmp_path / f"term-{os.urandom(3).hex()}"
    proc = subprocess.run(
        [TRAINER, "train"],
        env=_env(s3, KUBELOOP_TASK=json.dumps(task), KUBELOOP_TERMINATION_LOG=str(term)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, parse_termination_message(term.read_text())


def test_classification_through_s3_then_served_from_s3(s3, tmp_path):
    fs = _fs(s3)
    frame = load_breast_cancer(as_frame=True).frame
    fs.pipe_file(f"{s3.bucket}/data/breast_cancer.csv", frame.to_csv(index=False).encode())
    artifact_uri = f"s3://{s3.bucket}/artifacts/ml/cancer/run-1"
    _, summary = _train(
        s3,
        tmp_path,
        {
            "model": "cancer",
            "trainingRun": "run-1",
            "data": {"uri": f"s3://{s3.bucket}/data/breast_cancer.csv", "target": "target"},
            "estimator": {
                "classPath": "sklearn.ensemble.RandomForestClassifier",
                "params": {"n_estimators": 20},
            },
            "artifactUri": artifact_uri,
        },
    )
    assert summary.artifact_uri == artifact_uri and summary.metrics["accuracy"] > 0.9
    # the artifact is really in the bucket (versitygw's posix backend keeps objects as files)
    names = sorted(p.name for p in (Path(s3.root) / s3.bucket / "artifacts/ml/cancer/run-1").iterdir())
    assert names == ["drift_profile.json", "manifest.json", "metrics.json", "model.skops", "model_card.md",
                     "signature.json"]  # fmt: skip
    art = read_artifact(artifact_uri, ("sklearn.",), expected_digest=summary.digest, env=s3.env())
    assert art.manifest.data.uri == f"s3://{s3.bucket}/data/breast_cancer.csv"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [TRAINER, "serve"],
        env=_env(
            s3,
            KUBELOOP_MODEL_URI=artifact_uri,
            KUBELOOP_MODEL_DIGEST=summary.digest,
            KUBELOOP_BIND_ADDRESS="127.0.0.1",
            KUBELOOP_PORT=str(port),
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = triton.InferenceServerClient(url=f"127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read()
            try:
                if client.is_model_ready("cancer"):
                    break
            except Exception:  # not listening yet
                pass
            assert time.monotonic() < deadline
            time.sleep(0.2)
        X = frame.drop(columns="target").to_numpy()[:40]
        tensor = triton.InferInput("input-0", list(X.shape), "FP64")
        tensor.set_data_from_numpy(X)
        result = client.infer("cancer", [tensor])
        np.testing.assert_array_equal(result.as_numpy("predict"), art.model.predict(X))
        client.close()
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_regression_with_a_champion_through_s3(s3, tmp_path):
    fs = _fs(s3)
    buf = io.BytesIO()
    load_diabetes(as_frame=True).frame.to_parquet(buf)
    fs.pipe_file(f"{s3.bucket}/data/diabetes.parquet", buf.getvalue())
    base = {
        "model": "diabetes",
        "data": {"uri": f"s3://{s3.bucket}/data/diabetes.parquet", "format": "parquet", "target": "target"},
        "seed": 1,
    }
    _, champion = _train(
        s3,
        tmp_path,
        {
            **base,
            "estimator": {"classPath": "sklearn.linear_model.Ridge", "params": {"alpha": 0.1}},
            "artifactUri": f"s3://{s3.bucket}/artifacts/diabetes/v1",
        },
    )
    assert set(champion.metrics) == {"rmse", "mae", "r2"} and champion.metrics["r2"] > 0.3
    proc, challenger = _train(
        s3,
        tmp_path,
        {
            **base,
            "estimator": {"classPath": "sklearn.tree.DecisionTreeRegressor", "params": {"max_depth": 2}},
            "artifactUri": f"s3://{s3.bucket}/artifacts/diabetes/v2",
            "champion": {"artifactUri": champion.artifact_uri, "version": "1", "digest": champion.digest},
        },
    )
    # same data, same seed, same split: the champion re-scores exactly as when it was trained
    assert challenger.champion_metrics == champion.metrics
    assert challenger.data_hash == champion.data_hash
    assert "champion: rmse=" in proc.stdout
    art = read_artifact(challenger.artifact_uri, ("sklearn.",), env=s3.env())
    assert art.metrics.champion == champion.metrics and art.metrics.champion_version == "1"
