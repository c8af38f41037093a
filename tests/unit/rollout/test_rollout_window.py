"""Step windows: baselines, counter resets, pods without a baseline, sums per version."""

from __future__ import annotations

from datetime import UTC, datetime

from kubeloop.rollout.metrics import ServerCounters
from kubeloop.rollout.window import Baseline, Traffic, accumulate_stable, delta, traffic

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
BOUNDS = [0.01, 0.1]


def counters(started: float, requests: float, errors: float = 0, latency=(0, 0, 0), preds=(0, 0), **kw):
    return ServerCounters(
        version=kw.get("version", "2"),
        started=started,
        requests=requests,
        server_errors=errors,
        latency_bounds=BOUNDS,
        latency=list(latency),
        prediction_labels=["a", "b"],
        predictions=list(preds),
        feedback_joined=kw.get("joined", 0),
        feedback_correct=kw.get("correct"),
    )


def test_delta_of_the_same_process():
    before = counters(100.0, 10, 1, (5, 4, 1), (6, 4), joined=2, correct=1)
    now = counters(100.0, 25, 3, (12, 10, 3), (15, 10), joined=10, correct=7)
    d = delta(now, before)
    assert d is not None
    assert (d.requests, d.server_errors, d.latency, d.predictions) == (15, 2, [7, 6, 2], [9, 6])
    assert (d.feedback_joined, d.feedback_correct) == (8, 6)


def test_a_restart_is_not_a_delta():
    assert delta(counters(200.0, 3), counters(100.0, 10)) is None  # new start time
    assert delta(counters(100.0, 3), counters(100.0, 10)) is None  # counter went backwards


def test_traffic_counts_restarted_and_new_pods_fully_and_skips_unknown_old_ones():
    taken = T0.timestamp()
    baseline = Baseline(
        step=1,
        taken_at=T0,
        pods={
            "p1": counters(taken - 60, 10, 0, (10, 0, 0), (5, 5)),
            "p2": counters(taken - 60, 50, 0, (50, 0, 0), (25, 25)),
        },
    )
    current = {
        "p1": counters(taken - 60, 30, 2, (28, 2, 0), (15, 5)),  # +20 requests, +2 errors
        "p2": counters(taken + 5, 4, 0, (4, 0, 0), (4, 0)),  # restarted within the step: all 4 count
        "p3": counters(taken + 10, 6, 0, (5, 1, 0), (0, 6)),  # started within the step
        "p4": counters(taken - 300, 99, 0, (99, 0, 0), (50, 49)),  # old pod with no baseline: unknown window
    }
    t = traffic(baseline, current, current.keys())
    assert t.pods == 3 and t.skipped == ["p4 (no baseline)"]
    assert (t.requests, t.server_errors) == (30, 2)
    assert t.latency == [18 + 4 + 5, 2 + 1, 0]
    assert t.predictions == {"a": 10 + 4 + 0, "b": 0 + 0 + 6}


def test_traffic_of_no_pods_is_empty():
    t = traffic(Baseline(step=0, taken_at=T0), {}, [])
    assert t.pods == 0 and t.requests == 0 and t.predictions == {}


def test_stable_predictions_accumulate_across_steps():
    baseline = Baseline(
        step=2, taken_at=T0, stable_predictions={"a": 10, "b": 5}, stable_prediction_kind="class"
    )
    stable = Traffic(pods=1, prediction_kind="class", predictions={"a": 1, "b": 2, "c": 3})
    total, kind = accumulate_stable(baseline, stable)
    assert total == {"a": 11, "b": 7, "c": 3} and kind == "class"
    empty_start = Baseline(step=0, taken_at=T0)
    assert accumulate_stable(empty_start, stable) == ({"a": 1, "b": 2, "c": 3}, "class")


def test_baseline_round_trips_through_json():
    baseline = Baseline(step=1, taken_at=T0, pods={"p": counters(1.0, 2, correct=1)})
    assert Baseline.model_validate_json(baseline.model_dump_json()) == baseline
