import math

import numpy as np
import pytest
from kubeloop.contract import ClassPredictions, Feature, ModelSignature, ValuePredictions
from kubeloop.drift.profile import build_profile, count_categorical, count_numeric
from kubeloop_trainer.serve.codec import BadRequest
from kubeloop_trainer.serve.feedback import FeedbackJoiner
from kubeloop_trainer.serve.monitor import LiveMonitor, Reservoir
from scipy.stats import kstest

RNG = np.random.default_rng(11)


def test_reservoir_is_bounded_and_uniform():
    r = Reservoir(capacity=500, n_columns=1, seed=1)
    stream = np.arange(20_000, dtype=float)
    for chunk in np.array_split(stream, 137):  # uneven batches, as requests come
        r.offer(chunk.reshape(-1, 1))
    sample = np.asarray(r.column(0))
    assert r.seen == 20_000 and sample.size == 500
    assert len(set(sample.tolist())) == 500  # rows, not duplicates
    # a uniform sample of 0..19999: KS against the uniform distribution must not reject
    assert kstest(sample / 20_000, "uniform").pvalue > 0.01


def test_reservoir_keeps_everything_until_full():
    r = Reservoir(capacity=10, n_columns=2, seed=0)
    r.offer(np.array([[1.0, np.nan], [2.0, 5.0]]))
    assert r.column(0) == [1.0, 2.0] and r.column(1) == [5.0]  # NaN left out per feature


SIG = ModelSignature(
    task="classification",
    target="y",
    target_type="string",
    features=[Feature(name="x", type="float"), Feature(name="color", type="string")],
    classes=["no", "yes"],
    estimator="e",
)


def _monitor(flush_rows=64):
    x_ref = RNG.normal(size=1000)
    c_ref = RNG.choice(["red", "blue", "green"], size=1000).astype(object)
    profile = build_profile({"x": x_ref}, {"color": c_ref})
    return LiveMonitor(
        model="m",
        version="3",
        digest="sha256:d",
        signature=SIG,
        profile=profile,
        predictions=ClassPredictions(classes=["no", "yes"], counts=[5, 5]),
        reservoir_size=50,
        flush_rows=flush_rows,
    ), profile


def test_live_counts_equal_count_numeric_and_count_categorical_over_all_rows():
    monitor, profile = _monitor()
    batches = []
    for i in range(40):
        n = 1 + i % 5
        xs = RNG.normal(loc=0.5, size=n)
        xs[0] = np.nan if i % 7 == 0 else xs[0]
        colors = RNG.choice(["red", "blue", "purple", None], size=n).astype(object)
        X = np.empty((n, 2), dtype=object)
        X[:, 0], X[:, 1] = xs, colors
        preds = np.where(RNG.random(n) > 0.3, "yes", "no").astype(object)
        monitor.record(X, preds, 0.001 * (i % 4))
        batches.append((xs, colors, preds))
    monitor.record_error("bad_request", 0.02)
    snap = monitor.snapshot(FeedbackJoiner("classification").stats())
    all_x = np.concatenate([b[0] for b in batches])
    all_c = np.concatenate([b[1] for b in batches])
    all_p = np.concatenate([b[2] for b in batches])
    assert snap.numeric["x"] == count_numeric(profile.numeric["x"], all_x).tolist()
    assert snap.categorical["color"] == count_categorical(profile.categorical["color"], all_c).tolist()
    assert snap.missing == {"x": int(np.isnan(all_x).sum()), "color": int(sum(v is None for v in all_c))}
    assert snap.rows == len(all_x) and snap.requests == 41 and snap.errors == 1
    assert isinstance(snap.predictions, ClassPredictions)
    assert snap.predictions.counts == [int(np.sum(all_p == "no")), int(np.sum(all_p == "yes"))]
    assert snap.sample_seen == len(all_x) and len(snap.sample["x"]) <= 50
    assert set(snap.sample["x"]) <= set(all_x[np.isfinite(all_x)].tolist())
    assert int(monitor.latency_counts.sum()) == 41
    assert monitor.latency_sum == pytest.approx(sum(0.001 * (i % 4) for i in range(40)) + 0.02)


def test_regression_predictions_are_binned():
    profile = build_profile({"x": RNG.normal(size=200)}, {})
    sig = SIG.model_copy(
        update={"task": "regression", "features": [Feature(name="x", type="float")], "classes": None}
    )
    monitor = LiveMonitor(
        model="m",
        version="1",
        digest="d",
        signature=sig,
        profile=profile,
        predictions=ValuePredictions(edges=[0.0, 10.0], counts=[0, 0, 0]),
    )
    monitor.record(np.array([[1.0], [2.0], [3.0]]), np.array([-1.0, 5.0, 10.0]), 0.001)
    monitor.record(np.array([[1.0]]), np.array([11.0]), 0.001)
    snap = monitor.snapshot(FeedbackJoiner("regression").stats())
    assert snap.predictions.counts == [1, 2, 1]  # right-closed: 10.0 falls in (0, 10]
    assert monitor.prediction_sum == pytest.approx(25.0)


def test_feedback_joins_by_request_id_and_forgets_after_joining():
    joiner = FeedbackJoiner("classification")
    joiner.remember("r1", np.array([1, 0, 1]))
    joiner.remember("r2", np.array(["a"], dtype=object))
    assert joiner.join("r1", [1, 1, "1"]) == {"joined": 3, "correct": 2}
    assert joiner.join("r2", ["a"]) == {"joined": 1, "correct": 1}
    with pytest.raises(BadRequest, match="no remembered prediction") as err:
        joiner.join("r1", [1, 1, 1])  # already joined
    assert err.value.status == 404
    stats = joiner.stats()
    assert (stats.joined, stats.correct, stats.unmatched, stats.received) == (4, 3, 3, 7)
    assert stats.accuracy == pytest.approx(0.75)


def test_feedback_rejects_wrong_length():
    joiner = FeedbackJoiner("classification")
    joiner.remember("r", np.array([1, 2]))
    with pytest.raises(BadRequest, match="had 2 rows, got 1 labels"):
        joiner.join("r", [1])


def test_feedback_regression_error():
    joiner = FeedbackJoiner("regression")
    joiner.remember("r", np.array([1.0, 2.0, 4.0]))
    joiner.join("r", [2.0, 2.0, 1.0])
    stats = joiner.stats()
    assert stats.mae == pytest.approx(4 / 3)
    assert stats.rmse == pytest.approx(math.sqrt(10 / 3))
    assert stats.accuracy is None


def test_feedback_memory_is_bounded_oldest_first():
    joiner = FeedbackJoiner("classification", max_requests=3, max_rows=5)
    for i in range(5):
        joiner.remember(f"r{i}", np.array([i]))
    assert list(joiner._recent) == ["r2", "r3", "r4"]
    joiner.remember("big", np.array([1, 1, 1, 1]))  # 4 rows: only room for one more row
    assert list(joiner._recent) == ["r4", "big"]
    with pytest.raises(BadRequest):
        joiner.join("r0", [0])
