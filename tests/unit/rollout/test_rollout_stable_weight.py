"""The rollout service's write of the stable version's `status.rollout.weight` (the value is
`machine.stable_weight`): one conditional patch of that field only, and none when it is already right."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from types import SimpleNamespace

from kubeloop.api import ModelVersion, RolloutStatus
from kubeloop.api.status import status_patch
from kubeloop.rollout.machine import Decision
from kubeloop.services.rollout import RolloutOptions, RolloutService, Snapshot

T0 = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)
DIGEST = "sha256:" + "c" * 64


def progressing(weight: int, **kw) -> RolloutStatus:
    """The canary's rollout status, against the stable iris-v1."""
    base = dict(phase="Progressing", start_time=T0, stable_version="iris-v1", weight=weight)
    return RolloutStatus(**{**base, **kw})


# -- the service's write -------------------------------------------------------------------------------------
class FakeKube:
    """ModelVersions as dicts; status patches computed as the real client does, recorded and merged."""

    def __init__(self, *objects: dict) -> None:
        self.objects = {o["metadata"]["name"]: copy.deepcopy(o) for o in objects}
        self.patches: list[dict] = []

    def get(self, resource, namespace, name):
        return copy.deepcopy(self.objects.get(name))

    def patch_status(self, resource, obj, desired, *, conditional=False):
        body = status_patch(obj.get("status"), desired)
        if body is None:
            return None
        assert conditional  # the stable's own daemon writes its status too
        self.patches.append(body)
        stored = self.objects[obj["metadata"]["name"]]
        _merge(stored.setdefault("status", {}), body["status"])
        stored["metadata"]["resourceVersion"] = str(int(stored["metadata"]["resourceVersion"]) + 1)
        return copy.deepcopy(stored)


def _merge(target: dict, patch: dict) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def body(version: int, status: dict) -> dict:
    return {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": f"iris-v{version}", "namespace": "ml", "resourceVersion": "7"},
        "spec": {
            "model": "iris",
            "version": version,
            "artifact": {"uri": f"s3://a/iris/v{version}", "digest": DIGEST},
            "stage": "Production",
        },
        "status": status,
    }


def tick(kube: FakeKube, before: RolloutStatus, after: RolloutStatus) -> None:
    canary = body(2, {"rollout": before.model_dump(mode="json", by_alias=True, exclude_none=True)})
    stable = kube.get(None, "ml", "iris-v1")
    snap = Snapshot(
        canary,
        ModelVersion.model_validate(canary),
        stable,
        ModelVersion.model_validate(stable),
        [],
        None,
        None,
        "Replicas",
    )
    service = RolloutService(SimpleNamespace(kube=kube), RolloutOptions())  # type: ignore[arg-type]
    service.write_stable_weight(snap, Decision(after, "Hold", "StepProgressing", ""))


def test_a_stable_without_a_rollout_record_gets_just_the_weight_and_a_repeat_writes_nothing():
    kube = FakeKube(body(1, {"stage": "Production", "kopf": {"progress": {}}}))
    tick(kube, progressing(0), progressing(33, step_start_time=T0))
    assert kube.patches == [{"status": {"rollout": {"weight": 67}}}]  # no phase, no other field invented
    assert kube.objects["iris-v1"]["status"] == {
        "stage": "Production",
        "kopf": {"progress": {}},
        "rollout": {"weight": 67},
    }
    tick(kube, progressing(33), progressing(33, step_start_time=T0))  # the same tick again (a restart)
    assert len(kube.patches) == 1


def test_a_stable_with_a_record_changes_only_its_weight():
    record = {"phase": "Promoted", "weight": 100, "startTime": "2025-02-01T10:00:00Z", "stableReplicas": 0}
    kube = FakeKube(body(1, {"stage": "Production", "rollout": record}))
    tick(kube, progressing(33), progressing(33, phase="RolledBack"))  # rolling back: canary still at 33
    tick(kube, progressing(33, phase="RolledBack"), progressing(0, phase="RolledBack", completion_time=T0))
    assert kube.patches == [
        {"status": {"rollout": {"weight": 67}}},
        {"status": {"rollout": {"weight": 100}}},
    ]
    assert kube.objects["iris-v1"]["status"]["rollout"] == record


def test_a_stable_that_is_not_this_rollouts_stable_is_left_alone():
    kube = FakeKube(body(1, {"stage": "Production"}))
    tick(kube, progressing(0), progressing(33, stable_version="iris-v0"))
    assert kube.patches == []
