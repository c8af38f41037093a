"""The registry: race-free version numbers, the index ConfigMap, and stage transitions, on the real cluster."""

from __future__ import annotations

import json
import time

import pytest

pytest.register_assert_rewrite("operator_fixtures")
from kubeloop.registry import promote  # noqa: E402
from operator_fixtures import (  # noqa: E402
    apply,
    condition,
    get,
    iris_csv,
    training_run,
    upload,
    wait_finished,
    wait_for,
)

pytestmark = pytest.mark.integration
pytest_plugins = ["operator_fixtures"]

DIGEST = "sha256:" + "ab" * 32


def index_of(cluster, namespace: str, model: str) -> dict | None:
    found = get(cluster, "configmap", namespace, "kubeloop-registry")
    raw = ((found or {}).get("data") or {}).get(f"{model}.json")
    return json.loads(raw) if raw else None


def model_version(namespace: str, model: str, version: int, stage: str) -> dict:
    """A ModelVersion as a user (or GitOps) would apply it."""
    return {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": f"{model}-v{version}", "namespace": namespace},
        "spec": {
            "model": model,
            "version": version,
            "artifact": {"uri": f"s3://kubeloop/artifacts/{model}/v{version}", "digest": DIGEST},
            "stage": stage,
        },
    }


def stage_of(cluster, namespace: str, name: str) -> str | None:
    return ((get(cluster, "modelversion", namespace, name) or {}).get("status") or {}).get("stage")


def test_twenty_concurrent_runs_get_twenty_distinct_versions(cluster, operator, namespace):
    data = upload(cluster, f"datasets/{namespace}/iris.csv", iris_csv())
    names = [f"burst-{i:02d}" for i in range(20)]
    start = time.monotonic()
    apply(cluster, *(training_run(n, namespace, data, model="burst", params={"max_depth": 2}) for n in names))

    def all_done():
        runs = get(cluster, "trainingruns", namespace)
        finished = [r for r in runs if (condition(r, "Succeeded") or {}).get("status") in ("True", "False")]
        return runs if len(finished) == len(names) else None

    runs = wait_for(all_done, 600, "20 TrainingRuns to finish", interval=2)
    elapsed = time.monotonic() - start
    assert all(condition(r, "Succeeded")["status"] == "True" for r in runs), [
        (r["metadata"]["name"], condition(r, "Succeeded")) for r in runs
    ]
    versions = sorted(r["status"]["version"] for r in runs)
    assert versions == list(range(1, 21))
    mvs = get(cluster, "modelversions", namespace)
    assert sorted(mv["spec"]["version"] for mv in mvs) == versions
    # each run points at the ModelVersion whose lineage points back at it
    by_name = {mv["metadata"]["name"]: mv for mv in mvs}
    for run in runs:
        assert (
            by_name[run["status"]["modelVersion"]]["spec"]["lineage"]["trainingRun"]
            == run["metadata"]["name"]
        )

    def index_complete():
        entry = index_of(cluster, namespace, "burst")
        return entry if entry and len(entry["versions"]) == 20 and entry["latest"] == 20 else None

    entry = wait_for(index_complete, 30, "the index to list all 20 versions")
    assert sorted(v["version"] for v in entry["versions"]) == versions
    assert {v["name"] for v in entry["staging"]} == set(by_name)  # Manual policy: all registered as Staging
    assert entry["production"] is None
    print(f"20 concurrent TrainingRuns, apply to all finished: {elapsed:.1f}s")


