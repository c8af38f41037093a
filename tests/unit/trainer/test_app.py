"""The ASGI app driven in-process, route by route (the real server process is tested in integration)."""

import asyncio
import json

import numpy as np
import pytest
from kubeloop.contract import ClassPredictions, Feature, ModelSignature, MonitoringSnapshot
from kubeloop.drift.profile import build_profile
from kubeloop_trainer.serve.app import InferenceApp, Served
from kubeloop_trainer.serve.feedback import FeedbackJoiner
from kubeloop_trainer.serve.monitor import LiveMonitor
from kubeloop_trainer.serve.predictor import Predictor
from sklearn.linear_model import LogisticRegression

RNG = np.random.default_rng(5)
X = RNG.normal(size=(100, 2))
Y = np.where(X[:, 0] > 0, "pos", "neg")
SIG = ModelSignature(
    task="classification",
    target="y",
    target_type="string",
    features=[Feature(name="a", type="float"), Feature(name="b", type="float")],
    classes=["neg", "pos"],
    estimator="sklearn.linear_model.LogisticRegression",
    probabilities=True,
)


def _served() -> Served:
    profile = build_profile({"a": X[:, 0], "b": X[:, 1]}, {})
    return Served(
        name="demo",
        version="7",
        predictor=Predictor(LogisticRegression().fit(X, Y), SIG),
        monitor=LiveMonitor(
            model="demo",
            version="7",
            digest="sha256:abc",
            signature=SIG,
            profile=profile,
            predictions=ClassPredictions(classes=["neg", "pos"], counts=[1, 1]),
        ),
        feedback=FeedbackJoiner("classification"),
        server_version="test",
    )


def call(app, method, path, body=b"", headers=()):
    async def run():
        sent = []
        chunks = [body[:7], body[7:]] if len(body) > 7 else [body]  # exercise multi-chunk bodies

        async def receive():
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": method, "path": path, "headers": list(headers)}
        await app(scope, receive, send)
        start, payload = sent
        hdrs = dict(start["headers"])
        assert int(hdrs[b"content-length"]) == len(payload["body"])
        return start["status"], hdrs, payload["body"]

    return asyncio.run(run())


@pytest.fixture
def app():
    a = InferenceApp(_served, max_body_bytes=10_000)
    a.install(_served())
    return a


def _infer_body(rows, **extra):
    return json.dumps({"inputs": [{"name": "x", "shape": list(rows.shape), "datatype": "FP64", "data": rows.tolist()}],
                       **extra}).encode()  # fmt: skip


def test_health_and_metadata(app):
    assert call(app, "GET", "/v2/health/live")[0] == 200
    assert call(app, "GET", "/v2/health/ready")[:1] == (200,)
    status, _, body = call(app, "GET", "/v2/models/demo")
    meta = json.loads(body)
    assert status == 200 and meta["name"] == "demo" and meta["versions"] == ["7"]
    assert [i["name"] for i in meta["inputs"]] == ["a", "b"]
    assert call(app, "GET", "/v2/models/demo/versions/7/ready")[0] == 200
    assert json.loads(call(app, "GET", "/v2")[2])["extensions"] == ["binary_tensor_data"]


def test_not_ready_until_loaded():
    a = InferenceApp(_served)
    assert call(a, "GET", "/v2/health/live")[0] == 200
    assert call(a, "GET", "/v2/health/ready")[0] == 503
    status, _, body = call(a, "POST", "/v2/models/demo/infer", b"{}")
    assert status == 503 and json.loads(body) == {"error": "the model is still loading"}


def test_infer_returns_v2_outputs_and_the_request_id(app):
    rows = X[:4]
    status, headers, body = call(app, "POST", "/v2/models/demo/versions/7/infer", _infer_body(rows, id="abc"))
    assert status == 200 and headers[b"content-type"] == b"application/json"
    out = json.loads(body)
    assert out["id"] == "abc" and out["model_name"] == "demo" and out["model_version"] == "7"
    (predict,) = out["outputs"]
    assert predict["name"] == "predict" and predict["datatype"] == "BYTES" and predict["shape"] == [4]
    assert predict["data"] == np.where(rows[:, 0] > 0, "pos", "neg").tolist()


