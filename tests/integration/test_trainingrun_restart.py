"""Restart safety: the operator is SIGKILLed at each phase boundary of a TrainingRun, then restarted.

The operator kills itself at named points (KUBELOOP_CRASH_AT, a testing hook) exactly where a crash is
most awkward: right after creating the Job, right after seeing it finish, and right after creating the
ModelVersion but before the run's status says Registered. A fourth case kills it from outside while the
Job runs. Every run must converge to the same final state as an uninterrupted run, with exactly one Job
and exactly one ModelVersion.
"""

from __future__ import annotations

import signal

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
    wait_for,
)

pytestmark = pytest.mark.integration
pytest_plugins = ["operator_fixtures"]

STEPS = ("DataValidated", "Trained", "ModelValidated", "Registered", "Succeeded")


def final_state(cluster, namespace: str, name: str) -> dict:
    """What must be the same whether or not the operator crashed on the way."""
    run = wait_finished(cluster, namespace, name)
    jobs = get(cluster, "jobs", namespace, selector=f"kubeloop.dev/training-run={name}")
    uid = run["metadata"]["uid"]
    versions = get(cluster, "modelversions", namespace, selector=f"kubeloop.dev/training-run-uid={uid}")
    return {
        "conditions": {c["type"]: (c["status"], c["reason"]) for c in run["status"]["conditions"]},
        "jobs": len(jobs),
        "versions": [(mv["metadata"]["name"], mv["spec"]["version"]) for mv in versions],
        "modelVersion": run["status"].get("modelVersion"),
        "metrics": run["status"]["candidateMetrics"],
        "registered": versions[0]["spec"]["metrics"] if versions else None,
        "artifact": run["status"]["artifactDigest"],
    }


def expected(model: str, metrics: dict, digest: str) -> dict:
    return {
        "conditions": {
            **{step: ("True", reason) for step, reason in zip(STEPS, REASONS, strict=True)},
            "Ready": ("True", "Succeeded"),
        },
        "jobs": 1,
        "versions": [(f"{model}-v1", 1)],
        "modelVersion": f"{model}-v1",
        "metrics": metrics,
        "registered": metrics,
        "artifact": digest,
    }


REASONS = ("DataValid", "TrainingComplete", "GatePassed", "VersionRegistered", "Succeeded")


@pytest.fixture
def data(cluster, namespace) -> str:
    return upload(cluster, f"datasets/{namespace}/iris.csv", iris_csv())


def test_a_run_converges_after_a_sigkill_at_each_phase_boundary(cluster, operator, namespace, data):
    # the reference: the same training without any crash (same data, estimator and seed)
    apply(cluster, training_run("calm", namespace, data, model="calm"))
    reference = final_state(cluster, namespace, "calm")
    assert reference == expected("calm", reference["metrics"], reference["artifact"]), reference

    for point in ("job-created", "job-finished", "version-created"):
        model, name = f"crash-{point}", f"run-{point}"
        operator.restart(KUBELOOP_CRASH_AT=point)
        apply(cluster, training_run(name, namespace, data, model=model))
        assert operator.wait_exit(timeout=120) == -signal.SIGKILL, operator.tail()
        assert f"crash point {point} reached" in operator.log()

        run = get(cluster, "trainingrun", namespace, name)
        jobs = get(cluster, "jobs", namespace, selector=f"kubeloop.dev/training-run={name}")
        versions = get(cluster, "modelversions", namespace, selector=f"kubeloop.dev/model={model}")
        # the crash really happened between the write and its record
        if point == "job-created":
            assert len(jobs) == 1 and "jobName" not in (run.get("status") or {})
        if point == "version-created":
            assert len(versions) == 1 and condition(run, "Registered") is None

        operator.start()
        state = final_state(cluster, namespace, name)
        assert state == expected(model, reference["metrics"], state["artifact"]), (point, state)

    # killed from outside while the Job runs: the restarted operator picks the Job up where it is
    operator.start() if not operator.running else None
    apply(cluster, training_run("outside", namespace, data, model="outside"))
    wait_for(
        lambda: (get(cluster, "trainingrun", namespace, "outside").get("status") or {}).get("jobName"),
        60,
        "the Job to be recorded",
        interval=0.1,
    )
    operator.kill()
    operator.start()
    state = final_state(cluster, namespace, "outside")
    assert state == expected("outside", reference["metrics"], state["artifact"]), state
