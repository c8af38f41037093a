"""The chart, rendered with helm: lint, CRDs, Deployment security, RBAC, toggles and the values schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from kubeloop.api import chartgen, metrics
from kubeloop.api.chartvalues import ChartValues
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "kubeloop"
ALL_TOGGLES = (
    "metrics.serviceMonitor.enabled=true",
    "metrics.prometheusRule.enabled=true",
    "metrics.grafanaDashboard.enabled=true",
)


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def deployment(objects: list[dict]) -> dict:
    (dep,) = by_kind(objects, "Deployment")
    return dep


@pytest.mark.parametrize(
    "sets",
    [
        (),
        ALL_TOGGLES,
        ("watch.mode=Namespaced", "watch.namespaces={ml,ml-staging}", "operator.peering.enabled=true"),
    ],
    ids=["defaults", "all-toggles", "namespaced-peering"],
)
def test_helm_lint_is_clean(chart, sets):
    args = ["lint", str(CHART), "--strict"]
    for s in sets:
        args += ["--set", s]
    result = chart.run(*args)
    assert "0 chart(s) failed" in result.stdout
    assert "[ERROR]" not in result.stdout and "[WARNING]" not in result.stdout


def test_chart_crds_equal_crds_dir(chart):
    rendered = {o["metadata"]["name"]: o for o in by_kind(chart.objects(), "CustomResourceDefinition")}
    committed = {}
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        committed[crd["metadata"]["name"]] = crd
    assert sorted(rendered) == sorted(committed)
    for name, crd in committed.items():
        assert rendered[name]["spec"] == crd["spec"], f"chart CRD {name} differs from crds/: run `make crds`"
        assert rendered[name]["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}


def test_crds_toggle_and_keep(chart):
    assert by_kind(chart.objects("crds.enabled=false"), "CustomResourceDefinition") == []
    crds = by_kind(chart.objects("crds.keep=false"), "CustomResourceDefinition")
    assert len(crds) == 3 and all("annotations" not in c["metadata"] for c in crds)


def test_deployment_defaults_one_replica_recreate_restricted(chart):
    dep = deployment(chart.objects())
    spec = dep["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["runAsNonRoot"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["command"] == ["kubeloop-operator"]
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert pod["serviceAccountName"] == "kl-kubeloop"


def env_of(objects: list[dict]) -> dict[str, object]:
    (container,) = deployment(objects)["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_operator_settings_reach_the_environment(chart):
    env = env_of(
        chart.objects(
            "operator.trainerImage=reg/trainer:9",
            "operator.artifactRoot=s3://b/p",
            "operator.s3.existingSecret=s3creds",
            "operator.s3.endpointUrl=http://127.0.0.1:9000",
            "operator.logLevel=DEBUG",
        )
    )
    assert env["KUBELOOP_TRAINER_IMAGE"] == "reg/trainer:9"
    assert env["KUBELOOP_ARTIFACT_ROOT"] == "s3://b/p"
    assert env["KUBELOOP_LOG_LEVEL"] == "DEBUG"
    assert env["KUBELOOP_NAMESPACES"] == ""
    assert env["KUBELOOP_PEERING"] == ""
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert env["AWS_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "s3creds", "key": "AWS_ACCESS_KEY_ID"}}
    # health and metrics on every interface of the pod: `kubectl port-forward` dials localhost in the pod
    assert "KUBELOOP_BIND_ADDRESS" not in env


def test_more_replicas_need_peering(chart):
    result = chart.template("operator.replicas=2", check=False)
    assert result.returncode != 0 and "needs operator.peering.enabled=true" in result.stderr
    result = chart.template("operator.strategy=RollingUpdate", check=False)
    assert result.returncode != 0 and "needs operator.peering.enabled=true" in result.stderr
    objects = chart.objects("operator.replicas=2", "operator.peering.enabled=true")
    assert deployment(objects)["spec"]["replicas"] == 2
    assert env_of(objects)["KUBELOOP_PEERING"] == "kubeloop"
    (crd,) = [o for o in by_kind(objects, "CustomResourceDefinition") if o["spec"]["group"] == "kopf.dev"]
    assert crd["metadata"]["name"] == "clusterkopfpeerings.kopf.dev"
    (peering,) = by_kind(objects, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "kubeloop"
    (role,) = by_kind(objects, "ClusterRole")
    assert {
        "apiGroups": ["kopf.dev"],
        "resources": ["clusterkopfpeerings"],
        "verbs": ["get", "list", "watch", "patch"],
    } in role["rules"]


# What the operator needs, and nothing else: the least-privilege rule set, verb by verb.
EXPECTED_RULES = {
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
    ("kubeloop.dev", "trainingruns"): {"get", "list", "watch", "patch", "create"},
    ("kubeloop.dev", "modelversions"): {"get", "list", "watch", "patch", "create"},
    ("kubeloop.dev", "driftmonitors"): {"get", "list", "watch", "patch", "create"},
    ("kubeloop.dev", "trainingruns/status"): {"get", "patch"},
    ("kubeloop.dev", "modelversions/status"): {"get", "patch"},
    ("kubeloop.dev", "driftmonitors/status"): {"get", "patch"},
    ("kubeloop.dev", "trainingruns/finalizers"): {"update"},
    ("kubeloop.dev", "modelversions/finalizers"): {"update"},
    ("batch", "jobs"): {"get", "list", "watch", "create"},
    ("", "pods"): {"get", "list", "watch"},
    ("", "configmaps"): {"get", "list", "watch", "create", "update"},
    ("apps", "deployments"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "services"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "events"): {"create"},
}


def flatten_rules(rules: list[dict]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def test_cluster_mode_rbac_is_exactly_least_privilege(chart):
    objects = chart.objects()
    (role,) = by_kind(objects, "ClusterRole")
    assert flatten_rules(role["rules"]) == EXPECTED_RULES
    (binding,) = by_kind(objects, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kl-kubeloop", "namespace": "kubeloop"}]
    assert by_kind(objects, "Role") == []


@pytest.mark.parametrize(
    "sets",
    [(), ("rbac.gatewayApi=true",), ("watch.mode=Namespaced", "operator.peering.enabled=true")],
    ids=["cluster", "gateway", "namespaced"],
)
def test_rbac_has_no_wildcards_and_never_touches_secrets(chart, sets):
    for role in by_kind(chart.objects(*sets), "ClusterRole") + by_kind(chart.objects(*sets), "Role"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
            assert "secrets" not in rule["resources"]
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])


def test_namespaced_mode_uses_roles_in_each_namespace(chart):
    objects = chart.objects("watch.mode=Namespaced", "watch.namespaces={ml,ml-staging}")
    roles = by_kind(objects, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["ml", "ml-staging"]
    namespaced = {k: v for k, v in EXPECTED_RULES.items() if k[1] != "customresourcedefinitions"}
    for role in roles:
        assert flatten_rules(role["rules"]) == namespaced
    # Nothing cluster-wide: the operator serves the exact list and finds its kinds through API discovery.
    assert by_kind(objects, "ClusterRole") == [] and by_kind(objects, "ClusterRoleBinding") == []
    assert sorted(b["metadata"]["namespace"] for b in by_kind(objects, "RoleBinding")) == ["ml", "ml-staging"]
    assert env_of(objects)["KUBELOOP_NAMESPACES"] == "ml,ml-staging"


def test_namespaced_mode_defaults_to_the_release_namespace(chart):
    objects = chart.objects("watch.mode=Namespaced", namespace="team-a")
    assert [r["metadata"]["namespace"] for r in by_kind(objects, "Role")] == ["team-a"]
    assert env_of(objects)["KUBELOOP_NAMESPACES"] == "team-a"


def test_gateway_api_rule_only_when_asked(chart):
    (role,) = by_kind(chart.objects("rbac.gatewayApi=true"), "ClusterRole")
    assert flatten_rules(role["rules"])[("gateway.networking.k8s.io", "httproutes")] == {
        "get",
        "list",
        "watch",
        "create",
        "patch",
        "delete",
    }


@pytest.mark.parametrize(
    "sets",
    [(), ("watch.mode=Namespaced", "operator.peering.enabled=true", "rbac.gatewayApi=true")],
    ids=["cluster", "namespaced"],
)
def test_every_rbac_rule_says_whom_it_serves(chart, sets):
    text = chart.template(*sets).stdout
    roles = [doc for doc in text.split("\n---") if re.search(r"^kind: (Cluster)?Role$", doc, re.M)]
    assert roles
    for doc in roles:
        lines = doc.split("\nrules:\n", 1)[1].splitlines()
        rules = [i for i, line in enumerate(lines) if line.startswith("- apiGroups:")]
        assert rules
        for i in rules:
            block = []
            j = i - 1
            while j >= 0 and lines[j].startswith("#"):
                block.insert(0, lines[j])
                j -= 1
            assert block, f"rule without a comment: {lines[i]}"
            assert re.match(r"# \[(framework|application|framework \+ application)\] ", block[0]), block[0]


def test_monitoring_toggles_are_off_by_default(chart):
    kinds = {o["kind"] for o in chart.objects()}
    assert not {"ServiceMonitor", "PrometheusRule"} & kinds
    assert not [o for o in by_kind(chart.objects(), "ConfigMap") if "dashboard" in o["metadata"]["name"]]


def test_monitoring_toggles_render(chart):
    objects = chart.objects(*ALL_TOGGLES)
    (monitor,) = by_kind(objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    (rule,) = by_kind(objects, "PrometheusRule")
    alerts = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    assert {"KubeloopDriftDetected", "KubeloopTrainingRunFailed", "KubeloopRolledBack"} <= set(alerts)
    assert "{{ $labels.model }}" in alerts["KubeloopDriftDetected"]["annotations"]["summary"]
    (dashboard,) = [o for o in by_kind(objects, "ConfigMap") if "dashboard" in o["metadata"]["name"]]
    assert json.loads(dashboard["data"]["kubeloop.json"])["uid"] == "kubeloop"
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"


def series_in(expr: str) -> set[str]:
    return {m.removesuffix("_bucket") for m in re.findall(r"\bkubeloop_[a-z_]+", expr)}


def test_alerts_and_dashboard_use_only_the_operators_metric_names(chart):
    (rule,) = by_kind(chart.objects("metrics.prometheusRule.enabled=true"), "PrometheusRule")
    used = set().union(*(series_in(r["expr"]) for r in rule["spec"]["groups"][0]["rules"]))
    dashboard = json.loads((CHART / "dashboards" / "kubeloop.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= series_in(target["expr"])
    assert used and used <= set(metrics.ALL), used - set(metrics.ALL)
    assert {metrics.DRIFT_DETECTED, metrics.TRAINING_RUNS_TOTAL, metrics.ROLLBACKS_TOTAL} <= used


@pytest.mark.parametrize(
    "sets, complaint",
    [
        (("unknownKey=1",), "additional properties"),
        (("operator.replicas=two",), "replicas"),
        (("operator.replicas=-1",), "replicas"),
        (("watch.mode=Everywhere",), "mode"),
        (("operator.strategy=BlueGreen",), "strategy"),
        (("crds.enabled=maybe",), "enabled"),
        (("operator.resources.requests.cpu=lots",), "cpu"),
        (("operator.artifactRoot=ftp://x",), "artifactRoot"),
        (("operator.nonsense=true",), "additional properties"),
        (("image.pullPolicy=Sometimes",), "pullPolicy"),
    ],
)
def test_values_that_break_the_schema_are_rejected(chart, sets, complaint):
    result = chart.template(*sets, check=False)
    assert result.returncode != 0, f"helm accepted {sets}"
    assert complaint in result.stderr, result.stderr


def test_values_yaml_is_the_models_defaults_and_every_key_is_commented():
    text = (CHART / "values.yaml").read_text()
    assert yaml.safe_load(text) == ChartValues().model_dump(mode="json", by_alias=True)
    lines = text.splitlines()
    uncommented = []

    def visit(model, node, path):
        keys = {k.value: (k, v) for k, v in node.value}
        for name, field in model.model_fields.items():
            key = field.alias or name
            key_node, value_node = keys[key]
            if not lines[key_node.start_mark.line - 1].lstrip().startswith("#"):
                uncommented.append(path + key)
            sub = field.annotation
            if (
                isinstance(sub, type)
                and issubclass(sub, BaseModel)
                and isinstance(value_node, yaml.MappingNode)
            ) and sub.__name__ != "ResourceRequirements":
                visit(sub, value_node, f"{path}{key}.")

    visit(ChartValues, yaml.compose(text), "")
    assert uncommented == []


def test_values_schema_is_strict_everywhere():
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema == chartgen.values_schema()

    def objects(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                yield node
            for value in node.values():
                yield from objects(value)
        elif isinstance(node, list):
            for value in node:
                yield from objects(value)

    found = list(objects(schema))
    assert len(found) > 10
    assert all(o.get("additionalProperties") is False for o in found)
    assert "$ref" not in json.dumps(schema)
