"""The TrainingRun reconcile against an in-memory API: the paths the cluster tests cannot aim at precisely.

The fake keeps objects as dicts and answers like the API server where it matters here: 409 on a taken
name, 404 as None, status patches merged. Everything else is covered against the real API server in
tests/integration.
"""

from __future__ import annotations

import copy
import json

import pytest
from kubeloop.api.status import status_patch as compute_patch
from kubeloop.contract import TrainerSucceeded, render_termination_message
from kubeloop.k8s import CONFIG_MAP, EVENT, JOB, MODEL_VERSION, POD, AlreadyExists, EventRecorder
from kubeloop.services import training
from kubeloop.services.context import Context
from kubeloop.services.errors import GiveUp, Retry
from kubeloop.settings import Settings


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.status_writes = 0
        self.uid = 0

    def _key(self, resource, namespace, name):
        return (resource.plural, namespace, name)

    def get(self, resource, namespace, name):
        found = self.objects.get(self._key(resource, namespace, name))
        return copy.deepcopy(found) if found else None

    def list(self, resource, namespace, *, labels=None, fields=None):
        out = []
        for (plural, ns, _), obj in sorted(self.objects.items()):
            if plural != resource.plural or (namespace and ns != namespace):
                continue
            have = obj["metadata"].get("labels") or {}
            if all(have.get(k) == v for k, v in (labels or {}).items()):
                out.append(copy.deepcopy(obj))
        return out

    def create(self, resource, body):
        body = copy.deepcopy(dict(body))
        meta = body["metadata"]
        key = self._key(resource, meta.get("namespace"), meta["name"])
        if key in self.objects:
            raise AlreadyExists(f"{meta['name']} exists", status=409, reason="AlreadyExists")
        self.uid += 1
        meta.setdefault("uid", f"uid-{self.uid}")
        meta.setdefault("generation", 1)
        meta["resourceVersion"] = str(self.uid)
        body.setdefault("apiVersion", resource.api_version)
        body.setdefault("kind", resource.kind)
        self.objects[key] = body
        return copy.deepcopy(body)

    def get_or_create(self, resource, body):
        try:
            return self.create(resource, body), True
        except AlreadyExists:
            return self.get(resource, body["metadata"].get("namespace"), body["metadata"]["name"]), False

    def patch_status(self, resource, obj, desired, *, conditional=False):
        body = compute_patch(obj.get("status"), desired)
        if body is None:
            return None
        meta = obj["metadata"]
        stored = self.objects[self._key(resource, meta.get("namespace"), meta["name"])]
        status = stored.setdefault("status", {})
        for key, value in body["status"].items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = value
        self.status_writes += 1
        return copy.deepcopy(stored)

    def replace(self, resource, body):
        meta = body["metadata"]
        self.objects[self._key(resource, meta.get("namespace"), meta["name"])] = copy.deepcopy(dict(body))
        return body


RUN = {
    "apiVersion": "kubeloop.dev/v1alpha1",
    "kind": "TrainingRun",
    "metadata": {"name": "r1", "namespace": "ml", "uid": "run-uid-1", "generation": 1},
    "spec": {
        "model": "iris",
        "data": {"uri": "s3://d/iris.csv", "target": "y"},
        "training": {"estimator": {"classPath": "sklearn.tree.DecisionTreeClassifier"}},
        "validation": {"champion": {"metric": "accuracy"}},
    },
}


@pytest.fixture
def context(monkeypatch) -> Context:
    for key in ("KUBELOOP_CRASH_AT", "KUBELOOP_S3_SECRET"):
        monkeypatch.delenv(key, raising=False)
    kube = FakeKube()
    kube.objects[("trainingruns", "ml", "r1")] = copy.deepcopy(RUN)
    return Context(settings=Settings(), kube=kube, events=EventRecorder(kube, "test"))  # type: ignore[arg-type]


def production(kube: FakeKube, name: str, version: int) -> None:
    kube.create(
        MODEL_VERSION,
        {
            "metadata": {"name": name, "namespace": "ml"},
            "spec": {
                "model": "iris",
                "version": version,
                "artifact": {"uri": f"s3://a/{name}", "digest": "sha256:" + "e" * 64},
            },
            "status": {"stage": "Production"},
        },
    )


def finish_job(kube: FakeKube, summary: TrainerSucceeded) -> None:
    job = kube.objects[("jobs", "ml", "r1-train")]
    job["status"] = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    terminated = {
        "exitCode": 0,
        "message": render_termination_message(summary),
        "finishedAt": "2026-01-01T00:00:09Z",
    }
    kube.create(
        POD,
        {
            "metadata": {
                "name": "r1-train-abc",
                "namespace": "ml",
                "labels": {"batch.kubernetes.io/controller-uid": job["metadata"]["uid"]},
            },
            "status": {"containerStatuses": [{"name": "trainer", "state": {"terminated": terminated}}]},
        },
    )


SUMMARY = TrainerSucceeded(
    artifact_uri="s3://kubeloop-artifacts/ml/iris/r1-run-uid-",
    digest="sha256:" + "f" * 64,
    task="classification",
    metrics={"accuracy": 0.9},
    champion_metrics={"accuracy": 0.8},
    data_hash="sha256:" + "1" * 64,
    data_rows=150,
    train_rows=112,
    test_rows=38,
)


