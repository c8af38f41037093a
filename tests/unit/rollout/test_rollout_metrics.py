"""Parsing what the real model server exports (rendered by the server's own code, not a hand-written copy)."""

from __future__ import annotations

import numpy as np
import pytest
from kubeloop.contract import ClassPredictions, Feature, ModelSignature, ValuePredictions
from kubeloop.drift.profile import build_profile
from kubeloop.rollout.metrics import parse_server_metrics
from kubeloop_trainer.serve import prometheus
from kubeloop_trainer.serve.feedback import FeedbackJoiner
from kubeloop_trainer.serve.monitor import LATENCY_BUCKETS, LiveMonitor

RNG = np.random.default_rng(3)
FEATURES = [Feature(name="a", type="float"), Feature(name="b", type="float")]


def _classifier() -> tuple[LiveMonitor, FeedbackJoiner]:
    sig = ModelSignature(
        task="classification",
        target="y",
        target_type="string",
        features=FEATURES,
        classes=["neg", "pos"],
        estimator="e",
    )
    profile = build_profile({"a": RNG.normal(size=100), "b": RNG.normal(size=100)}, {})
    monitor = LiveMonitor(
        model="iris",
        version="4",
        digest="sha256:x",
        signature=sig,
        profile=profile,
        predictions=ClassPredictions(classes=["neg", "pos"], counts=[5, 5]),
    )
    return monitor, FeedbackJoiner("classification")


def test_classification_server_counters():
    monitor, feedback = _classifier()
    latencies = [0.0004, 0.0015, 0.004, 0.2, 20.0]
    for i, latency in enumerate(latencies):
        predicted = np.array(["pos", "neg", "pos"]) if i % 2 else np.array(["neg"])
        monitor.record(RNG.normal(size=(len(predicted), 2)), predicted, latency)
        feedback.remember(f"r{i}", predicted)
    monitor.record_error("internal", 0.003)
    monitor.record_error("bad_request", 0.0002)
    monitor.record_error("internal", 0.003)
    feedback.join("r1", ["pos", "pos", "pos"])  # 2 of 3 right
    counters = parse_server_metrics(prometheus.render(monitor, feedback).decode())
    assert counters is not None
    assert counters.version == "4"
    assert counters.started == pytest.approx(monitor.started_at.timestamp())
    assert counters.requests == 8
    assert (counters.server_errors, counters.client_errors) == (2, 1)
    assert counters.latency_bounds == list(LATENCY_BUCKETS)
    assert len(counters.latency) == len(LATENCY_BUCKETS) + 1
    expected = np.bincount(
        np.searchsorted(LATENCY_BUCKETS, [*latencies, 0.003, 0.0002, 0.003], side="left"),
        minlength=len(LATENCY_BUCKETS) + 1,
    )
    assert counters.latency == expected.tolist()  # per bucket, the 20 s request above them all
    assert counters.prediction_kind == "class"
    assert dict(zip(counters.prediction_labels, counters.predictions, strict=True)) == {"neg": 5, "pos": 4}
    assert (counters.feedback_joined, counters.feedback_correct) == (3, 2)


def test_regression_predictions_keep_their_bins():
    sig = ModelSignature(task="regression", target="y", target_type="float", features=FEATURES, estimator="e")
    profile = build_profile({"a": RNG.normal(size=100), "b": RNG.normal(size=100)}, {})
    monitor = LiveMonitor(
        model="house",
        version="2",
        digest="sha256:y",
        signature=sig,
        profile=profile,
        predictions=ValuePredictions(edges=[0.0, 10.0], counts=[0, 0, 0]),
    )
    monitor.record(RNG.normal(size=(4, 2)), np.array([-1.0, 5.0, 10.0, 11.0]), 0.001)
    feedback = FeedbackJoiner("regression")
    counters = parse_server_metrics(prometheus.render(monitor, feedback).decode())
    assert counters is not None and counters.prediction_kind == "value"
    assert counters.prediction_labels == ["0.0", "10.0", "+Inf"]
    assert counters.predictions == [1, 2, 1]
    assert counters.feedback_correct is None  # no accuracy for regression


def test_a_loading_server_exports_nothing_yet():
    assert parse_server_metrics("") is None


def test_garbage_is_an_error():
    with pytest.raises(ValueError):
        parse_server_metrics("this is { not prometheus")
