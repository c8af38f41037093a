"""The traffic client against a small stand-in server on loopback, EndpointSlice parsing, and the plot."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from kubeloop_demo.data import FEATURES, iris
from kubeloop_demo.kube import Endpoint, endpoints_of
from kubeloop_demo.observe import FeatureScore, Window
from kubeloop_demo.plot import accuracy_series, evidence, write_plot
from kubeloop_demo.traffic import Request, Traffic, infer_body, predictions


class _Server(BaseHTTPRequestHandler):
    """Answers V2 infer with class 0 for every row, and accepts feedback for ids it gave out."""

    version = "7"
    given: set[str]
    feedback: list[dict]

    def log_message(self, *_):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.endswith("/infer"):
            rows = body["inputs"][0]["shape"][0]
            rid = f"r{len(self.server.given)}"
            self.server.given.add(rid)
            answer = {
                "model_version": self.version,
                "id": rid,
                "outputs": [{"name": "predict", "shape": [rows], "datatype": "INT64", "data": [0] * rows}],
            }
            status = 200
        elif self.path.endswith("/feedback") and body["requestId"] in self.server.given:
            self.server.feedback.append(body)
            answer, status = {}, 200
        else:
            answer, status = {"error": "unknown"}, 404
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    httpd.given, httpd.feedback = set(), []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()


class _Kube:
    """The Service's address (here: a local server standing in for the ClusterIP) and its pods."""

    def __init__(self, service, endpoints):
        self._service = service
        self._endpoints = endpoints

    def service_address(self, namespace, service):
        return self._service

    def endpoints(self, namespace, service):
        return self._endpoints

    def close(self):
        pass


def test_traffic_sends_paced_requests_and_feedback(server):
    port = server.server_address[1]
    service = Endpoint("iris-serving", "127.0.0.1", port, True)
    pods = [Endpoint("pod-a", "10.0.1.2", 8080, True), Endpoint("pod-b", "10.0.1.3", 8080, False)]
    t0 = time.monotonic()
    traffic = Traffic(
        lambda: _Kube(service, pods),
        "ns",
        "iris",
        lambda: "iris-serving",
        iris(),
        rate=20,
        rows=5,
        seed=1,
        clock=lambda: time.monotonic() - t0,
    ).start()
    time.sleep(1.6)
    traffic.stop()
    records = traffic.records()
    assert 20 <= len(records) <= 40, len(records)  # paced at 20/s
    assert all(r.ok and r.version == "7" and r.rows == 5 for r in records)
    assert all(r.feedback_ok for r in records)
    assert len(server.feedback) == len(records)
    assert all(len(f["labels"]) == 5 for f in server.feedback)
    # the server always answers class 0: accuracy is the share of setosa among the rows sent
    labels = [y for f in server.feedback for y in f["labels"]]
    assert sum(r.correct for r in records) == labels.count(0)
    summary = traffic.summary(window=10.0)
    assert summary.share == {"7": 1.0} and summary.errors == 0 and summary.endpoints == 1  # pod-b not ready


def test_infer_body_and_predictions():
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.0, 3.0, 4.8, 1.8]])
    body = json.loads(infer_body(rows))
    assert [i["name"] for i in body["inputs"]] == list(FEATURES)
    assert body["inputs"][3] == {"name": "petal_width", "shape": [2], "datatype": "FP64", "data": [0.2, 1.8]}
    assert predictions({"outputs": [{"name": "predict_proba"}, {"name": "predict", "data": [0, 2]}]}) == [
        0,
        2,
    ]
    with pytest.raises(ValueError):
        predictions({"outputs": []})


def test_endpoints_of_slices():
    slices = [
        {
            "ports": [{"name": "http", "port": 8080}],
            "endpoints": [
                {
                    "addresses": ["10.200.1.2"],
                    "conditions": {"ready": True},
                    "targetRef": {"name": "iris-v1-a"},
                },
                {
                    "addresses": ["10.200.1.3"],
                    "conditions": {"ready": False},
                    "targetRef": {"name": "iris-v2-b"},
                },
            ],
        },
        {"ports": None, "endpoints": [{"addresses": ["10.200.1.9"]}]},  # no port yet: skipped
    ]
    assert endpoints_of(slices) == [
        Endpoint("iris-v1-a", "10.200.1.2", 8080, True),
        Endpoint("iris-v2-b", "10.200.1.3", 8080, False),
    ]
    assert endpoints_of(slices)[0].url == "http://10.200.1.2:8080"


def _request(t, version, correct, rows=10):
    return Request(t, "w", version, rows, correct, 1.0, True)


def test_accuracy_series_buckets_per_version():
    series = accuracy_series(
        [_request(1, "1", 10), _request(2, "1", 5), _request(6, "1", 2), _request(7, "2", 9)]
    )
    assert series == {"1": [(2.5, 0.75), (7.5, 0.2)], "2": [(7.5, 0.9)]}


def test_evidence_is_capped_minus_log10_p():
    assert evidence(1e-3) == pytest.approx(3.0)
    assert evidence(0.0) == 20.0 and evidence(None) is None


def test_write_plot_makes_a_png(tmp_path):
    windows = [
        Window(
            10.0 * i,
            i,
            "iris-v1",
            "NoDrift" if i < 3 else "Drift",
            640,
            None,
            {"petal_width": FeatureScore(1.0, 0.5 if i < 3 else 1e-40, 0.0025, i >= 3)},
            0.97,
        )
        for i in range(1, 6)
    ]
    requests = [_request(float(t), "1", 9) for t in range(60)]
    path = write_plot(tmp_path / "p.png", windows, requests, {"shift started": 25.0}, "title")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
