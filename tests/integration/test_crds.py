"""The generated CRDs on a real API server: they install, the samples apply, explain teaches, bad input bounces."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from kubeloop.api import (
    DriftMonitor,
    ModelVersion,
    TrainingRun,
    TrainingRunStatus,
)
from kubeloop.api import status as st

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = {p.stem: yaml.safe_load(p.read_text()) for p in sorted((ROOT / "samples").glob("*.yaml"))}
MODELS = {"trainingrun": TrainingRun, "modelversion": ModelVersion, "driftmonitor": DriftMonitor}
CRD_NAMES = ["trainingruns.kubeloop.dev", "modelversions.kubeloop.dev", "driftmonitors.kubeloop.dev"]


@pytest.fixture(scope="module")
def crds(kubeloop_crds):
    return kubeloop_crds


@pytest.fixture(scope="module")
def ns(crds):
    name = f"api-{uuid.uuid4().hex[:8]}"
    crds.kubectl("create", "namespace", name)
    yield name
    crds.kubectl("delete", "namespace", name, "--wait=false", check=False)


def get_json(cluster, *args: str) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def test_crds_are_established_with_names_and_category(crds):
    for name in CRD_NAMES:
        crd = get_json(crds, "crd", name)
        established = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert established["Established"] == "True" and established["NamesAccepted"] == "True"
        assert crd["spec"]["names"]["categories"] == ["kubeloop"]


def test_every_sample_applies_and_reads_back_through_the_models(crds, ns):
    for stem, body in SAMPLES.items():
        crds.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(body))
        stored = get_json(crds, stem, body["metadata"]["name"], "-n", ns)
        parsed = MODELS[stem].model_validate(stored)
        assert parsed.spec.model == body["spec"]["model"]
    listed = crds.kubectl("get", "kubeloop", "-n", ns, "-o", "name").stdout.split()
    assert sorted(listed) == sorted(
        [
            "trainingrun.kubeloop.dev/iris-rf-1",
            "modelversion.kubeloop.dev/iris-v1",
            "driftmonitor.kubeloop.dev/iris",
        ]
    )
    short = crds.kubectl("get", "tr,mv,dm", "-n", ns, "-o", "name").stdout.split()
    assert sorted(short) == sorted(listed)


def test_the_api_server_fills_in_defaults(crds, ns):
    body = {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": "defaults"},
        "spec": {
            "model": "iris",
            "data": {"uri": "file:///data/iris.csv", "target": "species"},
            "training": {"estimator": {"classPath": "sklearn.linear_model.LogisticRegression"}},
        },
    }
    crds.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(body))
    spec = get_json(crds, "tr", "defaults", "-n", ns)["spec"]
    assert spec["training"]["testSize"] == 0.25
    assert spec["promotion"]["policy"] == "Manual"
    assert [s["weight"] for s in spec["promotion"]["canary"]["steps"]] == [10, 50, 100]
    assert spec["promotion"]["canary"]["analysis"]["inconclusiveTimeout"] == "10m"
    assert spec["validation"] == {}


def test_explain_prints_field_descriptions(crds):
    out = crds.kubectl("explain", "trainingrun.spec.validation").stdout
    assert "The model gate: absolute metric thresholds and the champion comparison." in out
    assert "champion" in out and "thresholds" in out
    assert "Comparison with the current production version of the model." in out
    steps = crds.kubectl("explain", "trainingrun.spec.promotion.canary.steps.weight").stdout
    assert "Percent of traffic sent to the canary during this step" in steps
    dm = crds.kubectl("explain", "driftmonitor.spec.method").stdout
    assert "Auto" in dm and "JensenShannon" in dm


def test_status_subresource_conditions_and_printer_columns(crds, ns):
    name = SAMPLES["trainingrun"]["metadata"]["name"]
    stored = get_json(crds, "tr", name, "-n", ns)
    generation = stored["metadata"]["generation"]
    now = datetime(2025, 5, 1, 8, 0, 0, tzinfo=UTC)
    conditions = [st.succeeded(True, "registered iris-v1", generation=generation, now=now)]
    conditions = st.with_kstatus(conditions, "Current", "Succeeded", generation=generation, now=now)
    desired = st.observed(
        TrainingRunStatus(
            conditions=conditions, job_name=f"{name}-train", version=1, model_version="iris-v1"
        ),
        generation,
    )
    patch = st.status_patch(stored.get("status"), desired)
    assert patch is not None
    patch["status"]["kopf"] = {"progress": {"create_fn": {"retries": 0}}}
    patch["status"]["notInTheSchema"] = "pruned"
    crds.kubectl(
        "patch", "tr", name, "-n", ns, "--subresource=status", "--type=merge", "-p", json.dumps(patch)
    )

    after = get_json(crds, "tr", name, "-n", ns)
    assert after["status"]["kopf"] == {"progress": {"create_fn": {"retries": 0}}}  # kopf's place is kept
    assert "notInTheSchema" not in after["status"]  # anything else is pruned
    assert after["metadata"]["generation"] == generation  # status writes never bump the generation
    assert st.status_patch(after["status"], desired) is None  # a second reconcile would write nothing

    table = crds.kubectl("get", "tr", name, "-n", ns, "-o", "wide").stdout.splitlines()
    header, row = table[0].split(), table[1].split()
    assert header[:5] == ["NAME", "MODEL", "SUCCEEDED", "REASON", "VERSION"]
    assert row[:5] == [name, "iris", "True", "Succeeded", "1"]


def test_model_version_identity_is_immutable(crds, ns):
    body = copy.deepcopy(SAMPLES["modelversion"])
    body["metadata"]["name"] = "iris-v1-immutable"
    crds.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(body))
    body["spec"]["version"] = 2
    result = crds.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(body), check=False)
    assert result.returncode != 0
    assert "spec.version" in result.stderr and "version is immutable" in result.stderr
    body["spec"]["version"] = 1
    body["spec"]["stage"] = "Archived"  # the stage is what users edit
    crds.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(body))


# -- invalid manifests: (id, sample, edit, text the API server's message must contain) ---------------------------
def _set(path: str, value):
    def edit(body: dict) -> None:
        *parents, last = path.split(".")
        node = body
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return edit


_DELETE = object()
TEMPLATE_RUN = {
    "spec": {
        "model": "wine",
        "data": {"uri": "s3://b/wine.csv", "target": "quality"},
        "training": {"estimator": {"classPath": "sklearn.ensemble.RandomForestRegressor"}},
    }
}

INVALID = [
    ("tr-missing-model", "trainingrun", _set("spec.model", _DELETE), "spec.model: Required value"),
    (
        "tr-missing-target",
        "trainingrun",
        _set("spec.data.target", _DELETE),
        "spec.data.target: Required value",
    ),
    (
        "tr-missing-estimator",
        "trainingrun",
        _set("spec.training.estimator", _DELETE),
        "spec.training.estimator",
    ),
    (
        "tr-test-size-type",
        "trainingrun",
        _set("spec.training.testSize", "a quarter"),
        "spec.training.testSize",
    ),
    ("tr-test-size-above-1", "trainingrun", _set("spec.training.testSize", 1.5), "spec.training.testSize"),
    ("tr-test-size-zero", "trainingrun", _set("spec.training.testSize", 0), "spec.training.testSize"),
    ("tr-retries-type", "trainingrun", _set("spec.training.retries", "three"), "spec.training.retries"),
    (
        "tr-deadline-too-short",
        "trainingrun",
        _set("spec.training.deadlineSeconds", 5),
        "spec.training.deadlineSeconds",
    ),
    ("tr-data-uri-scheme", "trainingrun", _set("spec.data.uri", "http://example.com/x.csv"), "spec.data.uri"),
    ("tr-data-format", "trainingrun", _set("spec.data.format", "json"), "spec.data.format"),
    (
        "tr-column-type",
        "trainingrun",
        _set("spec.data.validation.expectedColumns.species", "date"),
        "spec.data.validation.expectedColumns.species",
    ),
    (
        "tr-null-fraction",
        "trainingrun",
        _set("spec.data.validation.maxNullFraction", 2),
        "spec.data.validation.maxNullFraction",
    ),
    (
        "tr-range-inverted",
        "trainingrun",
        _set("spec.data.validation.ranges.sepal_length", {"min": 5, "max": 1}),
        "spec.data.validation.ranges[sepal_length]",
    ),
    ("tr-model-name", "trainingrun", _set("spec.model", "Iris_Model"), "spec.model"),
    (
        "tr-class-path",
        "trainingrun",
        _set("spec.training.estimator.classPath", "not a path"),
        "spec.training.estimator.classPath",
    ),
    (
        "tr-cpu-quantity",
        "trainingrun",
        _set("spec.training.resources.requests.cpu", "lots"),
        "spec.training.resources.requests.cpu",
    ),
    (
        "tr-threshold-unbounded",
        "trainingrun",
        _set("spec.validation.thresholds.0", {"metric": "accuracy"}),
        "spec.validation.thresholds[0]",
    ),
    (
        "tr-threshold-inverted",
        "trainingrun",
        _set("spec.validation.thresholds.0", {"metric": "f1", "min": 0.9, "max": 0.5}),
        "spec.validation.thresholds[0]",
    ),
    (
        "tr-steps-not-increasing",
        "trainingrun",
        _set("spec.promotion.canary.steps", [{"weight": 50}, {"weight": 10}, {"weight": 100}]),
        "spec.promotion.canary.steps: Invalid value",
    ),
    (
        "tr-steps-repeated",
        "trainingrun",
        _set("spec.promotion.canary.steps", [{"weight": 50}, {"weight": 50}, {"weight": 100}]),
        "steps must have strictly increasing weights",
    ),
    (
        "tr-steps-not-ending-at-100",
        "trainingrun",
        _set("spec.promotion.canary.steps", [{"weight": 10}, {"weight": 50}]),
        "the last step must have weight 100",
    ),
    (
        "tr-step-weight-zero",
        "trainingrun",
        _set("spec.promotion.canary.steps.0.weight", 0),
        "spec.promotion.canary.steps[0].weight",
    ),
    (
        "tr-step-weight-150",
        "trainingrun",
        _set("spec.promotion.canary.steps.2.weight", 150),
        "spec.promotion.canary.steps[2].weight",
    ),
    (
        "tr-step-interval",
        "trainingrun",
        _set("spec.promotion.canary.steps.0.interval", "5 minutes"),
        "spec.promotion.canary.steps[0].interval",
    ),
    (
        "tr-error-rate-above-1",
        "trainingrun",
        _set("spec.promotion.canary.analysis.maxErrorRate", 1.5),
        "spec.promotion.canary.analysis.maxErrorRate",
    ),
    ("tr-policy", "trainingrun", _set("spec.promotion.policy", "Sometimes"), "spec.promotion.policy"),
    ("tr-unknown-field", "trainingrun", _set("spec.data.tragetColumn", "species"), "spec.data.tragetColumn"),
    ("tr-name-uppercase", "trainingrun", _set("metadata.name", "Iris-Run"), "metadata.name"),
    ("tr-name-too-long", "trainingrun", _set("metadata.name", "r" * 53), "metadata.name"),
    ("mv-version-zero", "modelversion", _set("spec.version", 0), "spec.version"),
    ("mv-digest", "modelversion", _set("spec.artifact.digest", "md5:abc"), "spec.artifact.digest"),
    ("mv-missing-artifact", "modelversion", _set("spec.artifact", _DELETE), "spec.artifact: Required value"),
    ("mv-stage", "modelversion", _set("spec.stage", "Prod"), "spec.stage"),
    ("mv-approved-step-out-of-plan", "modelversion", _set("spec.approvedStep", 5), "spec.approvedStep"),
    (
        "mv-min-accuracy-above-1",
        "modelversion",
        _set("spec.serving.canary.analysis.minOnlineAccuracy", 1.2),
        "spec.serving.canary.analysis.minOnlineAccuracy",
    ),
    ("dm-method", "driftmonitor", _set("spec.method", "Magic"), "spec.method"),
    (
        "dm-false-alarm-rate",
        "driftmonitor",
        _set("spec.thresholds.falseAlarmRate", 0.7),
        "spec.thresholds.falseAlarmRate",
    ),
    ("dm-interval-too-short", "driftmonitor", _set("spec.interval", "1s"), "spec.interval"),
    ("dm-consecutive-zero", "driftmonitor", _set("spec.consecutiveWindows", 0), "spec.consecutiveWindows"),
    (
        "dm-template-and-clone",
        "driftmonitor",
        _set("spec.retrain.template", TEMPLATE_RUN | {"spec": {**TEMPLATE_RUN["spec"], "model": "iris"}}),
        "set exactly one of template or clone",
    ),
    ("dm-neither-template-nor-clone", "driftmonitor", _set("spec.retrain.clone", _DELETE), "spec.retrain"),
    (
        "dm-template-other-model",
        "driftmonitor",
        lambda b: (_set("spec.retrain.clone", _DELETE)(b), _set("spec.retrain.template", TEMPLATE_RUN)(b)),
        "spec.retrain.template.spec.model",
    ),
    (
        "dm-accuracy-floor-without-min",
        "driftmonitor",
        _set("spec.performanceFloor", {"metric": "accuracy", "max": 0.9}),
        "spec.performanceFloor.min",
    ),
    ("dm-schedule", "driftmonitor", _set("spec.retrain.schedule", "every day"), "spec.retrain.schedule"),
]


@pytest.mark.parametrize("case, sample, edit, expected", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_manifests_are_rejected_naming_the_field(crds, ns, case, sample, edit, expected):
    body = copy.deepcopy(SAMPLES[sample])
    body["metadata"]["name"] = f"bad-{case}"[:52]
    edit(body)
    result = crds.kubectl(
        "create",
        "--dry-run=server",
        "--validate=strict",
        "-n",
        ns,
        "-f",
        "-",
        "-o",
        "name",
        input=yaml.safe_dump(body),
        check=False,
    )
    assert result.returncode != 0, f"{case}: the API server accepted it: {result.stdout}"
    assert expected in result.stderr, f"{case}: {result.stderr}"


def test_at_least_twenty_invalid_cases():
    assert len(INVALID) >= 20
    assert {c[1] for c in INVALID} == {"trainingrun", "modelversion", "driftmonitor"}
