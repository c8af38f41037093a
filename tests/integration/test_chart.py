"""The Helm chart against a real API server: lint, render, apply, and the RBAC it grants really works."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kubeloop"
TOGGLES = (
    "metrics.serviceMonitor.enabled=true",
    "metrics.prometheusRule.enabled=true",
    "metrics.grafanaDashboard.enabled=true",
)
# Kinds whose CRDs a plain cluster does not have (Prometheus Operator, kopf peering before install).
FOREIGN_KINDS = {"ServiceMonitor", "PrometheusRule", "ClusterKopfPeering", "KopfPeering"}


def helm(cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(cluster.tool("helm")), *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}:\n{result.stderr}")
    return result


def render(cluster, namespace: str, *sets: str, release: str = "kl") -> list[dict]:
    args = ["template", release, str(CHART), "--namespace", namespace]
    for s in sets:
        args += ["--set", s]
    return [d for d in yaml.safe_load_all(helm(cluster, *args).stdout) if d]


@pytest.fixture
def namespace(cluster):
    name = f"chart-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.mark.parametrize("sets", [(), TOGGLES], ids=["defaults", "toggles"])
def test_helm_lint_is_clean(cluster, sets):
    args = ["lint", str(CHART), "--strict"]
    for s in sets:
        args += ["--set", s]
    out = helm(cluster, *args).stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    assert "[ERROR]" not in out and "[WARNING]" not in out


@pytest.mark.parametrize(
    "sets",
    [
        (),
        TOGGLES,
        ("operator.replicas=2", "operator.peering.enabled=true", "rbac.gatewayApi=true"),
        ("watch.mode=Namespaced",),
    ],
    ids=["defaults", "toggles", "peering", "namespaced"],
)
def test_helm_template_output_applies_to_the_api_server(cluster, namespace, sets):
    objects = render(cluster, namespace, *sets)
    applicable = [o for o in objects if o["kind"] not in FOREIGN_KINDS]
    result = cluster.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-", input=yaml.safe_dump_all(applicable)
    )
    applied = result.stdout.strip().splitlines()
    assert len(applied) == len(applicable), result.stdout
    assert all("(server dry run)" in line for line in applied)
    kinds = {o["kind"] for o in applicable}
    assert {"Deployment", "ServiceAccount", "CustomResourceDefinition", "Service"} <= kinds


def can_i(cluster, sa: str, verb: str, resource: str, namespace: str) -> bool:
    result = cluster.kubectl("auth", "can-i", verb, resource, "-n", namespace, f"--as={sa}", check=False)
    return result.stdout.strip() == "yes"


def install_rbac(cluster, namespace: str, *sets: str) -> tuple[str, list[dict]]:
    """Really create the chart's ServiceAccount and RBAC objects (not the operator), under a unique name."""
    release = f"rbac-{uuid.uuid4().hex[:6]}"
    objects = [
        o
        for o in render(cluster, namespace, f"fullnameOverride={release}", *sets, release=release)
        if o["kind"] in {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    ]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))
    return f"system:serviceaccount:{namespace}:{release}", objects


def uninstall(cluster, objects: list[dict]) -> None:
    cluster.kubectl(
        "delete", "--wait=false", "--ignore-not-found", "-f", "-", input=yaml.safe_dump_all(objects)
    )


def test_cluster_mode_rbac_grants_what_the_operator_needs_and_nothing_more(kubeloop_crds, cluster, namespace):
    sa, objects = install_rbac(cluster, namespace)
    try:
        other = "default"
        allowed = [
            ("watch", "trainingruns.kubeloop.dev"),
            ("create", "modelversions.kubeloop.dev"),
            ("patch", "driftmonitors.kubeloop.dev/status"),
            ("create", "jobs.batch"),
            ("list", "pods"),
            ("update", "configmaps"),
            ("patch", "deployments.apps"),
            ("delete", "services"),
            ("create", "events"),
        ]
        for verb, resource in allowed:
            assert can_i(cluster, sa, verb, resource, other), f"{sa} cannot {verb} {resource}"
        assert can_i(cluster, sa, "list", "customresourcedefinitions.apiextensions.k8s.io", other)
        denied = [
            ("get", "secrets"),
            ("delete", "trainingruns.kubeloop.dev"),
            ("update", "trainingruns.kubeloop.dev"),
            ("create", "pods"),
            ("delete", "pods"),
            ("patch", "jobs.batch"),
            ("delete", "jobs.batch"),
            ("patch", "configmaps"),
            ("delete", "configmaps"),
            ("create", "customresourcedefinitions.apiextensions.k8s.io"),
            ("create", "roles.rbac.authorization.k8s.io"),
            ("create", "httproutes.gateway.networking.k8s.io"),
        ]
        for verb, resource in denied:
            assert not can_i(cluster, sa, verb, resource, other), f"{sa} may {verb} {resource}"
    finally:
        uninstall(cluster, objects)


def test_namespaced_mode_rbac_stays_in_its_namespaces(kubeloop_crds, cluster, namespace):
    sa, objects = install_rbac(cluster, namespace, "watch.mode=Namespaced")
    try:
        assert can_i(cluster, sa, "create", "jobs.batch", namespace)
        assert can_i(cluster, sa, "watch", "trainingruns.kubeloop.dev", namespace)
        assert not can_i(cluster, sa, "create", "jobs.batch", "default")
        assert not can_i(cluster, sa, "watch", "trainingruns.kubeloop.dev", "default")
        # Nothing cluster-wide: the operator finds its kinds through API discovery, not by watching CRDs.
        assert not can_i(cluster, sa, "watch", "customresourcedefinitions.apiextensions.k8s.io", "default")
        assert not can_i(cluster, sa, "list", "namespaces", "default")
    finally:
        uninstall(cluster, objects)


@pytest.mark.parametrize(
    "value, complaint",
    [
        ("unknownTopLevel=1", "additional properties"),
        ("operator.replicas=two", "replicas"),
        ("watch.mode=Everywhere", "mode"),
        ("operator.resources.limits.memory=much", "memory"),
        ("crds.keep=sometimes", "keep"),
    ],
)
def test_values_that_break_the_schema_are_rejected_by_helm(cluster, value, complaint):
    result = helm(cluster, "template", "kl", str(CHART), "--set", value, check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert complaint in result.stderr
