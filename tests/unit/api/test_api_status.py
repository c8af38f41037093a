"""Condition builders, transition times, kstatus and no-op status writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from kubeloop.api import (
    DriftMonitorStatus,
    ModelVersionStatus,
    TrainingRunStatus,
    find_condition,
    set_condition,
)
from kubeloop.api import status as st

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)

BUILDERS = {
    "Ready": st.ready,
    "Reconciling": st.reconciling,
    "Stalled": st.stalled,
    "DataValidated": st.data_validated,
    "Trained": st.trained,
    "ModelValidated": st.model_validated,
    "Registered": st.registered,
    "Succeeded": st.succeeded,
    "Progressing": st.progressing,
    "RolledBack": st.rolled_back,
    "Drifted": st.drifted,
}


@pytest.mark.parametrize("type_", sorted(BUILDERS))
@pytest.mark.parametrize("value, status", [(True, "True"), (False, "False"), (None, "Unknown")])
def test_each_builder_makes_its_type_with_a_camel_case_reason(type_, value, status):
    c = BUILDERS[type_](value, "msg", generation=7, now=T0)
    assert (c.type, c.status, c.message, c.observed_generation) == (type_, status, "msg", 7)
    assert c.last_transition_time == T0
    assert c.reason[0].isupper() and c.reason.isalnum(), c.reason


def test_builders_have_distinct_reasons_per_status():
    c = [st.model_validated(v, generation=1, now=T0).reason for v in (True, False, None)]
    assert c == ["GatePassed", "GateFailed", "ValidatingModel"]


def test_reason_can_be_overridden_but_must_be_camel_case():
    assert st.succeeded(False, reason="ChampionNotBeaten", generation=1, now=T0).reason == "ChampionNotBeaten"
    for bad in ("champion not beaten", "gate-failed", "lowerFirst", ""):
        with pytest.raises(ValueError):
            st.succeeded(False, reason=bad, generation=1, now=T0)


def test_transition_time_is_kept_while_status_holds_and_reason_or_message_change():
    conds = [st.trained(None, "starting", generation=1, now=T0)]
    later = set_condition(conds, st.trained(None, "pod running", reason="PodRunning", generation=2, now=T1))
    (c,) = later
    assert c.last_transition_time == T0
    assert (c.reason, c.message, c.observed_generation) == ("PodRunning", "pod running", 2)


def test_transition_time_moves_when_status_flips():
    conds = [st.trained(None, generation=1, now=T0)]
    (c,) = set_condition(conds, st.trained(True, generation=1, now=T1))
    assert c.status == "True" and c.last_transition_time == T1


def test_set_condition_keeps_order_and_appends_new_types():
    conds = [st.data_validated(True, generation=1, now=T0), st.trained(None, generation=1, now=T0)]
    out = set_condition(conds, st.model_validated(None, generation=1, now=T1))
    assert [c.type for c in out] == ["DataValidated", "Trained", "ModelValidated"]
    assert set_condition(out, out[1]) == out


def test_kstatus_in_progress_current_failed():
    base = [st.trained(True, generation=3, now=T0)]
    running = st.with_kstatus(base, "InProgress", "Training", "fitting", generation=3, now=T0)
    assert {c.type: c.status for c in running} == {
        "Trained": "True",
        "Ready": "Unknown",
        "Reconciling": "True",
    }
    done = st.with_kstatus(running, "Current", "Succeeded", generation=3, now=T1)
    assert {c.type: c.status for c in done} == {"Trained": "True", "Ready": "True"}
    assert find_condition(done, "Ready").last_transition_time == T1
    failed = st.with_kstatus(running, "Failed", "GateFailed", "accuracy 0.70 < 0.85", generation=3, now=T1)
    assert {c.type: c.status for c in failed} == {"Trained": "True", "Ready": "False", "Stalled": "True"}
    assert find_condition(failed, "Stalled").message == "accuracy 0.70 < 0.85"
    assert all(c.observed_generation == 3 for c in failed)


def test_training_run_kstate_follows_succeeded():
    assert st.training_run_kstate([])[0] == "InProgress"
    running = [st.succeeded(None, generation=1, now=T0)]
    assert st.training_run_kstate(running) == ("InProgress", "Running", "")
    ok = [st.succeeded(True, "v3 registered", generation=1, now=T0)]
    assert st.training_run_kstate(ok) == ("Current", "Succeeded", "v3 registered")
    bad = [st.succeeded(False, "accuracy 0.7 < 0.8", reason="GateFailed", generation=1, now=T0)]
    assert st.training_run_kstate(bad) == ("Failed", "GateFailed", "accuracy 0.7 < 0.8")


def test_model_version_kstate():
    rolled = [st.rolled_back(True, "errorRate 0.2 > 0.01", generation=1, now=T0)]
    assert st.model_version_kstate(rolled, stage="Archived")[0] == "Failed"
    moving = [st.progressing(True, "step 1 of 3", generation=1, now=T0)]
    assert st.model_version_kstate(moving, stage="Staging") == (
        "InProgress",
        "RolloutInProgress",
        "step 1 of 3",
    )
    assert st.model_version_kstate([], stage="Production")[:2] == ("Current", "StageProduction")


def test_observed_sets_generation_on_status():
    assert st.observed(DriftMonitorStatus(), 4).observed_generation == 4


def stored(status) -> dict:
    """What the API server would hold after a first write, plus kopf's own key."""
    return {**st.status_patch(None, status)["status"], "kopf": {"progress": {"create": {"retries": 1}}}}


