"""Finding ModelVersions, and registering a new one with a version number nobody else gets.

Allocation is a create with a deterministic name, `<model>-v<N>`: the API server lets exactly one create
of a name succeed, so two runs racing for N both try it, one wins, and the other gets 409 and tries N+1.
No lock, no counter to keep consistent. N starts after the highest version that exists or ever existed
(the index remembers `latest`), so numbers are not reused after a deletion.

Idempotence: the ModelVersion carries the run's uid as a label. Before allocating, the run's version is
looked up by that label, so an operator killed after the create and before the run's status said so
finds its version instead of registering a second one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kubeloop.builders.labels import RUN_UID_LABEL
from kubeloop.builders.modelversion import version_name
from kubeloop.k8s import MODEL_VERSION, AlreadyExists, Kube, TransientError
from kubeloop.registry.store import read_index
from kubeloop.settings import Settings

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 1000


def of_model(model_versions: list[dict[str, Any]], model: str) -> list[dict[str, Any]]:
    return [mv for mv in model_versions if (mv.get("spec") or {}).get("model") == model]


def find_for_run(kube: Kube, namespace: str, run_uid: str) -> dict[str, Any] | None:
    found = kube.list(MODEL_VERSION, namespace, labels={RUN_UID_LABEL: run_uid})
    return min(found, key=lambda mv: mv["spec"]["version"]) if found else None


def current_production(kube: Kube, namespace: str, model: str) -> dict[str, Any] | None:
    """The model's Production version (by status, the stage it is actually in); the newest if several."""
    production = [
        mv
        for mv in of_model(kube.list(MODEL_VERSION, namespace), model)
        if (mv.get("status") or {}).get("stage") == "Production"
    ]
    return max(production, key=lambda mv: mv["spec"]["version"]) if production else None


def next_version(kube: Kube, settings: Settings, namespace: str, model: str) -> int:
    existing = [mv["spec"]["version"] for mv in of_model(kube.list(MODEL_VERSION, namespace), model)]
    entry = read_index(kube, settings, namespace).get(model)
    return max([0, *existing, entry.latest if entry else 0]) + 1


def register(
    kube: Kube,
    settings: Settings,
    namespace: str,
    model: str,
    run_uid: str,
    build: Callable[[int], dict[str, Any]],
) -> tuple[dict[str, Any], bool]:
    """The run's ModelVersion: the one registered before, or `build(N)` created for the first free N.

    Returns it and whether it was created now. The caller serialises calls for one run.
    """
    existing = find_for_run(kube, namespace, run_uid)
    if existing is not None:
        return existing, False
    version = next_version(kube, settings, namespace, model)
    for _ in range(MAX_ATTEMPTS):
        body = build(version)
        try:
            return kube.create(MODEL_VERSION, body), True
        except AlreadyExists:
            log.debug("%s is taken, trying version %d", version_name(model, version), version + 1)
            version += 1
    raise TransientError(f"no free version number for {model} after {MAX_ATTEMPTS} attempts")
