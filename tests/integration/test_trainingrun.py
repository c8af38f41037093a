"""TrainingRun → Job → gates → ModelVersion on the real local cluster, with the real trainer.

The operator runs as a subprocess under the chart's RBAC (a ServiceAccount token, not the admin); the real
node runs the training pods from the trainer image, and they read data from and write artifacts to the
cluster's S3 store.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
from kubeloop.registry import promote

pytest.register_assert_rewrite("operator_fixtures")
from operator_fixtures import (  # noqa: E402
    apply,
    condition,
    get,
    iris_csv,
    read_json,
    training_run,
    upload,
    wait_finished,
    wait_for,
)

pytestmark = pytest.mark.integration
pytest_plugins = ["operator_fixtures"]


def stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_run_on_iris_registers_v1_with_the_trainers_metrics(cluster, operator, namespace):
    data = upload(cluster, f"datasets/{namespace}/iris.csv", iris_csv())
    start = time.monotonic()
    apply(cluster, training_run("iris-1", namespace, data))
    run = wait_finished(cluster, namespace, "iris-1")
    elapsed = time.monotonic() - start
    succeeded = condition(run, "Succeeded")
    assert succeeded["status"] == "True", run["status"]
    for type_ in ("DataValidated", "Trained", "ModelValidated", "Registered"):
        assert condition(run, type_)["status"] == "True", (type_, run["status"]["conditions"])
    assert condition(run, "Ready")["status"] == "True"
    status = run["status"]
    assert status["modelVersion"] == "iris-v1" and status["version"] == 1
    assert status["jobName"] == "iris-1-train"

    mv = get(cluster, "modelversion", namespace, "iris-v1")
    metrics_json = read_json(cluster, mv["spec"]["artifact"]["uri"] + "/metrics.json")
    assert mv["spec"]["metrics"] == metrics_json["candidate"]
    assert mv["spec"]["metrics"] == status["candidateMetrics"]
    assert mv["spec"]["metrics"]["accuracy"] > 0.8
    manifest = read_json(cluster, mv["spec"]["artifact"]["uri"] + "/manifest.json")
    assert manifest["data"]["sha256"] == mv["spec"]["lineage"]["dataHash"] == status["dataHash"]
    assert mv["spec"]["lineage"]["trainingRun"] == "iris-1"
    assert mv["spec"]["stage"] == "Staging"  # Manual policy: registered as Staging, waiting for a user

    def in_staging():
        found = get(cluster, "modelversion", namespace, "iris-v1")
        return found if (found.get("status") or {}).get("stage") == "Staging" else None

    mv = wait_for(in_staging, 30, "iris-v1 to be in Staging")
    recorded = mv["status"]["history"][-1]
    assert (recorded["to"], recorded["by"], recorded["reason"]) == (
        "Staging",
        "TrainingRun iris-1",
        "Registered",
    )
    assert "ownerReferences" not in mv["metadata"]  # outlives its run

    # the Job: owned by the run, restricted, deadline and retries from the spec, task from a ConfigMap
    job = get(cluster, "job", namespace, "iris-1-train")
    assert job["metadata"]["ownerReferences"][0]["uid"] == run["metadata"]["uid"]
    assert job["spec"]["activeDeadlineSeconds"] == 300 and job["spec"]["backoffLimit"] == 0
    pod_spec = job["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    secret_env = [e for e in container["env"] if "valueFrom" in e]
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in secret_env} == {"kubeloop-s3"}
    access_key = cluster.s3.access_key
    assert access_key not in json.dumps(job) and access_key not in json.dumps(run)

    # the registry index lists it
    def indexed():
        data = (get(cluster, "configmap", namespace, "kubeloop-registry") or {}).get("data") or {}
        entry = json.loads(data.get("iris.json", "{}"))
        return entry if entry.get("staging") else None

    entry = wait_for(indexed, 30, "the index to list iris-v1 in staging")
    assert [v["name"] for v in entry["staging"]] == ["iris-v1"] and entry["latest"] == 1
    assert entry["production"] is None

    # an Event for each step, none of them carrying the credentials
    events = get(cluster, "events", namespace)
    reasons = [e["reason"] for e in events if e["involvedObject"]["name"] == "iris-1"]
    for reason in (
        "Training",
        "DataValid",
        "TrainingComplete",
        "GatePassed",
        "VersionRegistered",
        "Succeeded",
    ):
        assert reason in reasons, reasons
    assert all(access_key not in e.get("message", "") for e in events)
    job_seconds = (stamp(job["status"]["completionTime"]) - stamp(job["status"]["startTime"])).total_seconds()
    run_seconds = (
        stamp(status["completionTime"]) - stamp(run["metadata"]["creationTimestamp"])
    ).total_seconds()
    print(
        f"TrainingRun end-to-end: {elapsed:.1f}s from apply to Succeeded seen by polling; "
        f"{run_seconds:.0f}s from creation to completionTime, of which the Job ran {job_seconds:.0f}s "
        "(1s timestamp resolution)"
    )


def test_a_champion_the_candidate_cannot_beat_fails_the_gate_with_both_numbers(
    cluster, operator, namespace, registry_context
):
    data = upload(cluster, f"datasets/{namespace}/iris.csv", iris_csv())
    apply(cluster, training_run("champ", namespace, data, params={"max_depth": 4}))
    assert condition(wait_finished(cluster, namespace, "champ"), "Succeeded")["status"] == "True"
    # make it the champion, as a completed rollout does
    promote(registry_context, namespace, "iris-v1", by="test rollout", reason="Promoted")
    assert get(cluster, "modelversion", namespace, "iris-v1")["status"]["stage"] == "Production"
    gate = {"champion": {"metric": "accuracy", "minImprovement": 0.5}}
    apply(cluster, training_run("challenger", namespace, data, params={"max_depth": 1}, validation=gate))
    run = wait_finished(cluster, namespace, "challenger")
    status = run["status"]
    succeeded = condition(run, "Succeeded")
    assert succeeded["status"] == "False" and succeeded["reason"] == "GateFailed"
    assert condition(run, "ModelValidated")["reason"] == "ChampionNotBeaten"
    assert condition(run, "Registered")["status"] == "False"
    candidate, champion = status["candidateMetrics"]["accuracy"], status["championMetrics"]["accuracy"]
    assert f"{candidate:.6g}" in succeeded["message"] and f"{champion:.6g}" in succeeded["message"]
    assert status["championVersion"] == "iris-v1"
    # the champion was scored on the same split: its accuracy there is the one it was registered with
    assert champion == get(cluster, "modelversion", namespace, "iris-v1")["spec"]["metrics"]["accuracy"]
    assert [m["metadata"]["name"] for m in get(cluster, "modelversions", namespace)] == ["iris-v1"]
    assert "modelVersion" not in status


def test_deleting_a_run_deletes_its_job_and_task_but_not_its_model_version(cluster, operator, namespace):
    data = upload(cluster, f"datasets/{namespace}/iris.csv", iris_csv())
    apply(cluster, training_run("done", namespace, data))
    assert condition(wait_finished(cluster, namespace, "done"), "Succeeded")["status"] == "True"
    apply(cluster, training_run("busy", namespace, data))
    # a run in progress holds kopf's finalizer (its daemon is stopped before the run goes)
    busy = wait_for(
        lambda: (r := get(cluster, "trainingrun", namespace, "busy"))["metadata"].get("finalizers") and r,
        60,
        "the running run's finalizer",
        interval=0.1,
    )
    assert busy["metadata"]["finalizers"] == ["kubeloop.dev/finalizer"]
    wait_finished(cluster, namespace, "busy")
    assert not get(cluster, "trainingrun", namespace, "busy")["metadata"].get("finalizers")

    version = get(cluster, "trainingrun", namespace, "done")["status"]["modelVersion"]
    cluster.kubectl("delete", "trainingrun", "done", "-n", namespace, "--timeout=60s")

    def collected():
        jobs = get(cluster, "jobs", namespace, selector="kubeloop.dev/training-run=done")
        maps = get(cluster, "configmaps", namespace, selector="kubeloop.dev/training-run=done")
        return jobs == [] and maps == []

    wait_for(collected, 60, "the garbage collector to delete the Job and the task ConfigMap")
    kept = get(cluster, "modelversion", namespace, version)
    assert kept["spec"]["lineage"]["trainingRun"] == "done"
