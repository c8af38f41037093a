"""The committed CRDs are exactly what the models generate, and they are complete, structural CRDs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubeloop.api import crdgen
from kubeloop.api.crd import KINDS, build_crd
from kubeloop.api.kind import KindInfo

ROOT = Path(__file__).resolve().parents[3]
FIX = "run `make crds` (python -m kubeloop.api.crdgen) and commit the result"


def schema_of(info: KindInfo) -> dict[str, Any]:
    return build_crd(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node, with a dotted path (`[]` for list items, `{}` for map values)."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")
    for i, sub in enumerate(node.get("anyOf", ())):
        yield from walk(sub, f"{path}<anyOf{i}>")


ALL_NODES = [(info.kind, path, node) for info in KINDS for path, node in walk(schema_of(info))]


@pytest.mark.parametrize("path", sorted(crdgen.outputs(ROOT)), ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_files_equal_the_generated_ones(path):
    expected = crdgen.outputs(ROOT)[path]
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing: {FIX}"
    assert path.read_text() == expected, f"{path.relative_to(ROOT)} differs from the models: {FIX}"


def test_check_mode_reports_a_stale_file(tmp_path):
    assert crdgen.main(["--root", str(tmp_path)]) == 0
    assert crdgen.main(["--root", str(tmp_path), "--check"]) == 0
    target = tmp_path / "crds" / "trainingruns.yaml"
    target.write_text(target.read_text().replace("shortNames:\n    - tr", "shortNames:\n    - trx"))
    assert crdgen.stale(tmp_path) == [target]
    assert crdgen.main(["--root", str(tmp_path), "--check"]) == 1


def test_no_stray_files_in_crds_dir():
    generated = {p.name for p in crdgen.outputs(ROOT) if p.parent.name == "crds" and p.parent.parent == ROOT}
    assert {p.name for p in (ROOT / "crds").iterdir()} == generated


@pytest.mark.parametrize("kind, path, node", ALL_NODES, ids=[f"{k}{p}" for k, p, _ in ALL_NODES])
def test_every_node_is_structural(kind, path, node):
    for banned in ("$ref", "$defs", "allOf", "oneOf", "not", "patternProperties", "title", "nullable"):
        assert banned not in node, f"{kind}{path} has {banned}"
    if "anyOf" in node:
        assert node.get("x-kubernetes-int-or-string") is True, f"{kind}{path}: anyOf only for int-or-string"
        return
    if path.endswith(tuple(f"<anyOf{i}>" for i in range(2))):
        return
    assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}, f"{kind}{path}"
    if node["type"] == "object":
        has_content = "properties" in node or "additionalProperties" in node
        assert has_content or node.get("x-kubernetes-preserve-unknown-fields"), (
            f"{kind}{path} is an empty schema"
        )
    if node["type"] == "array":
        assert "items" in node, f"{kind}{path} has no items schema"


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_every_field_has_a_description(info):
    missing = [
        f"{parent}.{name}"
        for parent, node in walk(schema_of(info))
        for name, sub in node.get("properties", {}).items()
        if not sub.get("description", "").strip()
        and f"{parent}.{name}" not in {".metadata", ".metadata.name"}
    ]
    assert not missing, f"{info.kind}: fields without a description: {missing}"


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_spec_and_status_are_not_empty(info):
    props = schema_of(info)["properties"]
    assert len(props["spec"]["properties"]) >= 3
    assert {"observedGeneration", "conditions"} <= set(props["status"]["properties"])
    assert schema_of(info)["required"] == ["spec"]


def test_preserve_unknown_fields_only_where_kopf_or_estimator_params_live():
    places = sorted(
        f"{kind}{path}" for kind, path, node in ALL_NODES if node.get("x-kubernetes-preserve-unknown-fields")
    )
    assert places == [
        "DriftMonitor.spec.retrain.template.spec.training.estimator.params",
        "DriftMonitor.status.kopf",
        "ModelVersion.spec.lineage.estimator.params",
        "ModelVersion.status.kopf",
        "TrainingRun.spec.training.estimator.params",
        "TrainingRun.status.kopf",
    ]


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_conditions_are_metav1_conditions_keyed_by_type(info):
    conditions = schema_of(info)["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["properties"]) == {
        "type",
        "status",
        "reason",
        "message",
        "observedGeneration",
        "lastTransitionTime",
    }
    assert set(item["required"]) == {"type", "status", "reason", "lastTransitionTime"}
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_names_scope_subresource_and_category(info):
    crd = build_crd(info)
    assert crd["metadata"]["name"] == f"{info.plural}.kubeloop.dev"
    spec = crd["spec"]
    assert spec["group"] == "kubeloop.dev"
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["categories"] == ["kubeloop"]
    (version,) = spec["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def test_short_names():
    assert {i.kind: i.short_names for i in KINDS} == {
        "TrainingRun": ("tr",),
        "ModelVersion": ("mv",),
        "DriftMonitor": ("dm",),
    }


@pytest.mark.parametrize("info", KINDS, ids=lambda i: i.kind)
def test_printer_columns_select_conditions_by_type_never_by_position(info):
    columns = build_crd(info)["spec"]["versions"][0]["additionalPrinterColumns"]
    paths = [c["jsonPath"] for c in columns]
    condition_paths = [p for p in paths if p.startswith(".status.conditions")]
    assert condition_paths, f"{info.kind} shows no condition"
    for p in condition_paths:
        assert re.fullmatch(
            r'\.status\.conditions\[\?\(@\.type=="[A-Za-z]+"\)\]\.(status|reason|message)', p
        ), p
    assert not any(re.search(r"\[-?\d*:?-?\d*\]", p) for p in paths), paths
    assert columns[0]["jsonPath"] == ".spec.model"
    assert any(c["name"] == "Age" and c["type"] == "date" for c in columns)


def test_every_cel_rule_has_a_message():
    rules = [(k, p, r) for k, p, n in ALL_NODES for r in n.get("x-kubernetes-validations", ())]
    assert len(rules) >= 8
    for kind, path, rule in rules:
        assert rule["rule"].strip() and rule["message"].strip(), f"{kind}{path}"


def test_defaults_live_in_spec_not_in_status():
    in_status = [f"{k}{p}" for k, p, n in ALL_NODES if ".status" in p and "default" in n]
    assert in_status == []
    by_path = {f"{k}{p}": n for k, p, n in ALL_NODES}
    steps = by_path["TrainingRun.spec.promotion.canary.steps"]["default"]
    assert [s["weight"] for s in steps] == [10, 50, 100]
    assert by_path["TrainingRun.spec.promotion"]["default"] == {}
    assert by_path["DriftMonitor.spec.interval"]["default"] == "5m"


def test_exclusive_bounds_use_the_openapi_v3_0_form():
    test_size = next(n for k, p, n in ALL_NODES if k == "TrainingRun" and p == ".spec.training.testSize")
    assert test_size["minimum"] == 0.0 and test_size["exclusiveMinimum"] is True
    assert test_size["maximum"] == 1.0 and test_size["exclusiveMaximum"] is True


def test_chart_crds_are_the_same_crds():
    for info in KINDS:
        chart = (ROOT / "charts/kubeloop/templates/crds" / f"{info.plural}.yaml").read_text()
        assert chart.startswith(crdgen.HEADER + "{{- if .Values.crds.enabled }}")
        assert "helm.sh/resource-policy: keep" in chart
        # Strip the Helm lines and the metadata block; what is left must be the very same spec.
        spec_text = chart.split("\nspec:\n", 1)[1].rsplit("{{- end }}", 1)[0]
        assert yaml.safe_load(spec_text) == build_crd(info)["spec"]