def test_promote_archives_the_previous_production_and_records_who_why_when(
    cluster, operator, namespace, registry_context
):
    data = upload(cluster, f"datasets/{namespace}/iris.csv", iris_csv())
    apply(cluster, *(training_run(f"reg-{i}", namespace, data, model="reg") for i in (1, 2)))
    for i in (1, 2):
        wait_for(
            lambda i=i: stage_of(cluster, namespace, f"reg-v{i}") == "Staging", 120, f"reg-v{i} in Staging"
        )

    # a rollout completing calls promote(): the first production version, then its successor
    promote(registry_context, namespace, "reg-v1", by="rollout of reg-v1", reason="Promoted")
    assert stage_of(cluster, namespace, "reg-v1") == "Production"
    promote(registry_context, namespace, "reg-v2", by="rollout of reg-v2", reason="Promoted")
    v1 = get(cluster, "modelversion", namespace, "reg-v1")
    v2 = get(cluster, "modelversion", namespace, "reg-v2")
    assert (v1["status"]["stage"], v2["status"]["stage"]) == ("Archived", "Production")
    assert v1["spec"]["stage"] == v2["spec"]["stage"] == "Staging"  # a user's spec is never rewritten
    steps = [(h["from"], h["to"], h["by"], h["reason"]) for h in v1["status"]["history"]]
    assert steps == [
        ("None", "Staging", f"TrainingRun {v1['spec']['lineage']['trainingRun']}", "Registered"),
        ("Staging", "Production", "rollout of reg-v1", "Promoted"),
        ("Production", "Archived", "ModelVersion reg-v2", "Superseded"),
    ]
    assert all(h["time"] for h in v1["status"]["history"])
    assert v2["status"]["history"][-1]["by"] == "rollout of reg-v2"
    assert condition(v2, "Ready")["status"] == "True"

    # promoting the production version again changes nothing (the rollout may write its own fields)
    history = v2["status"]["history"]
    promote(registry_context, namespace, "reg-v2", by="rollout of reg-v2", reason="Promoted")
    again = get(cluster, "modelversion", namespace, "reg-v2")["status"]
    assert again["history"] == history and again["stage"] == "Production"

    def indexed():
        entry = index_of(cluster, namespace, "reg")
        return entry if entry and (entry["production"] or {}).get("name") == "reg-v2" else None

    entry = wait_for(indexed, 30, "the index to show reg-v2 in production")
    changes = [(h["name"], h["from"], h["to"], h["by"]) for h in entry["history"]]
    assert ("reg-v1", "Production", "Archived", "ModelVersion reg-v2") in changes
    assert ("reg-v2", "Staging", "Production", "rollout of reg-v2") in changes
    assert entry["staging"] == [] and [v["name"] for v in entry["versions"]] == ["reg-v2", "reg-v1"]

    # a manual edit of spec.stage (other than Production, which starts a rollout) is applied once
    cluster.kubectl(
        "patch",
        "modelversion",
        "reg-v1",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"stage":"None"}}',
    )
    wait_for(lambda: stage_of(cluster, namespace, "reg-v1") == "None", 30, "reg-v1 taken out to None")
    edited = get(cluster, "modelversion", namespace, "reg-v1")["status"]["history"][-1]
    assert (edited["from"], edited["to"], edited["by"], edited["reason"]) == (
        "Archived",
        "None",
        "kubectl-patch",
        "ManualEdit",
    )

    # after a restart, nothing acts on old requests: reg-v2 asked for Staging long ago, and stays Production
    operator.restart()
    time.sleep(5)
    assert stage_of(cluster, namespace, "reg-v2") == "Production"
    assert stage_of(cluster, namespace, "reg-v1") == "None"

    # the index is a projection: deleted, it comes back the same
    def settled():
        entry = index_of(cluster, namespace, "reg")
        stages = {v["name"]: v["stage"] for v in (entry or {}).get("versions", [])}
        return entry if stages.get("reg-v1") == "None" else None

    wait_for(settled, 30, "the index to show reg-v1 in stage None")
    before = get(cluster, "configmap", namespace, "kubeloop-registry")["data"]
    cluster.kubectl("delete", "configmap", "kubeloop-registry", "-n", namespace)
    rebuilt = wait_for(
        lambda: (c := get(cluster, "configmap", namespace, "kubeloop-registry")) and c["data"],
        30,
        "the rebuild",
    )
    assert rebuilt == before


def test_auto_policy_registers_the_version_with_production_requested(cluster, operator, namespace):
    data = upload(cluster, f"datasets/{namespace}/iris.csv", iris_csv())
    apply(cluster, training_run("auto-1", namespace, data, model="auto", policy="Auto"))
    run = wait_finished(cluster, namespace, "auto-1")
    assert condition(run, "Succeeded")["status"] == "True"
    mv = get(cluster, "modelversion", namespace, "auto-v1")
    assert mv["spec"]["stage"] == "Production"  # what happens next is the rollout's business
    assert (
        condition(run, "Registered")["message"]
        == "registered auto-v1 (version 1, stage Production requested)"
    )
