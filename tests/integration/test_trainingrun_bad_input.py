"""Bad input ends a TrainingRun with a clear condition message, once: no crash loop, no endless retries."""

from __future__ import annotations

import time

import pytest

pytest.register_assert_rewrite("operator_fixtures")
from operator_fixtures import (  # noqa: E402
    apply,
    condition,
    get,
    iris_csv,
    training_run,
    upload,
    wait_finished,
)

pytestmark = pytest.mark.integration
pytest_plugins = ["operator_fixtures"]


def assert_settled(cluster, operator, namespace: str, name: str, seconds: float = 8.0) -> dict:
    """The finished run is left alone: its resourceVersion and its Events do not change any more."""
    before = get(cluster, "trainingrun", namespace, name)
    events = len([e for e in get(cluster, "events", namespace) if e["involvedObject"]["name"] == name])
    time.sleep(seconds)
    after = get(cluster, "trainingrun", namespace, name)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert (
        len([e for e in get(cluster, "events", namespace) if e["involvedObject"]["name"] == name]) == events
    )
    assert after["metadata"].get("finalizers") in (None, []), after["metadata"]  # no daemon left behind
    assert operator.running
    return after


def jobs_of(cluster, namespace: str, run: str) -> list[dict]:
    return get(cluster, "jobs", namespace, selector=f"kubeloop.dev/training-run={run}")


def test_unknown_and_forbidden_estimators_fail_with_the_trainers_message(cluster, operator, namespace):
    data = upload(cluster, f"datasets/{namespace}/iris.csv", iris_csv())
    apply(
        cluster,
        training_run("unknown", namespace, data, estimator="sklearn.ensemble.NoSuchForest", params={}),
        training_run("outside", namespace, data, estimator="os.system", params={}, training={"retries": 3}),
    )
    for name, words in (("unknown", "NoSuchForest"), ("outside", "os.system")):
        run = wait_finished(cluster, namespace, name)
        failed = condition(run, "Succeeded")
        assert failed["status"] == "False" and failed["reason"] == "EstimatorRejected", failed
        assert words in failed["message"]
        assert condition(run, "Trained")["reason"] == "EstimatorRejected"
        assert condition(run, "Registered")["reason"] == "Skipped"
        (job,) = jobs_of(cluster, namespace, name)
        # a permanent failure: the pod failure policy stopped the Job after one pod, despite retries: 3
        assert job["status"].get("failed") == 1, job["status"]
        assert_settled(cluster, operator, namespace, name)
    assert get(cluster, "modelversions", namespace) == []


def test_a_trainer_over_its_memory_limit_is_oom_killed_and_the_run_names_the_resources(
    cluster, operator, namespace
):
    """The container runtime enforces the limit: the kernel kills the trainer, and the run says so."""
    data = upload(cluster, f"datasets/{namespace}/iris.csv", iris_csv())
    tight = {"resources": {"requests": {"memory": "48Mi"}, "limits": {"memory": "48Mi"}}, "retries": 0}
    apply(cluster, training_run("tight", namespace, data, training=tight))
    run = wait_finished(cluster, namespace, "tight")
    failed = condition(run, "Succeeded")
    assert failed["status"] == "False" and failed["reason"] == "OOMKilled", failed
    assert "spec.training.resources" in failed["message"] and "(48Mi)" in failed["message"]
    assert condition(run, "Trained")["reason"] == "OOMKilled"
    (pod,) = get(cluster, "pods", namespace, selector="kubeloop.dev/training-run=tight")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "OOMKilled" and terminated["exitCode"] == 137


def test_missing_data_fails_with_the_uri_in_the_message(cluster, operator, namespace):
    missing = f"s3://{cluster.s3.bucket}/datasets/{namespace}/nowhere.csv"
    apply(cluster, training_run("no-data", namespace, missing))
    run = wait_finished(cluster, namespace, "no-data")
    failed = condition(run, "Succeeded")
    assert failed["reason"] == "DataUnavailable" and "nowhere.csv" in failed["message"], failed
    assert condition(run, "DataValidated")["status"] == "False"
    assert_settled(cluster, operator, namespace, "no-data")


def test_data_that_fails_the_data_gate_names_the_violation(cluster, operator, namespace):
    data = upload(cluster, f"datasets/{namespace}/iris.csv", iris_csv())
    gate = {"validation": {"minRows": 1000, "ranges": {"petal length (cm)": {"max": 5}}}}
    apply(cluster, training_run("small", namespace, data, data=gate))
    run = wait_finished(cluster, namespace, "small")
    invalid = condition(run, "DataValidated")
    assert invalid["status"] == "False" and invalid["reason"] == "DataInvalid"
    assert "1000" in invalid["message"] and "150" in invalid["message"], invalid
    checks = {g["metric"] for g in run["status"]["gates"] if not g["passed"]}
    assert "min_rows" in checks and any(c.startswith("range") for c in checks), run["status"]["gates"]
    assert condition(run, "Succeeded")["reason"] == "DataValidationFailed"


@pytest.mark.parametrize(
    ("spec_patch", "field"),
    [
        ({"validation": {"thresholds": [{"metric": "acuracy", "min": 0.9}]}}, "thresholds[0].metric"),
        ({"validation": {"champion": {"metric": "rmse"}}}, "champion.higherIsBetter"),
        (
            {"training": {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "500m"}}}},
            "resources.requests.cpu",
        ),
        ({"data": {"format": "parquet"}}, "spec.data.format"),
    ],
    ids=["metric-typo", "metric-direction", "request-above-limit", "format-vs-uri"],
)
def test_a_spec_the_schema_cannot_catch_ends_the_run_naming_the_field(
    cluster, operator, namespace, spec_patch, field
):
    data = f"s3://{cluster.s3.bucket}/datasets/{namespace}/iris.csv"
    run = training_run("bad-spec", namespace, data)
    for key, value in spec_patch.items():
        run["spec"][key] = {**run["spec"].get(key, {}), **value}
    apply(cluster, run)
    run = wait_finished(cluster, namespace, "bad-spec", timeout=60)
    failed = condition(run, "Succeeded")
    assert failed["status"] == "False" and failed["reason"] == "InvalidSpec", failed
    assert field in failed["message"], failed["message"]
    assert condition(run, "Ready")["status"] == "False" and condition(run, "Stalled")["status"] == "True"
    assert jobs_of(cluster, namespace, "bad-spec") == []  # refused before anything was created
    assert_settled(cluster, operator, namespace, "bad-spec", seconds=4)
