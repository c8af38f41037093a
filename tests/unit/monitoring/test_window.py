"""Window aggregation across replicas: deltas, restarts, counter resets, new pods, lost baselines."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from kubeloop.drift import count_categorical, count_numeric
from kubeloop.monitoring.window import Baselines, Contribution, aggregate

from .conftest import T0


def _counts(profile, *batches):
    X = np.concatenate(batches)
    numeric = {
        n: count_numeric(profile.numeric[n], X[:, j].astype(float)) for j, n in enumerate(("x0", "x1", "x2"))
    }
    colour = count_categorical(profile.categorical["colour"], X[:, 3])
    return numeric, colour


def _check(window, profile, *batches):
    numeric, colour = _counts(profile, *batches)
    for name, expected in numeric.items():
        np.testing.assert_array_equal(window.numeric[name], expected)
    np.testing.assert_array_equal(window.categorical["colour"], colour)
    assert window.rows == sum(len(b) for b in batches)


def test_first_check_only_takes_baselines(server):
    a, b = server(seed=1), server(seed=2)
    a.traffic(300)
    b.traffic(200)
    window, baselines = aggregate({"a": a.snapshot(), "b": b.snapshot()}, None, window_start=None)
    assert window.rows == 0 and window.numeric == {} and window.contributing == 0
    assert window.pods == {"a": Contribution.BASELINED, "b": Contribution.BASELINED}
    assert baselines["a"].rows == 300 and baselines["b"].rows == 200
    assert baselines["a"].server_id == a.monitor.server_id


def test_window_is_the_sum_of_per_pod_deltas(server, profile):
    a, b = server(seed=1), server(seed=2)
    a.traffic(500)
    b.traffic(100)
    _, pods = aggregate({"a": a.snapshot(), "b": b.snapshot()}, None, window_start=None)
    new_a, new_b = a.traffic(250), b.traffic(400)
    window, _ = aggregate(
        {"a": a.snapshot(), "b": b.snapshot()}, Baselines(pods=pods, time=T0), window_start=T0
    )
    assert window.pods == {"a": Contribution.DELTA, "b": Contribution.DELTA}
    _check(window, profile, new_a, new_b)


def test_a_restarted_server_contributes_its_whole_new_cumulative(server, profile):
    a = server(seed=1)
    a.traffic(800)
    _, pods = aggregate({"a": a.snapshot()}, None, window_start=None)
    # The container restarts inside the window: fewer rows than the baseline, and a new server id.
    restarted = server(started_at=T0 + timedelta(seconds=5), seed=9)
    fresh = restarted.traffic(120)
    window, after = aggregate({"a": restarted.snapshot()}, Baselines(pods=pods, time=T0), window_start=T0)
    assert window.pods == {"a": Contribution.RESTARTED} and window.whole == {"a"}
    _check(window, profile, fresh)
    assert after["a"].server_id == restarted.monitor.server_id


def test_a_counter_that_went_down_under_the_same_id_is_a_reset(server, profile):
    a = server(seed=1)
    a.traffic(400)
    _, pods = aggregate({"a": a.snapshot()}, None, window_start=None)
    # Same server id, but the counters start over (e.g. an in-process reset): the new cumulative is the delta.
    a.monitor.numeric_counts = {k: np.zeros_like(v) for k, v in a.monitor.numeric_counts.items()}
    a.monitor.categorical_counts = {k: np.zeros_like(v) for k, v in a.monitor.categorical_counts.items()}
    a.monitor.rows = 0
    after_reset = a.traffic(90)
    window, _ = aggregate({"a": a.snapshot()}, Baselines(pods=pods, time=T0), window_start=T0)
    assert window.pods == {"a": Contribution.RESTARTED}
    _check(window, profile, after_reset)


def test_new_pods_count_only_if_their_server_started_inside_the_window(server, profile):
    old = server(seed=1)
    old.traffic(300)
    _, pods = aggregate({"old": old.snapshot()}, None, window_start=None)
    scaled_up = server(started_at=T0 + timedelta(seconds=1), seed=2)  # a replica added in the window
    lost = server(started_at=T0 - timedelta(minutes=30), seed=3)  # running before: its baseline was lost
    new_old, new_up = old.traffic(100), scaled_up.traffic(70)
    lost.traffic(999)
    window, after = aggregate(
        {"old": old.snapshot(), "up": scaled_up.snapshot(), "lost": lost.snapshot()},
        Baselines(pods=pods, time=T0),
        window_start=T0,
    )
    assert window.pods == {"lost": Contribution.BASELINED, "old": Contribution.DELTA, "up": Contribution.NEW}
    _check(window, profile, new_old, new_up)
    assert set(after) == {"old", "up", "lost"} and after["lost"].rows == 999


def test_a_pod_not_scraped_loses_its_baseline(server):
    a, b = server(seed=1), server(seed=2)
    a.traffic(10)
    b.traffic(10)
    _, pods = aggregate({"a": a.snapshot(), "b": b.snapshot()}, None, window_start=None)
    window, after = aggregate({"a": a.snapshot()}, Baselines(pods=pods, time=T0), window_start=T0)
    assert set(after) == {"a"} and window.rows == 0 and window.pods == {"a": Contribution.DELTA}


def test_feedback_is_windowed_like_the_counts(server):
    a, b = server(seed=1), server(seed=2)
    a.traffic(400, correct=0.9)
    _, pods = aggregate({"a": a.snapshot(), "b": b.snapshot()}, None, window_start=None)
    a.traffic(200, correct=0.5)
    b.traffic(100, correct=0.5)
    window, _ = aggregate(
        {"a": a.snapshot(), "b": b.snapshot()}, Baselines(pods=pods, time=T0), window_start=T0
    )
    fb = window.feedback
    assert fb.task == "classification" and fb.joined == 300
    expected = a.feedback.correct + b.feedback.correct - pods["a"].feedback.correct
    assert fb.correct == expected
    assert 0.35 < fb.correct / fb.joined < 0.65  # the window's accuracy, not the cumulative 0.77


def test_baselines_round_trip_through_json(server):
    a = server(seed=1)
    a.traffic(50, correct=0.8)
    _, pods = aggregate({"a": a.snapshot()}, None, window_start=None)
    stored = Baselines(model_version="m-v1", window=4, time=T0, pods=pods)
    again = Baselines.model_validate_json(stored.model_dump_json())
    assert again == stored


def test_pods_reporting_different_bins_are_refused(server):
    a, b = server(seed=1), server(seed=2)
    sa, sb = a.snapshot(), b.snapshot()
    sb = sb.model_copy(
        update={"numeric": {**sb.numeric, "x0": [0, 0]}, "started_at": T0 + timedelta(seconds=1)}
    )
    sa = sa.model_copy(update={"started_at": T0 + timedelta(seconds=1)})
    with pytest.raises(ValueError, match="bins"):
        aggregate({"a": sa, "b": sb}, None, window_start=T0)


def test_missing_values_are_windowed_and_an_all_missing_feature_drifts(server, profile):
    from kubeloop.api import DriftMonitorSpec
    from kubeloop.monitoring.evaluation import judge_window

    a = server(seed=1)
    a.traffic(400)
    _, pods = aggregate({"a": a.snapshot()}, None, window_start=None)
    rng = np.random.default_rng(5)
    X = np.empty((600, 4), dtype=object)
    X[:, 0], X[:, 1], X[:, 2] = rng.normal(size=600), np.nan, rng.normal(size=600)  # x1 stops arriving
    X[:, 3] = rng.choice(["red", "green", "blue"], p=[0.5, 0.3, 0.2], size=600)
    a.monitor.record(X, np.array(["no"] * 600), 0.001)
    window, after = aggregate({"a": a.snapshot()}, Baselines(pods=pods, time=T0), window_start=T0)
    assert window.missing == {"x0": 0, "x1": 600, "x2": 0, "colour": 0}
    assert after["a"].missing["x1"] == 600
    spec = DriftMonitorSpec.model_validate({"model": "m", "interval": "10s"})
    kw = {"rows": window.rows, "numeric": window.numeric, "categorical": window.categorical}
    outcome = judge_window(spec, profile, missing=window.missing, **kw)
    assert outcome.drifted and [f.name for f in outcome.top] == ["x1"]
    assert "x1 (missing 0.0% -> 100.0%" in outcome.message
    assert not judge_window(spec, profile, **kw).drifted  # what the review saw


def test_a_baseline_stored_before_missing_counts_gives_no_missing_delta(server):
    a = server(seed=1)
    a.traffic(300)
    _, pods = aggregate({"a": a.snapshot()}, None, window_start=None)
    old = {name: pod.model_copy(update={"missing": None}) for name, pod in pods.items()}
    old = Baselines.model_validate_json(Baselines(pods=old, time=T0).model_dump_json())
    a.traffic(200)
    window, _ = aggregate({"a": a.snapshot()}, old, window_start=T0)
    assert window.rows == 200 and window.missing is None
