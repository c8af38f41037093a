"""Build a CustomResourceDefinition from a kind's models and its KindInfo. Pure: data in, dict out."""

from __future__ import annotations

from typing import Any

from kubeloop.api.common import GROUP, VERSION
from kubeloop.api.driftmonitor import INFO as DRIFT_MONITOR
from kubeloop.api.kind import KindInfo
from kubeloop.api.modelversion import INFO as MODEL_VERSION
from kubeloop.api.openapi import model_schema
from kubeloop.api.trainingrun import INFO as TRAINING_RUN

KINDS: tuple[KindInfo, ...] = (TRAINING_RUN, MODEL_VERSION, DRIFT_MONITOR)

# kopf keeps its handler progress under status.kopf; it is the one place whose content we do not define.
KOPF_STATUS = {
    "type": "object",
    "x-kubernetes-preserve-unknown-fields": True,
    "description": "Progress of the operator's handlers, kept by the kopf framework. Not an API.",
}


def _strip_status_defaults(node: Any) -> Any:
    """Status is written only by the operator: defaults there would only make every write look different."""
    if isinstance(node, dict):
        return {k: _strip_status_defaults(v) for k, v in node.items() if k != "default"}
    if isinstance(node, list):
        return [_strip_status_defaults(v) for v in node]
    return node


def object_schema(info: KindInfo) -> dict[str, Any]:
    """The openAPIV3Schema of the kind: apiVersion, kind, metadata, spec and status."""
    spec = model_schema(info.spec)
    spec["description"] = f"Desired state of the {info.kind}. {spec.get('description', '')}".strip()
    status = _strip_status_defaults(model_schema(info.status))
    status["properties"]["kopf"] = KOPF_STATUS
    schema: dict[str, Any] = {
        "type": "object",
        "description": info.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": f"APIVersion of the object: {GROUP}/{VERSION}.",
            },
            "kind": {"type": "string", "description": f"Kind of the object: {info.kind}."},
            # The API server allows constraints on metadata.name and generateName only, and no description.
            "metadata": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": info.max_name_length}},
            },
            "spec": spec,
            "status": status,
        },
    }
    if info.root_rules:
        schema["x-kubernetes-validations"] = [r.to_openapi() for r in info.root_rules]
    return schema


def build_crd(info: KindInfo) -> dict[str, Any]:
    """The whole CustomResourceDefinition of one kind, as the API server takes it."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": info.crd_name,
            "labels": {"app.kubernetes.io/part-of": "kubeloop"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": list(info.categories),
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [c.to_crd() for c in info.columns],
                    "schema": {"openAPIV3Schema": object_schema(info)},
                }
            ],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    return [build_crd(info) for info in KINDS]
