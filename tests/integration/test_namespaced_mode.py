"""`watch.mode: Namespaced`: the operator, under the chart's namespaced RBAC, serves its namespace at once."""

from __future__ import annotations

import pytest

pytest.register_assert_rewrite("operator_fixtures")
from kubeloop_demo.stack import OPERATOR_NAMESPACE  # noqa: E402
from operator_fixtures import (  # noqa: E402
    OperatorProcess,
    apply,
    condition,
    install_rbac,
    iris_csv,
    operator_env,
    training_run,
    upload,
    wait_finished,
)

pytestmark = pytest.mark.integration
pytest_plugins = ["operator_fixtures"]


def test_namespaced_rbac_serves_the_namespace_without_listing_namespaces(
    cluster, operator, namespace, tmp_path
):
    # A release of its own, so that this ServiceAccount has only the namespaced mode's Roles.
    sets = ("watch.mode=Namespaced", f"watch.namespaces={{{namespace}}}", "fullnameOverride=kubeloop-ns")
    account = install_rbac(cluster, sets=sets)
    assert account == "kubeloop-ns"
    denied = cluster.kubectl(
        "auth",
        "can-i",
        "list",
        "namespaces",
        f"--as=system:serviceaccount:{OPERATOR_NAMESPACE}:{account}",
        check=False,
    )
    assert denied.stdout.strip() == "no"
    crds = cluster.kubectl(
        "auth",
        "can-i",
        "list",
        "customresourcedefinitions",
        f"--as=system:serviceaccount:{OPERATOR_NAMESPACE}:{account}",
        check=False,
    )
    assert crds.stdout.strip() == "no"  # the namespaced mode has no ClusterRole at all
    kubeconfig = cluster.service_account_kubeconfig(OPERATOR_NAMESPACE, account, tmp_path / "ns.kubeconfig")

    operator.stop()  # the session's cluster-wide operator would serve the namespace as well
    scoped = OperatorProcess(kubeconfig, tmp_path / "namespaced.log", operator_env(cluster))
    try:
        scoped.start(KUBELOOP_NAMESPACES=namespace)
        data = upload(cluster, f"datasets/{namespace}/iris.csv", iris_csv())
        apply(cluster, training_run("scoped", namespace, data))
        run = wait_finished(cluster, namespace, "scoped")
        assert condition(run, "Succeeded")["status"] == "True"
        log = scoped.log()
        assert f"{namespace}/scoped finished" in log
        # Nothing it is not allowed to do was tried (kopf used to list namespaces and retry the 403).
        assert "forbidden" not in log.lower() and "Not enough permissions" not in log
    finally:
        print("----- namespaced operator -----\n" + scoped.tail(60))
        scoped.kill()
