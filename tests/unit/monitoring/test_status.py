"""The DriftMonitor status after a check: conditions, counters, retrain records."""

from __future__ import annotations

from datetime import timedelta

from kubeloop.api import DriftMonitorStatus, FeatureDrift, RetrainRecord, find_condition
from kubeloop.api.status import status_patch
from kubeloop.monitoring.evaluation import WindowOutcome
from kubeloop.monitoring.policy import RetrainDecision
from kubeloop.monitoring.status import baseline_status, judged_status, unobservable_status

from .conftest import T0

X0 = FeatureDrift(name="x0", kind="numeric", method="ChiSquared", score=88.0, p_value=1e-15, drifted=True)
DRIFT = WindowOutcome(
    verdict="Drift", sample_count=500, message="drift in 1 of 4 features over 500 rows: x0 (ChiSquared 88, p=1e-15)",
    drift_share=0.25, features=[X0], top=[X0],
)  # fmt: skip
SPARSE = WindowOutcome(verdict="InsufficientData", sample_count=20, message="insufficient data: 20 live rows")


def _judged(
    before,
    outcome,
    *,
    consecutive=1,
    decision=None,
    started=None,
    history=(),
    now=T0,
    version="m-v1",
):
    return judged_status(
        before,
        model_version=version,
        window=before.window + 1,
        window_start=now - timedelta(seconds=10),
        outcome=outcome,
        performance=None,
        consecutive=consecutive,
        decision=decision or RetrainDecision(),
        started=started,
        history=list(history),
        generation=2,
        now=now,
    )


def test_first_check_takes_baselines_and_says_so():
    status = baseline_status(DriftMonitorStatus(), model_version="m-v1", pods=2, generation=1, now=T0)
    drifted = find_condition(status.conditions, "Drifted")
    ready = find_condition(status.conditions, "Ready")
    assert drifted.status == "Unknown" and drifted.reason == "Baseline"
    assert ready.status == "True" and ready.reason == "Monitoring"
    assert status.window == 0 and status.verdict is None and status.last_check_time == T0
    assert "2 server pod(s)" in status.message


def test_a_drifted_window_sets_drifted_true_naming_the_feature():
    status = _judged(DriftMonitorStatus(), DRIFT, consecutive=1)
    drifted = find_condition(status.conditions, "Drifted")
    assert drifted.status == "True" and drifted.reason == "DriftDetected" and "x0" in drifted.message
    assert status.window == 1 and status.verdict == "Drift" and status.sample_count == 500
    assert status.consecutive_drifted_windows == 1 and status.features == [X0]


def test_insufficient_data_is_unknown_not_healthy():
    status = _judged(DriftMonitorStatus(consecutive_drifted_windows=2), SPARSE, consecutive=2)
    drifted = find_condition(status.conditions, "Drifted")
    assert drifted.status == "Unknown" and drifted.reason == "InsufficientData"
    assert status.verdict == "InsufficientData" and status.consecutive_drifted_windows == 2


def test_a_started_retrain_is_recorded_and_resets_the_drift_count():
    run = RetrainRecord(
        training_run="m-retrain-w3-abc", reason="Drift", window=3, time=T0, scores={"x0": 88.0}
    )
    decision = RetrainDecision(start=True, message="retrain started (Drift): ...")
    status = _judged(DriftMonitorStatus(window=2), DRIFT, consecutive=3, decision=decision, started=run)
    assert status.last_retrain == run and status.retrain_history == [run]
    assert status.consecutive_drifted_windows == 0
    assert status.message == "retrain started (Drift): ..."


def test_a_run_found_on_the_cluster_restores_a_lost_last_retrain():
    run = RetrainRecord(training_run="m-retrain-w3-abc", reason="Drift", window=3, time=T0)
    status = _judged(DriftMonitorStatus(window=3), DRIFT, history=[run])
    assert status.last_retrain == run


def test_a_new_production_version_starts_the_count_again():
    before = _judged(DriftMonitorStatus(), DRIFT, consecutive=2)
    after = baseline_status(
        before, model_version="m-v2", pods=1, generation=2, now=T0 + timedelta(seconds=10)
    )
    assert after.model_version == "m-v2" and after.consecutive_drifted_windows == 0 and after.features == []


def test_nothing_to_watch_keeps_the_counters():
    before = _judged(DriftMonitorStatus(), DRIFT, consecutive=2)
    status = unobservable_status(
        before, state="InProgress", reason="NoServingPods", message="no pods", generation=2, now=T0
    )
    assert status.consecutive_drifted_windows == 2 and status.window == 1
    assert find_condition(status.conditions, "Ready").status == "Unknown"
    assert find_condition(status.conditions, "Reconciling").status == "True"
    assert find_condition(status.conditions, "Drifted").reason == "NoServingPods"
    failed = unobservable_status(
        before, state="Failed", reason="InvalidSpec", message="bad", generation=2, now=T0
    )
    assert find_condition(failed.conditions, "Stalled").status == "True"


def test_the_same_check_twice_writes_nothing_the_second_time():
    status = _judged(DriftMonitorStatus(), DRIFT)
    stored = {"status": status.model_dump(mode="json", exclude_none=True)}["status"]
    again = _judged(DriftMonitorStatus(), DRIFT)
    assert status_patch(stored, again) is None
