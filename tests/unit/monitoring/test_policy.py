"""The retrain policy: what is due, and the gates (running retrain, cooldown, daily cap)."""

from __future__ import annotations

from datetime import timedelta

from kubeloop.api import DriftMonitorSpec, FeatureDrift, PerformanceObservation, RetrainRecord
from kubeloop.monitoring.evaluation import WindowOutcome
from kubeloop.monitoring.policy import decide_retrain, merge_history, next_consecutive

from .conftest import T0

CREATED = T0 - timedelta(days=10)
X0 = FeatureDrift(name="x0", kind="numeric", method="ChiSquared", score=88.0, p_value=1e-15, drifted=True)
DRIFT = WindowOutcome(
    verdict="Drift",
    sample_count=500,
    message="drift in 1 of 4 features",
    drift_share=0.25,
    features=[X0],
    top=[X0],
)
CALM = WindowOutcome(verdict="NoDrift", sample_count=500, message="no drift", drift_share=0.0)


def _spec(**retrain) -> DriftMonitorSpec:
    return DriftMonitorSpec.model_validate(
        {
            "model": "m",
            "interval": "10s",
            "consecutiveWindows": 3,
            "performanceFloor": {"metric": "accuracy", "min": 0.8, "minLabels": 10},
            "retrain": {"clone": {"dataUri": "s3://b/new.csv"}, "cooldown": "1h", "maxPerDay": 2, **retrain},
        }
    )


def _decide(
    spec,
    *,
    outcome=DRIFT,
    consecutive=3,
    history=(),
    running=None,
    perf=None,
    now=T0,
    since=CREATED,
    window=7,
):
    return decide_retrain(
        spec,
        window=window,
        outcome=outcome,
        performance=perf,
        consecutive=consecutive,
        history=list(history),
        schedule_since=since,
        running=running,
        now=now,
    )


def _record(name, minutes_ago, reason="Drift"):
    return RetrainRecord(training_run=name, reason=reason, time=T0 - timedelta(minutes=minutes_ago))


def test_consecutive_count():
    assert next_consecutive(2, "Drift") == 3
    assert next_consecutive(2, "NoDrift") == 0
    assert next_consecutive(2, "InsufficientData") == 2  # says nothing either way
    assert next_consecutive(2, None) == 2


def test_drift_triggers_on_the_nth_consecutive_window():
    assert _decide(_spec(), consecutive=2).due is None
    d = _decide(_spec(), consecutive=3)
    assert d.start and d.blocked is None and d.due is not None
    assert d.due.reason == "Drift" and d.due.window == 7 and d.due.scores == {"x0": 88.0}
    assert "3 drifted windows in a row" in d.due.message and "drift in 1 of 4" in d.due.message
    # The N-th window must itself be drifted.
    assert _decide(_spec(), outcome=CALM, consecutive=5).due is None


def test_on_drift_false_only_reports():
    assert _decide(_spec(onDrift=False)).due is None


def test_never_two_retrains_of_one_model_at_once():
    d = _decide(_spec(), running="m-retrain-w3-abc")
    assert not d.start and d.blocked == "RetrainRunning" and "m-retrain-w3-abc" in d.message


def test_cooldown_and_daily_cap():
    d = _decide(_spec(), history=[_record("a", 30)])
    assert not d.start and d.blocked == "Cooldown"
    assert _decide(_spec(), history=[_record("a", 61)]).start
    capped = _decide(_spec(cooldown="10m"), history=[_record("a", 60 * 20), _record("b", 30)])
    assert not capped.start and capped.blocked == "DailyCap"
    # A retrain 25 hours ago no longer counts.
    assert _decide(_spec(cooldown="10m"), history=[_record("a", 60 * 25), _record("b", 30)]).start


def test_performance_breach_wins_over_drift():
    perf = PerformanceObservation(metric="accuracy", value=0.6, labels=40, breached=True)
    d = _decide(_spec(), perf=perf)
    assert d.start and d.due.reason == "PerformanceBreach" and d.due.scores == {"accuracy": 0.6}
    assert "below the floor 0.8" in d.due.message
    assert _decide(_spec(onPerformance=False), perf=perf, consecutive=0).due is None


def test_schedule_fires_once_per_fire_time():
    spec = _spec(schedule="0 3 * * *")
    now = T0.replace(hour=3, minute=5)
    d = _decide(spec, outcome=None, consecutive=0, now=now, since=now - timedelta(hours=5))
    assert d.start and d.due.reason == "Schedule" and d.schedule_fire == now.replace(minute=0)
    # Once the fire time is recorded, it is not due again.
    assert _decide(spec, outcome=None, consecutive=0, now=now, since=now.replace(minute=0)).due is None
    # Blocked by a running retrain: still due at the next check (not lost).
    blocked = _decide(spec, outcome=None, consecutive=0, now=now, since=now - timedelta(hours=5), running="x")
    assert blocked.blocked == "RetrainRunning" and blocked.schedule_fire == now.replace(minute=0)


def test_without_a_retrain_policy_the_monitor_only_reports():
    spec = DriftMonitorSpec.model_validate({"model": "m", "consecutiveWindows": 1})
    d = _decide(spec, consecutive=1)
    assert not d.start and d.blocked == "NoRetrainPolicy" and d.due.reason == "Drift"


def test_history_merges_status_and_labelled_runs():
    stored = [_record("a", 300), _record("b", 60 * 30)]
    found = [_record("a", 301), _record("c", 5)]
    merged = merge_history(stored, found, now=T0)
    assert [r.training_run for r in merged] == ["a", "c"]  # b is older than 24h
    assert merged[0].time == T0 - timedelta(minutes=300)  # the status's record wins for a known run
    long_cooldown = merge_history(stored, found, now=T0, keep=timedelta(hours=48))
    assert [r.training_run for r in long_cooldown] == ["b", "a", "c"]
