"""Labels, annotations and child names shared by the builders. Pure.

Names are deterministic (the same object always gets the same child names), so that a create after a
restart finds the child made before it instead of making a second one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "kubeloop"
NAME = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"
MODEL_LABEL = "kubeloop.dev/model"
RUN_LABEL = "kubeloop.dev/training-run"
RUN_UID_LABEL = "kubeloop.dev/training-run-uid"
VERSION_LABEL = "kubeloop.dev/version"
REGISTRY_INDEX_LABEL = "kubeloop.dev/registry-index"
# The trigger of a run (a DriftMonitor's retrain), as the JSON of kubeloop.api.Trigger; see builders/retrain.py.
TRIGGER_ANNOTATION = "kubeloop.dev/trigger"
CHAMPION_ANNOTATION = "kubeloop.dev/champion"

MAX_NAME = 63  # DNS-1123 label: Job names also become the pods' job-name label value


def child_name(owner: str, suffix: str, limit: int = MAX_NAME) -> str:
    """`<owner>-<suffix>`, or, when too long, a cut owner name plus a short hash of the whole owner name."""
    name = f"{owner}-{suffix}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(owner.encode()).hexdigest()[:8]
    keep = limit - len(suffix) - len(digest) - 2
    return f"{owner[:keep].rstrip('-.')}-{digest}-{suffix}"


def label_value(value: str) -> str:
    """A label value is at most 63 characters; longer names are cut and made unique with a hash."""
    return (
        value if len(value) <= 63 else child_name(value[:40], hashlib.sha256(value.encode()).hexdigest()[:8])
    )


def owner_reference(owner: Mapping[str, Any], *, controller: bool = True) -> dict[str, Any]:
    """An ownerReference to `owner` (a full object), so the garbage collector deletes the child with it."""
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def owned_by(child: Mapping[str, Any], owner_uid: str) -> bool:
    refs = (child.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == owner_uid for ref in refs)
