"""Reading and writing the index ConfigMap, with resourceVersion optimistic concurrency.

A sync lists the namespace's ModelVersions, projects them (`index.project`), and writes the ConfigMap
only if its data would change: create if missing (it is rebuilt the same way after a deletion), else a
PUT carrying the resourceVersion it read, retried from the start on a conflict. Syncs of one namespace
are coalesced: while one runs, further requests only mark it dirty, and it runs once more at the end.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kubeloop.builders.labels import MANAGED_BY, MANAGED_BY_VALUE, REGISTRY_INDEX_LABEL
from kubeloop.k8s import CONFIG_MAP, MODEL_VERSION, Kube, retry_on_conflict
from kubeloop.registry import index
from kubeloop.settings import Settings

log = logging.getLogger(__name__)


def index_config_map(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {MANAGED_BY: MANAGED_BY_VALUE, REGISTRY_INDEX_LABEL: "true"},
            "annotations": {
                "kubeloop.dev/description": (
                    "Registry index of the ModelVersions in this namespace (one key per model), "
                    "maintained by the kubeloop operator; rebuilt from the ModelVersions if deleted."
                )
            },
        },
        "data": data,
    }


def read_index(kube: Kube, settings: Settings, namespace: str) -> dict[str, index.ModelIndex]:
    found = kube.get(CONFIG_MAP, namespace, settings.registry_config_map)
    return index.parse((found or {}).get("data"))


def _sync_once(kube: Kube, settings: Settings, namespace: str) -> bool:
    versions = kube.list(MODEL_VERSION, namespace)
    current = kube.get(CONFIG_MAP, namespace, settings.registry_config_map)
    previous = index.parse((current or {}).get("data"))
    data = index.render(
        index.project(
            versions,
            previous,
            recent=settings.registry_recent_versions,
            history=settings.registry_history,
        )
    )
    if current is None:
        kube.create(CONFIG_MAP, index_config_map(namespace, settings.registry_config_map, data))
        return True
    if (current.get("data") or {}) == data:
        return False
    # the resourceVersion read above makes this PUT fail with Conflict if anyone wrote in between
    kube.replace(CONFIG_MAP, {**current, "data": data})
    return True


def sync_index(kube: Kube, settings: Settings, namespace: str) -> bool:
    """Bring the namespace's index in line with its ModelVersions; True if it was written."""
    return retry_on_conflict(
        lambda: _sync_once(kube, settings, namespace), what=f"registry index of {namespace}"
    )


class IndexSyncer:
    """Coalesces syncs per namespace: a burst of ModelVersion events costs one or two syncs, not one each."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._running: set[str] = set()
        self._dirty: set[str] = set()

    def request(self, kube: Kube, settings: Settings, namespace: str) -> None:
        with self._guard:
            if namespace in self._running:
                self._dirty.add(namespace)
                return
            self._running.add(namespace)
        try:
            while True:
                sync_index(kube, settings, namespace)
                with self._guard:
                    if namespace not in self._dirty:
                        return
                    self._dirty.discard(namespace)
        finally:
            with self._guard:
                self._running.discard(namespace)
                # a failed sync leaves the request pending for the caller's retry
                self._dirty.discard(namespace)


SYNCER = IndexSyncer()
