"""The Argo CD health check (charts/kubeloop/argocd/health.lua), run through a real Lua interpreter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa
import pytest
from kubeloop.api import chartgen

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "kubeloop"
LUA = (CHART / "argocd" / "health.lua").read_text()


def to_lua(runtime: lupa.LuaRuntime, value: Any) -> Any:
    if isinstance(value, dict):
        return runtime.table_from({k: to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([to_lua(runtime, v) for v in value])
    return value


def health(obj: dict[str, Any]) -> tuple[str, str]:
    """Run the script as Argo CD does: `obj` is a global, the chunk returns {status, message}."""
    runtime = lupa.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = to_lua(runtime, obj)
    result = runtime.execute(LUA)
    return result["status"], result["message"]


def cond(type_: str, status: str, reason: str = "Because", message: str = "") -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2025-01-01T00:00:00Z",
    }


def obj(
    kind: str, *conditions: dict, generation: int = 2, observed: int | None = 2, **extra
) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": list(conditions), **extra.pop("status", {})}
    if observed is not None:
        status["observedGeneration"] = observed
    return {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "generation": generation},
        "spec": extra.pop("spec", {}),
        "status": status,
    }


CASES = [
    # TrainingRun
    (
        "tr succeeded",
        obj("TrainingRun", cond("Succeeded", "True", "Succeeded", "registered iris-v3")),
        "Healthy",
        "registered iris-v3",
    ),
    ("tr running", obj("TrainingRun", cond("Succeeded", "Unknown", "Training")), "Progressing", "Training"),
    (
        "tr gate failed",
        obj("TrainingRun", cond("Succeeded", "False", "GateFailed", "accuracy 0.71 < 0.85")),
        "Degraded",
        "accuracy 0.71 < 0.85",
    ),
    (
        "tr stalled",
        obj("TrainingRun", cond("Stalled", "True", "JobFailed", "trainer exited 1")),
        "Degraded",
        "trainer exited 1",
    ),
    (
        "tr generation lag",
        obj("TrainingRun", cond("Succeeded", "True"), generation=3, observed=2),
        "Progressing",
        "Waiting for the operator to observe generation 3",
    ),
    (
        "tr no status yet",
        obj("TrainingRun", observed=None),
        "Progressing",
        "Waiting for the kubeloop operator",
    ),
    # ModelVersion
    (
        "mv ready",
        obj("ModelVersion", cond("Ready", "True", "StageProduction", "serving at 100%")),
        "Healthy",
        "serving at 100%",
    ),
    (
        "mv rolling out",
        obj(
            "ModelVersion",
            cond("Ready", "Unknown"),
            cond("Progressing", "True", "StepPassed", "step 1 of 3 at 50%"),
        ),
        "Progressing",
        "step 1 of 3 at 50%",
    ),
    (
        "mv paused for approval",
        obj("ModelVersion", cond("Progressing", "True"), status={"rollout": {"phase": "Paused", "step": 1}}),
        "Suspended",
        "Waiting for approval of canary step 1",
    ),
    (
        "mv rolled back",
        obj(
            "ModelVersion",
            cond("Ready", "False"),
            cond("Progressing", "False"),
            cond("RolledBack", "True", "AnalysisFailed", "errorRate 0.31 > 0.01"),
        ),
        "Degraded",
        "errorRate 0.31 > 0.01",
    ),
    (
        "mv not ready",
        obj("ModelVersion", cond("Ready", "False", "DeploymentUnavailable", "0/2 ready")),
        "Degraded",
        "0/2 ready",
    ),
    (
        "mv spec edited",
        obj("ModelVersion", cond("Ready", "True"), generation=5, observed=4),
        "Progressing",
        "Waiting for the operator to observe generation 5",
    ),
    # DriftMonitor
    (
        "dm ready",
        obj("DriftMonitor", cond("Ready", "True", "Watching", "watching iris-v3")),
        "Healthy",
        "watching iris-v3",
    ),
    (
        "dm drifted stays healthy",
        obj("DriftMonitor", cond("Ready", "True"), cond("Drifted", "True", "DriftDetected", "petal_length")),
        "Healthy",
        "Drift detected: petal_length",
    ),
    (
        "dm suspended",
        obj("DriftMonitor", cond("Ready", "True"), spec={"suspend": True}),
        "Suspended",
        "Suspended by spec.suspend",
    ),
    (
        "dm no production version",
        obj(
            "DriftMonitor",
            cond("Ready", "False", "NoProductionVersion", "no ModelVersion of iris is in Production"),
        ),
        "Degraded",
        "no ModelVersion of iris is in Production",
    ),
    (
        "dm starting",
        obj("DriftMonitor", cond("Ready", "Unknown", "Progressing")),
        "Progressing",
        "Progressing",
    ),
]


@pytest.mark.parametrize("name, resource, status, message", CASES, ids=[c[0] for c in CASES])
def test_health(name, resource, status, message):
    assert health(resource) == (status, message)


def test_every_argo_status_is_reached_for_every_kind_that_has_it():
    reached = {(c[1]["kind"], c[2]) for c in CASES}
    for kind in ("TrainingRun", "ModelVersion", "DriftMonitor"):
        assert {(kind, "Healthy"), (kind, "Progressing"), (kind, "Degraded")} <= reached
    assert {("ModelVersion", "Suspended"), ("DriftMonitor", "Suspended")} <= reached


def test_conditions_are_found_by_type_whatever_their_order():
    ordered = obj("TrainingRun", cond("Ready", "True"), cond("Succeeded", "False", "GateFailed", "x"))
    reversed_ = obj("TrainingRun", cond("Succeeded", "False", "GateFailed", "x"), cond("Ready", "True"))
    assert health(ordered) == health(reversed_) == ("Degraded", "x")


def test_readme_snippet_is_generated_from_the_lua_file():
    readme = (CHART / "README.md").read_text()
    snippet = chartgen.argocd_snippet(LUA)
    assert snippet in readme, "the README's argocd-cm snippet is stale: run `make crds`"
    for kind in ("TrainingRun", "ModelVersion", "DriftMonitor"):
        assert f"resource.customizations.health.kubeloop.dev_{kind}: |" in snippet


def test_readme_snippet_is_valid_yaml_holding_the_script():
    import yaml

    body = chartgen.argocd_snippet(LUA).removeprefix("```yaml\n").removesuffix("\n```")
    cm = yaml.safe_load(body)
    assert cm["metadata"]["name"] == "argocd-cm"
    assert cm["data"]["resource.customizations.health.kubeloop.dev_ModelVersion"].strip() == LUA.strip()
