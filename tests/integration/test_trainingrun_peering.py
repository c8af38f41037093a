"""Peering: two replicas of the operator, and only one acts; when it dies, the other takes over."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("operator_fixtures")
from operator_fixtures import (  # noqa: E402
    OperatorProcess,
    apply,
    condition,
    helm_template,
    install_rbac,
    iris_csv,
    operator_env,
    server_side_apply,
    training_run,
    upload,
    wait_finished,
    wait_for,
)

pytestmark = pytest.mark.integration
pytest_plugins = ["operator_fixtures"]

PEERING = ("operator.peering.enabled=true",)


@pytest.fixture
def peering(cluster):
    """The chart's peering CRD and ClusterKopfPeering object, and its RBAC rule for kopf's heartbeats."""
    install_rbac(cluster, sets=PEERING)
    objects = helm_template(cluster, "peering.yaml", sets=PEERING)
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    server_side_apply(cluster, crds)
    cluster.kubectl(
        "wait", "--for=condition=Established", "crd/clusterkopfpeerings.kopf.dev", "--timeout=60s"
    )
    peers = [o for o in objects if o["kind"] == "ClusterKopfPeering"]
    for peer in peers:
        peer["metadata"].pop("annotations", None)  # Helm hook annotations mean nothing to kubectl
    server_side_apply(cluster, peers)
    yield peers[0]["metadata"]["name"]
    cluster.kubectl("delete", "clusterkopfpeering", peers[0]["metadata"]["name"], "--ignore-not-found")


def test_only_the_leading_replica_acts_and_the_other_takes_over(
    cluster, operator, operator_setup, namespace, peering, tmp_path
):
    operator.stop()  # the session's standalone operator would act regardless of peering
    env = operator_env(cluster)
    leader = OperatorProcess(operator_setup["kubeconfig"], tmp_path / "leader.log", env)
    follower = OperatorProcess(operator_setup["kubeconfig"], tmp_path / "follower.log", env)
    common = {"KUBELOOP_PEERING": peering, "KUBELOOP_PEERING_LIFETIME": "10"}
    try:
        leader.start(KUBELOOP_PEERING_PRIORITY="200", **common)
        follower.start(KUBELOOP_PEERING_PRIORITY="100", **common)
        # kopf starts paused, and only the replica with the highest priority resumes
        wait_for(lambda: "Resuming operations" in leader.log(), 60, "the leader to resume")
        follower.wait_ready()

        data = upload(cluster, f"datasets/{namespace}/iris.csv", iris_csv())
        apply(cluster, training_run("first", namespace, data))
        assert condition(wait_finished(cluster, namespace, "first"), "Succeeded")["status"] == "True"
        assert f"{namespace}/first finished" in leader.log()
        assert "first" not in follower.log() and "Resuming operations" not in follower.log()

        leader.kill()
        apply(cluster, training_run("second", namespace, data))
        run = wait_finished(cluster, namespace, "second", timeout=120)
        assert condition(run, "Succeeded")["status"] == "True"
        assert f"{namespace}/second finished" in follower.log()
        assert "Resuming operations" in follower.log()
    finally:
        print("----- leader -----\n" + leader.tail(60))
        print("----- follower -----\n" + follower.tail(60))
        leader.kill()
        follower.kill()