def test_no_patch_when_nothing_changed():
    status = st.observed(
        TrainingRunStatus(conditions=[st.trained(True, generation=2, now=T0)], job_name="iris-1-train"), 2
    )
    assert st.status_patch(stored(status), status) is None
    # Rebuilding the same condition later keeps its transition time, so it is still no change.
    rebuilt = status.model_copy(
        update={"conditions": set_condition(status.conditions, st.trained(True, generation=2, now=T1))}
    )
    assert st.status_patch(stored(status), rebuilt) is None


def test_patch_holds_only_changed_fields_and_never_touches_kopf():
    before = TrainingRunStatus(job_name="iris-1-train", observed_generation=1)
    after = before.model_copy(update={"data_hash": "sha256:abc", "observed_generation": 2})
    patch = st.status_patch(stored(before), after)
    assert patch == {"status": {"dataHash": "sha256:abc", "observedGeneration": 2}}


def test_patch_deletes_fields_the_desired_status_drops():
    before = ModelVersionStatus(stage="Production", message="promoted")
    after = ModelVersionStatus(stage="Production")
    assert st.status_patch(stored(before), after) == {"status": {"message": None}}


def test_patch_from_empty_status_writes_the_non_default_fields():
    status = st.observed(TrainingRunStatus(job_name="j"), 1)
    assert st.status_patch(None, status) == {"status": {"jobName": "j", "observedGeneration": 1}}
    assert st.status_patch({}, TrainingRunStatus()) is None


def test_condition_times_are_written_as_rfc3339_z():
    patch = st.status_patch(None, TrainingRunStatus(conditions=[st.ready(True, generation=1, now=T0)]))
    assert patch["status"]["conditions"][0]["lastTransitionTime"] == "2025-03-01T12:00:00Z"


def test_every_condition_a_kind_declares_has_a_builder():
    from kubeloop.api.crd import KINDS

    for info in KINDS:
        assert {"Ready", "Reconciling", "Stalled"} <= set(info.conditions), info.kind
        for type_ in info.conditions:
            assert type_ in st.DEFAULT_REASONS, f"{info.kind}.{type_} has no builder"
    assert set(st.DEFAULT_REASONS) == {t for info in KINDS for t in info.conditions}
