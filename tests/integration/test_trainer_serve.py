"""The real `kubeloop-trainer serve` process: a V2 client we did not write, errors, monitoring, safety."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import requests
import skops.io as sio
import tritonclient.http as triton
from kubeloop.contract import (
    Manifest,
    MonitoringSnapshot,
    hash_file,
    parse_termination_message,
    seal,
)
from kubeloop_trainer.artifact import read_artifact
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import FunctionTransformer

pytestmark = pytest.mark.integration

TRAINER = shutil.which("kubeloop-trainer") or str(Path(sys.executable).parent / "kubeloop-trainer")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBELOOP_", "AWS_", "POD_IP"))}
    env.update(extra)
    return env


@contextmanager
def server(model_uri: str, tmp_path: Path, **env: str) -> Iterator[str]:
    """Run `kubeloop-trainer serve` until the model is ready; yields its base URL."""
    host = env.setdefault("KUBELOOP_BIND_ADDRESS", "127.0.0.1")
    port = free_port(host)
    log = open(tmp_path / f"server-{port}.log", "w+")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [TRAINER, "serve", "--model-uri", model_uri, "--model-version", "3"],
        env=clean_env(KUBELOOP_PORT=str(port), KUBELOOP_TERMINATION_LOG=str(tmp_path / "serve-term"), **env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"server exited: {Path(log.name).read_text()}"
            try:
                if requests.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "server not ready within 60 s"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def train(tmp_path: Path, out: Path) -> dict:
    data = tmp_path / "bc.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(data, index=False)
    task = {
        "model": "cancer",
        "data": {"uri": f"file://{data}", "target": "target"},
        "estimator": {"classPath": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 3000}},
        "artifactUri": f"file://{out}",
    }
    term = tmp_path / "train-term"
    subprocess.run(
        [TRAINER, "train"],
        env=clean_env(KUBELOOP_TASK=json.dumps(task), KUBELOOP_TERMINATION_LOG=str(term)),
        check=True,
        capture_output=True,
        timeout=300,
    )
    return parse_termination_message(term.read_text()).model_dump()


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("serve")
    train(tmp, tmp / "artifact")
    return tmp / "artifact"


@pytest.fixture(scope="module")
def served(artifact, tmp_path_factory) -> Iterator[str]:
    with server(f"file://{artifact}", tmp_path_factory.mktemp("srv")) as url:
        yield url


@pytest.fixture(scope="module")
def data():
    return load_breast_cancer(return_X_y=True)


def test_tritonclient_infer_gets_the_model_predictions(served, artifact, data):
    X, _ = data
    model = read_artifact(f"file://{artifact}", ("sklearn.",)).model
    client = triton.InferenceServerClient(url=served.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("cancer") and client.is_model_ready("cancer", "3")
    meta = client.get_model_metadata("cancer")
    assert meta["name"] == "cancer" and meta["versions"] == ["3"] and len(meta["inputs"]) == 30
    rows = X[100:164]
    expected = model.predict(rows)
    for binary in (False, True):  # tritonclient's JSON and its default binary tensor encoding
        tensor = triton.InferInput("input-0", list(rows.shape), "FP64")
        tensor.set_data_from_numpy(rows, binary_data=binary)
        outputs = [
            triton.InferRequestedOutput("predict", binary_data=binary),
            triton.InferRequestedOutput("predict_proba", binary_data=binary),
        ]
        result = client.infer(
            "cancer", [tensor], model_version="3", outputs=outputs, request_id=f"tc-{binary}"
        )
        np.testing.assert_array_equal(result.as_numpy("predict"), expected)
        np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(rows), rtol=1e-12)
        assert result.get_response()["id"] == f"tc-{binary}"
    # no outputs named: tritonclient asks for binary outputs of the defaults
    tensor = triton.InferInput("input-0", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows.astype(np.float32))
    result = client.infer("cancer", [tensor])
    np.testing.assert_array_equal(
        result.as_numpy("predict"), model.predict(rows.astype(np.float32).astype(float))
    )
    client.close()


def test_inputs_by_feature_name(served, data):
    X, _ = data
    names = load_breast_cancer().feature_names
    body = {
        "inputs": [
            {"name": n, "shape": [2], "datatype": "FP64", "data": X[:2, j].tolist()}
            for j, n in enumerate(names)
        ]
    }
    by_name = requests.post(f"{served}/v2/models/cancer/infer", json=body, timeout=10).json()
    matrix = {"inputs": [{"name": "x", "shape": [2, 30], "datatype": "FP64", "data": X[:2].tolist()}]}
    by_matrix = requests.post(f"{served}/v2/models/cancer/infer", json=matrix, timeout=10).json()
    assert by_name["outputs"] == by_matrix["outputs"]
    assert by_name["outputs"][0]["shape"] == [2] and by_name["outputs"][0]["datatype"] == "INT64"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "not valid JSON"),
        (json.dumps({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}), "30 features"),
        (json.dumps({"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", "data": [None] * 30}]}), "NaN"),
        (json.dumps({"inputs": [{"name": "x", "shape": [2, 30], "datatype": "FP64", "data": [1] * 30}]}), "needs 60"),
    ],
)  # fmt: skip
def test_bad_requests_get_400_with_a_v2_error(served, body, fragment):
    response = requests.post(f"{served}/v2/models/cancer/infer", data=body, timeout=10)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    error = response.json()
    assert list(error) == ["error"] and fragment in error["error"]


def test_monitoring_feedback_and_metrics(served, data):
    X, y = data
    before = MonitoringSnapshot.model_validate(
        requests.get(f"{served}/v2/models/cancer/monitoring", timeout=10).json()
    )
    body = {
        "id": "batch-1",
        "inputs": [{"name": "x", "shape": [50, 30], "datatype": "FP64", "data": X[:50].tolist()}],
    }
    out = requests.post(f"{served}/v2/models/cancer/infer", json=body, timeout=10).json()
    predicted = out["outputs"][0]["data"]
    fb = requests.post(
        f"{served}/v2/models/cancer/feedback",
        json={"requestId": "batch-1", "labels": y[:50].tolist()},
        timeout=10,
    ).json()
    assert fb["joined"] == 50 and fb["correct"] == int(np.sum(np.asarray(predicted) == y[:50]))
    after = MonitoringSnapshot.model_validate(
        requests.get(f"{served}/v2/models/cancer/monitoring", timeout=10).json()
    )
    assert after.server_id == before.server_id and after.version == "3"
    assert after.rows - before.rows == 50
    assert sum(after.numeric["mean radius"]) - sum(before.numeric["mean radius"]) == 50
    assert after.feedback.joined - before.feedback.joined == 50
    metrics = requests.get(f"{served}/metrics", timeout=10).text
    assert f'kubeloop_inference_rows_total{{model="cancer",version="3"}} {float(after.rows)}' in metrics
    assert 'kubeloop_feature_bin_total{bin="0",feature="mean radius"' in metrics


def test_binds_the_configured_address(artifact, tmp_path):
    with server(f"file://{artifact}", tmp_path, KUBELOOP_BIND_ADDRESS="127.0.0.3") as url:
        assert url.startswith("http://127.0.0.3:")
        assert requests.get(f"{url}/v2/models/cancer/ready", timeout=5).json() == {
            "name": "cancer",
            "ready": True,
        }


def _forge(artifact: Path, tmp_path: Path, model_bytes: bytes) -> Path:
    """A copy of the artifact with another model file and a manifest recomputed to match it, as an attacker
    with write access to the store would make it."""
    forged = tmp_path / "forged"
    shutil.copytree(artifact, forged)
    (forged / "model.skops").write_bytes(model_bytes)
    manifest = Manifest.model_validate_json((forged / "manifest.json").read_text())
    files = {name: hash_file(forged / name) for name in manifest.files}
    manifest = seal(manifest.model_copy(update={"files": files}))
    (forged / "manifest.json").write_text(manifest.model_dump_json())
    return forged


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = "/tmp/kubeloop-serve-pwned"


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: sio.dumps(FunctionTransformer(func=os.system)), "outside the allow-list"),
        (lambda: pickle.dumps(_Payload()), "not in the skops format"),
    ],
    ids=["skops-with-os.system", "pickle"],
)
def test_a_malicious_model_is_refused_at_load(artifact, tmp_path, make, fragment):
    if os.path.exists(MARKER):
        os.remove(MARKER)
    forged = _forge(artifact, tmp_path, make())
    port = free_port()
    term = tmp_path / "term"
    proc = subprocess.run(
        [TRAINER, "serve", "--model-uri", f"file://{forged}", "--host", "127.0.0.1", "--port", str(port)],
        env=clean_env(KUBELOOP_TERMINATION_LOG=str(term)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert fragment in proc.stderr and fragment in term.read_text()
    assert "model load failed" in term.read_text()
    assert not os.path.exists(MARKER)


def test_a_digest_mismatch_is_refused(artifact, tmp_path):
    proc = subprocess.run(
        [
            TRAINER,
            "serve",
            "--model-uri",
            f"file://{artifact}",
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port()),
        ],
        env=clean_env(
            KUBELOOP_MODEL_DIGEST="sha256:" + "0" * 64, KUBELOOP_TERMINATION_LOG=str(tmp_path / "t")
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "expected sha256:000" in proc.stderr
