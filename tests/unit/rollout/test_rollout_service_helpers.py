"""The rollout service's pure helpers: who supersedes whom, approvals, the daemon's filter, Deployment reading."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from kubeloop.api import ModelVersion, ResourceRequirements
from kubeloop.handlers.rollout import has_rollout_work
from kubeloop.rollout.machine import Workload
from kubeloop.services.rollout import RolloutOptions, _approved_step, contenders
from kubeloop.services.rollout_serving import read_baseline, workload

T0 = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)
DIGEST = "sha256:" + "b" * 64


def mv(version: int, phase: str | None = None, started: datetime | None = None, completed=None, **meta):
    body = {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": f"iris-v{version}", "namespace": "ml", **meta},
        "spec": {
            "model": "iris",
            "version": version,
            "artifact": {"uri": f"s3://a/iris/v{version}", "digest": DIGEST},
            "stage": "Production",
        },
        "status": {},
    }
    if phase:
        body["status"]["rollout"] = {
            "phase": phase,
            "startTime": started.strftime("%Y-%m-%dT%H:%M:%SZ") if started else None,
            "completionTime": completed.strftime("%Y-%m-%dT%H:%M:%SZ") if completed else None,
        }
    return ModelVersion.model_validate(body)


def test_a_later_request_supersedes_and_an_earlier_one_is_waited_for():
    v2 = mv(2, "Progressing", T0)
    v3 = mv(3, "Pending", T0 + timedelta(minutes=1))
    assert contenders(v2, [v3]) == ("iris-v3", None)
    assert contenders(v3, [v2]) == (None, "iris-v2")


def test_an_older_rollout_winding_down_is_still_waited_for_but_a_finished_one_is_not():
    v3 = mv(3, "Pending", T0 + timedelta(minutes=1))
    unwinding = mv(2, "Superseded", T0)
    assert contenders(v3, [unwinding]) == (None, "iris-v2")
    done = mv(2, "Superseded", T0, completed=T0 + timedelta(seconds=30))
    assert contenders(v3, [done]) == (None, None)


def test_finished_and_idle_versions_never_supersede():
    v2 = mv(2, "Progressing", T0)
    rolled_back = mv(3, "RolledBack", T0 + timedelta(minutes=1), completed=T0 + timedelta(minutes=2))
    promoted = mv(1, "Promoted", T0 - timedelta(days=1), completed=T0 - timedelta(days=1))
    idle = mv(4)
    assert contenders(v2, [rolled_back, promoted, idle]) == (None, None)


def test_same_start_time_the_higher_version_wins():
    a, b = mv(5, "Pending", T0), mv(6, "Pending", T0)
    assert contenders(a, [b]) == ("iris-v6", None)
    assert contenders(b, [a]) == (None, "iris-v5")


@pytest.mark.parametrize(
    ("spec_step", "annotation", "expected"),
    [(None, None, None), (1, None, 1), (None, "2", 2), (1, "0", 1), (0, "3", 3), (None, "two", None)],
)
def test_approval_from_the_spec_or_the_annotation(spec_step, annotation, expected):
    version = mv(2)
    version.spec.approved_step = spec_step
    if annotation is not None:
        version.metadata["annotations"] = {"kubeloop.dev/approved-step": annotation}
    assert _approved_step(version) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({}, False),
        ({"stage": "Production"}, True),
        (
            {"stage": "Archived", "rollout": {"phase": "Promoted", "startTime": "x", "completionTime": "y"}},
            False,
        ),
        ({"rollout": {"phase": "Pending", "startTime": "x"}}, True),
        ({"rollout": {"phase": "Paused", "startTime": "x"}}, True),
        ({"rollout": {"phase": "RolledBack", "startTime": "x"}}, True),  # still scaling back
        ({"rollout": {"phase": "RolledBack", "startTime": "x", "completionTime": "y"}}, False),
        ({"rollout": {"phase": "Idle"}}, False),
    ],
)
def test_the_daemon_runs_only_while_there_is_rollout_or_serving_work(status, expected):
    assert has_rollout_work(status=status) is expected


def test_workload_reads_replicas_readiness_and_a_stuck_rollout():
    assert workload(None) == Workload()
    body = {
        "spec": {"replicas": 2},
        "status": {
            "replicas": 2,
            "readyReplicas": 1,
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": "slow",
                }
            ],
        },
    }
    assert workload(body) == Workload(True, 2, 1, 2, "ProgressDeadlineExceeded: slow")
    body["spec"]["replicas"] = 0
    assert workload(body).stuck is None  # a Deployment at zero is not trying to start pods


def test_options_take_what_the_settings_have():
    class Bare:
        pass

    assert RolloutOptions.from_settings(Bare()).drain_seconds == 5

    class Full:
        serving_drain_seconds = 9
        serving_resources = ResourceRequirements(requests={"cpu": "1"})
        gateway_parent_refs = [{"name": "gw"}]

    options = RolloutOptions.from_settings(Full())
    assert options.drain_seconds == 9 and options.gateway_parent_refs == ({"name": "gw"},)
    assert options.serving_resources.requests == {"cpu": "1"}


def test_an_unreadable_baseline_is_ignored():
    assert read_baseline({"metadata": {"annotations": {"kubeloop.dev/rollout-baseline": "{oops"}}}) is None
    assert read_baseline(None) is None


def test_merge_diff_nulls_nested_fields_that_disappear():
    from kubeloop.api.status import merge_patch as merge_diff

    before = {
        "stage": "Staging",
        "rollout": {"phase": "Progressing", "step": 0, "stepStartTime": "t0"},
        "x": 1,
    }
    after = {
        "stage": "Staging",
        "rollout": {"phase": "Progressing", "step": 1},
        "conditions": [{"type": "A"}],
    }
    assert merge_diff(before, after) == {
        "rollout": {"step": 1, "stepStartTime": None},
        "conditions": [{"type": "A"}],
        "x": None,
    }
    assert merge_diff(after, after) == {}


def test_merge_diff_applied_as_a_merge_patch_gives_the_desired_document():
    from kubeloop.api.status import merge_patch as merge_diff

    def apply(target, patch):  # RFC 7386
        if not isinstance(patch, dict):
            return patch
        out = dict(target) if isinstance(target, dict) else {}
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = apply(out.get(key), value)
        return out

    before = {"a": {"b": {"c": 1, "d": 2}, "e": [1, 2]}, "f": "g"}
    after = {"a": {"b": {"c": 3}, "e": [2]}, "h": {"i": 0}}
    assert apply(before, merge_diff(before, after)) == after