def test_generated_ids_are_unique(app):
    ids = {
        json.loads(call(app, "POST", "/v2/models/demo/infer", _infer_body(X[:1]))[2])["id"] for _ in range(3)
    }
    assert len(ids) == 3


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "fragment"),
    [
        ("POST", "/v2/models/demo/infer", b"{oops", 400, "not valid JSON"),
        ("POST", "/v2/models/demo/infer", json.dumps({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64",
                                                                   "data": [1, 2, 3]}]}).encode(), 400, "3 columns"),
        ("POST", "/v2/models/other/infer", b"{}", 404, "this server serves 'demo' version '7'"),
        ("POST", "/v2/models/demo/versions/8/infer", b"{}", 404, "no such model or route"),
        ("GET", "/v2/models/demo/infer", b"", 405, "GET is not allowed"),
        ("GET", "/nope", b"", 404, "no such route"),
        ("POST", "/v2/models/demo/infer", b"x" * 10_001, 413, "larger than 10000 bytes"),
    ],
)  # fmt: skip
def test_errors_are_v2_error_bodies(app, method, path, body, status, fragment):
    got, headers, payload = call(app, method, path, body)
    assert got == status
    assert headers[b"content-type"] == b"application/json"
    doc = json.loads(payload)
    assert list(doc) == ["error"] and fragment in doc["error"]
    assert "Traceback" not in doc["error"]


def test_an_internal_failure_is_a_500_without_a_trace(app, capsys):
    def explode(X):
        raise RuntimeError("secret internals")

    app.served.predictor.model.predict = explode
    status, _, payload = call(app, "POST", "/v2/models/demo/infer", _infer_body(X[:1]))
    assert status == 500
    assert json.loads(payload) == {"error": "internal error (RuntimeError); see the server log"}
    assert "secret internals" in capsys.readouterr().err  # the trace goes to the log only
    assert app.served.monitor.errors["internal"] == 1


def test_monitoring_feedback_and_metrics_follow_traffic(app):
    rows = X[:10]
    body = call(app, "POST", "/v2/models/demo/infer", _infer_body(rows, id="req-1"))[2]
    predicted = json.loads(body)["outputs"][0]["data"]
    truth = np.where(rows[:, 0] > 0, "pos", "neg").tolist()
    truth[0] = "neg" if truth[0] == "pos" else "pos"  # one wrong label
    status, _, fb = call(
        app, "POST", "/v2/models/demo/feedback", json.dumps({"requestId": "req-1", "labels": truth}).encode()
    )
    assert status == 200
    fb = json.loads(fb)
    assert fb["joined"] == 10
    assert fb["correct"] == sum(t == p for t, p in zip(truth, predicted, strict=True)) == 9
    assert call(app, "POST", "/v2/models/demo/feedback", b'{"requestId": "nope", "labels": [1]}')[0] == 404
    assert call(app, "POST", "/v2/models/demo/feedback", b'{"labels": [1]}')[0] == 400

    snap = MonitoringSnapshot.model_validate_json(call(app, "GET", "/v2/models/demo/monitoring")[2])
    assert snap.rows == 10 and snap.requests == 1
    assert sum(snap.numeric["a"]) == 10 and sum(snap.predictions.counts) == 10
    assert snap.feedback.accuracy == pytest.approx(0.9)
    assert len(snap.sample["a"]) == 10

    status, headers, text = call(app, "GET", "/metrics")
    text = text.decode()
    assert status == 200 and headers[b"content-type"].startswith(b"text/plain")
    assert 'kubeloop_inference_requests_total{model="demo",version="7"} 1.0' in text
    assert 'kubeloop_inference_latency_seconds_count{model="demo",version="7"} 1.0' in text
    assert 'kubeloop_feedback_rows_total{model="demo",outcome="correct",version="7"} 9.0' in text
    n_pos = sum(p == "pos" for p in predicted)
    assert f'kubeloop_predictions_total{{class="pos",model="demo",version="7"}} {float(n_pos)}' in text
    bins = [
        line
        for line in text.splitlines()
        if line.startswith("kubeloop_feature_bin_total{bin=") and 'feature="a"' in line
    ]
    assert len(bins) == len(snap.numeric["a"]) and sum(float(b.split()[-1]) for b in bins) == 10


def test_binary_request_from_the_triton_client_layout(app):
    import tritonclient.http as triton

    i = triton.InferInput("x", [3, 2], "FP64")
    i.set_data_from_numpy(X[:3], binary_data=True)
    body, json_size = triton.InferenceServerClient.generate_request_body([i], request_id="bin")
    status, headers, payload = call(
        app,
        "POST",
        "/v2/models/demo/infer",
        body,
        [(b"inference-header-content-length", str(json_size).encode())],
    )
    assert status == 200
    result = triton.InferResult.from_response_body(
        payload, header_length=int(headers[b"inference-header-content-length"])
    )
    assert [v.decode() for v in result.as_numpy("predict").tolist()] == np.where(
        X[:3, 0] > 0, "pos", "neg"
    ).tolist()