def test_a_task_config_map_from_before_a_crash_fixes_the_champion(context):
    kube = context.kube
    production(kube, "iris-v1", 1)
    # a crash between the ConfigMap and the Job: the task names iris-v1 as the champion
    assert training.reconcile(context, "ml", "r1") is False
    task_cm = kube.objects[("configmaps", "ml", "r1-task")]
    del kube.objects[("jobs", "ml", "r1-train")]
    kube.objects[("trainingruns", "ml", "r1")].pop("status")
    # meanwhile iris-v2 became production; the restarted reconcile must still use the task's champion
    kube.objects[("modelversions", "ml", "iris-v1")]["status"]["stage"] = "Archived"
    production(kube, "iris-v2", 2)
    assert training.reconcile(context, "ml", "r1") is False
    job = kube.objects[("jobs", "ml", "r1-train")]
    assert job["metadata"]["annotations"] == {"kubeloop.dev/champion": "iris-v1"}
    assert json.loads(task_cm["data"]["task.json"])["champion"]["artifactUri"] == "s3://a/iris-v1"
    assert kube.objects[("trainingruns", "ml", "r1")]["status"]["championVersion"] == "iris-v1"


def test_the_whole_flow_and_a_second_pass_that_writes_nothing(context):
    kube = context.kube
    assert training.reconcile(context, "ml", "r1") is False
    writes = kube.status_writes
    assert training.reconcile(context, "ml", "r1") is False  # Job still running: nothing to write
    assert kube.status_writes == writes
    finish_job(kube, SUMMARY)
    assert training.reconcile(context, "ml", "r1") is True
    run = kube.objects[("trainingruns", "ml", "r1")]
    assert run["status"]["modelVersion"] == "iris-v1" and run["status"]["version"] == 1
    (mv,) = kube.list(MODEL_VERSION, "ml")
    assert mv["spec"]["metrics"] == {"accuracy": 0.9}
    index = json.loads(kube.objects[("configmaps", "ml", "kubeloop-registry")]["data"]["iris.json"])
    assert index["latest"] == 1
    writes = kube.status_writes
    assert training.reconcile(context, "ml", "r1") is True and kube.status_writes == writes
    reasons = [e["reason"] for e in kube.list(EVENT, "ml")]
    assert {
        "Training",
        "DataValid",
        "TrainingComplete",
        "GatePassed",
        "VersionRegistered",
        "Succeeded",
    } <= set(reasons)


def test_a_version_created_before_a_crash_is_found_not_duplicated(context, monkeypatch):
    kube = context.kube
    training.reconcile(context, "ml", "r1")
    finish_job(kube, SUMMARY)
    # what a crash right after the create leaves: gates recorded, ModelVersion made, Registered not yet
    original = training.versions.register

    def register_then_die(*args, **kwargs):
        original(*args, **kwargs)
        raise SystemExit("killed")  # the status write never happens

    monkeypatch.setattr(training.versions, "register", register_then_die)
    with pytest.raises(SystemExit):
        training.reconcile(context, "ml", "r1")
    monkeypatch.setattr(training.versions, "register", original)
    assert "modelVersion" not in kube.objects[("trainingruns", "ml", "r1")]["status"]
    assert training.reconcile(context, "ml", "r1") is True
    assert [m["metadata"]["name"] for m in kube.list(MODEL_VERSION, "ml")] == ["iris-v1"]
    assert kube.objects[("trainingruns", "ml", "r1")]["status"]["modelVersion"] == "iris-v1"


def test_a_taken_version_name_moves_on_to_the_next_number(context):
    kube = context.kube
    production(kube, "iris-v1", 1)
    kube.create(
        MODEL_VERSION,
        {"metadata": {"name": "iris-v2", "namespace": "ml"}, "spec": {"model": "other", "version": 9}},
    )
    training.reconcile(context, "ml", "r1")
    finish_job(kube, SUMMARY)
    assert training.reconcile(context, "ml", "r1") is True
    assert kube.objects[("trainingruns", "ml", "r1")]["status"]["modelVersion"] == "iris-v3"


def test_an_unparsable_spec_gives_up_once_naming_the_field(context):
    kube = context.kube
    kube.objects[("trainingruns", "ml", "r1")]["spec"]["training"]["testSize"] = 2.0
    with pytest.raises(GiveUp, match=r"spec\.training\.testSize"):
        training.reconcile(context, "ml", "r1")
    assert ("jobs", "ml", "r1-train") not in kube.objects
    assert training.reconcile(context, "ml", "r1") is True  # finished: no second attempt
    assert list(kube.list(JOB, "ml")) == [] and kube.list(CONFIG_MAP, "ml") == []


def test_a_job_of_an_earlier_run_with_the_same_name_is_waited_for(context):
    kube = context.kube
    kube.create(
        JOB, {"metadata": {"name": "r1-train", "namespace": "ml", "ownerReferences": [{"uid": "old"}]}}
    )
    with pytest.raises(Retry, match="garbage collector"):
        training.reconcile(context, "ml", "r1")
    assert "status" not in kube.objects[("trainingruns", "ml", "r1")]
