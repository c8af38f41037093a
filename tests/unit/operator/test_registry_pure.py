"""The registry's pure parts: the index projection and the stage rules; plus the k8s layer's pure helpers."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from kubeloop.api import ModelVersionStatus
from kubeloop.api.status import status_patch
from kubeloop.k8s.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    TransientError,
    from_response,
)
from kubeloop.k8s.events import event_body
from kubeloop.k8s.resources import CONFIG_MAP, JOB, MODEL_VERSION
from kubeloop.registry import index, stages

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def mv(name: str, model: str, version: int, stage: str = "None", history: list | None = None) -> dict:
    status: dict = {"stage": stage}
    if history:
        status["history"] = history
    return {
        "metadata": {
            "name": name,
            "namespace": "ml",
            "creationTimestamp": f"2026-01-0{version % 9 + 1}T00:00:00Z",
        },
        "spec": {"model": model, "version": version, "lineage": {"trainingRun": f"run-{version}"}},
        "status": status,
    }


def test_projection_lists_production_staging_and_recent_versions_per_model():
    versions = [
        mv("iris-v1", "iris", 1, "Archived"),
        mv("iris-v2", "iris", 2, "Production"),
        mv("iris-v3", "iris", 3, "Staging"),
        mv("iris-v4", "iris", 4, "Staging"),
        mv("wine-v1", "wine", 1),
    ]
    projected = index.project(versions, recent=3)
    iris = projected["iris"]
    assert iris.production.name == "iris-v2" and iris.latest == 4
    assert [v.name for v in iris.staging] == ["iris-v3", "iris-v4"]
    assert [v.version for v in iris.versions] == [4, 3, 2]  # newest first, bounded
    assert iris.versions[0].training_run == "run-4"
    assert projected["wine"].production is None and projected["wine"].latest == 1


def test_history_is_gathered_from_the_versions_oldest_first_and_bounded():
    h1 = [
        {
            "from": "None",
            "to": "Production",
            "by": "u",
            "reason": "ManualEdit",
            "time": "2026-01-01T00:00:00Z",
        }
    ]
    h2 = [
        {
            "from": "None",
            "to": "Staging",
            "by": "TrainingRun r",
            "reason": "Registered",
            "time": "2026-01-01T00:00:01Z",
        },
        {
            "from": "Staging",
            "to": "Production",
            "by": "rollout",
            "reason": "Promoted",
            "time": "2026-01-03T00:00:00Z",
        },
    ]
    h1.append({"from": "Production", "to": "Archived", "by": "ModelVersion m-v2", "reason": "Superseded",
               "time": "2026-01-03T00:00:00Z"})  # fmt: skip
    entry = index.project(
        [mv("m-v1", "m", 1, "Archived", h1), mv("m-v2", "m", 2, "Production", h2)], history=3
    )["m"]
    assert [(c.name, c.to_stage) for c in entry.history] == [
        ("m-v2", "Staging"),
        ("m-v1", "Archived"),
        ("m-v2", "Production"),
    ]


def test_latest_never_goes_back_and_the_index_round_trips():
    previous = index.project([mv("iris-v7", "iris", 7)])
    now = index.project([mv("iris-v2", "iris", 2)], previous)  # v7 was deleted
    assert now["iris"].latest == 7
    gone = index.project([], previous)  # every version deleted: the number is still remembered
    assert gone["iris"].latest == 7 and gone["iris"].versions == []
    data = index.render(now)
    assert list(data) == ["iris.json"]
    assert json.loads(data["iris.json"])["production"] is None
    assert index.parse(data) == now
    assert index.parse({"iris.json": "{not json", "notes": "x"}) == {}


def test_promotion_archives_every_other_production_version_first():
    target = mv("iris-v3", "iris", 3, "Staging")
    others = [
        mv("iris-v1", "iris", 1, "Archived"),
        mv("iris-v2", "iris", 2, "Production"),
        mv("wine-v1", "wine", 1, "Production"),
        target,
    ]
    plan = stages.promotion_plan(target, others, by="rollout", reason="Promoted")
    assert plan == [
        stages.StageChange("iris-v2", "Archived", "ModelVersion iris-v3", "Superseded", retired=True),
        stages.StageChange("iris-v3", "Production", "rollout", "Promoted"),
    ]


def test_a_superseded_version_reports_no_traffic_a_hand_archived_one_keeps_its_weight():
    promoted = ModelVersionStatus.model_validate(
        {
            "stage": "Production",
            "rollout": {
                "phase": "Promoted",
                "step": 2,
                "weight": 100,
                "canaryReplicas": 2,
                "stableReplicas": 0,
            },
        }
    )
    target = mv("iris-v3", "iris", 3, "Staging")
    superseded, _ = stages.promotion_plan(
        target, [mv("iris-v2", "iris", 2, "Production"), target], by="r", reason="p"
    )
    after = stages.with_stage(promoted, superseded, now=NOW, history_limit=5)
    assert after.stage == "Archived"
    assert after.rollout.weight == 0  # `kubectl get mv` must not show the old version at 100%
    # the rest of the rollout's record stays as it ended
    assert after.rollout.model_dump(exclude={"weight"}) == promoted.rollout.model_dump(exclude={"weight"})
    patch = status_patch(promoted.model_dump(mode="json", by_alias=True, exclude_none=True), after)
    assert patch["status"]["rollout"] == {"weight": 0}

    # archived by hand, its Deployment is not retired by anyone: the weight it had stays what it reports
    by_hand = stages.StageChange("iris-v2", "Archived", "kubectl-patch", "ManualEdit")
    assert stages.with_stage(promoted, by_hand, now=NOW, history_limit=5).rollout.weight == 100
    # a version that never rolled out has no rollout status to zero
    never = stages.with_stage(ModelVersionStatus(stage="Production"), superseded, now=NOW, history_limit=5)
    assert never.stage == "Archived" and never.rollout is None


def test_a_stage_change_appends_a_bounded_history_and_is_idempotent():
    status = ModelVersionStatus(stage="Staging")
    change = stages.StageChange("iris-v3", "Production", "kubectl-patch", "ManualEdit")
    after = stages.with_stage(status, change, now=NOW, history_limit=2)
    assert after.stage == "Production"
    (record,) = after.history
    assert (record.from_stage, record.to_stage, record.by, record.reason, record.time) == (
        "Staging",
        "Production",
        "kubectl-patch",
        "ManualEdit",
        NOW,
    )
    assert stages.with_stage(after, change, now=NOW, history_limit=2) == after
    for to in ("Archived", "Staging", "Production"):
        after = stages.with_stage(after, stages.StageChange("x", to, "u", "r"), now=NOW, history_limit=2)
    assert [r.to_stage for r in after.history] == ["Staging", "Production"]


def test_the_stage_editor_comes_from_managed_fields():
    obj = {
        "metadata": {
            "managedFields": [
                {"manager": "kubectl-client-side-apply", "operation": "Update", "time": "2026-01-01T00:00:00Z",
                 "fieldsV1": {"f:spec": {"f:stage": {}, "f:model": {}}}},
                {"manager": "kubeloop-operator", "operation": "Update", "subresource": "status",
                 "time": "2026-01-03T00:00:00Z", "fieldsV1": {"f:status": {"f:stage": {}}}},
                {"manager": "kubectl-patch", "operation": "Update", "time": "2026-01-02T00:00:00Z",
                 "fieldsV1": {"f:spec": {"f:stage": {}}}},
            ]
        }
    }  # fmt: skip
    assert stages.stage_editor(obj) == "kubectl-patch"
    assert stages.stage_editor({"metadata": {}}) is None


def test_api_errors_map_to_domain_errors():
    body = json.dumps(
        {"kind": "Status", "reason": "AlreadyExists", "message": 'jobs.batch "x" already exists'}
    )
    assert isinstance(from_response(409, body, verb="POST", what="Job ml/x"), AlreadyExists)
    conflict = from_response(
        409, json.dumps({"reason": "Conflict", "message": "modified"}), verb="PUT", what="cm"
    )
    assert isinstance(conflict, Conflict) and not isinstance(conflict, AlreadyExists)
    assert str(conflict) == "PUT cm: modified"
    invalid = from_response(
        422,
        json.dumps({"reason": "Invalid", "message": "bad", "details": {"causes": [{"field": "spec.x"}]}}),
        verb="POST",
        what="Job",
    )
    assert isinstance(invalid, Invalid) and invalid.fields() == ["spec.x"]
    assert isinstance(from_response(404, b"", verb="GET", what="x"), NotFound)
    assert isinstance(from_response(403, b"{}", verb="GET", what="x"), Forbidden)
    for status in (429, 500, 503):
        assert isinstance(from_response(status, b"oops", verb="GET", what="x"), TransientError)


def test_resource_paths():
    assert JOB.path("ml", "r-train") == "/apis/batch/v1/namespaces/ml/jobs/r-train"
    assert CONFIG_MAP.path("ml") == "/api/v1/namespaces/ml/configmaps"
    assert MODEL_VERSION.path(None) == "/apis/kubeloop.dev/v1alpha1/modelversions"
    assert MODEL_VERSION.path("ml", "m-v1", "status").endswith("/namespaces/ml/modelversions/m-v1/status")


def test_event_body_points_at_the_object_and_bounds_the_message():
    obj = {"apiVersion": "kubeloop.dev/v1alpha1", "kind": "TrainingRun",
           "metadata": {"name": "r", "namespace": "ml", "uid": "u1", "resourceVersion": "7"}}  # fmt: skip
    body = event_body(obj, "Warning", "GateFailed", "x" * 5000, instance="op-0", now=NOW, suffix="abc")
    assert body["metadata"] == {"name": "r.abc", "namespace": "ml"}
    assert body["involvedObject"]["uid"] == "u1" and body["involvedObject"]["kind"] == "TrainingRun"
    assert body["type"] == "Warning" and body["reason"] == "GateFailed" and len(body["message"]) == 1024
    assert (
        body["firstTimestamp"] == "2026-01-02T03:04:05Z"
        and body["source"]["component"] == "kubeloop-operator"
    )
