"""The serving objects on the cluster: observe, create and scale Deployments; keep the model's Service (and,
with GatewayAPI routing, the HTTPRoute) in place; keep a step's metric baseline on the canary Deployment.

Every write is idempotent: deterministic names, get-or-create (409 is success, after checking the object
found is really this version's), and merge patches of exactly the fields that should change.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from kubeloop.builders import serving
from kubeloop.builders.labels import owned_by
from kubeloop.k8s import DEPLOYMENT, SERVICE, Kube, NotFound, Resource
from kubeloop.rollout.machine import Workload
from kubeloop.rollout.window import Baseline
from kubeloop.services.errors import Retry

log = logging.getLogger(__name__)

HTTP_ROUTE = Resource(serving.GATEWAY_GROUP, serving.GATEWAY_VERSION, "httproutes", "HTTPRoute")
BASELINE_ANNOTATION = "kubeloop.dev/rollout-baseline"
DISCOVERY_TTL = 60.0


def workload(body: Mapping[str, Any] | None) -> Workload:
    """What a Deployment (or its absence) says about its pods."""
    if body is None:
        return Workload()
    spec, status = body.get("spec") or {}, body.get("status") or {}
    stuck = None
    for c in status.get("conditions") or []:
        if c.get("type") == "Progressing" and c.get("status") == "False":
            stuck = f"{c.get('reason', '')}: {c.get('message', '')}".strip(": ")
    replicas = int(spec.get("replicas", 1))
    return Workload(
        exists=True,
        replicas=replicas,
        ready=int(status.get("readyReplicas") or 0),
        current=int(status.get("replicas") or 0),
        # a Deployment scaled to zero may keep an old ProgressDeadlineExceeded; it is stuck only while it
        # is trying to bring pods up
        stuck=stuck if replicas > 0 else None,
    )


def get_deployment(kube: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    return kube.get(DEPLOYMENT, namespace, name)


def ensure_deployment(kube: Kube, plan: serving.ServingPlan) -> dict[str, Any]:
    """The version's Deployment, created at `plan.replicas` if missing (existing ones are not rescaled)."""
    body = serving.deployment(plan)
    found, _ = kube.get_or_create(DEPLOYMENT, body)
    uid = plan.version["metadata"]["uid"]
    if not owned_by(found, uid):
        # A Deployment of that name belongs to an older object of the same name (deleted, not yet
        # collected by the garbage collector): wait for it to go rather than take it over.
        raise Retry(f"Deployment {plan.namespace}/{body['metadata']['name']} belongs to another object", 5.0)
    return found


def scale(
    kube: Kube, namespace: str, name: str, replicas: int, track: serving.Track | None = None
) -> dict[str, Any] | None:
    """Set a Deployment's replicas (and track label); None if it does not exist."""
    try:
        return kube.patch(DEPLOYMENT, namespace, name, serving.scale_patch(replicas, track))
    except NotFound:
        return None


def ensure_model_service(kube: Kube, namespace: str, model: str, owner: Mapping[str, Any]) -> dict[str, Any]:
    """The model's shared Service, with `owner` among its owners."""
    found, _ = kube.get_or_create(SERVICE, serving.model_service(model, namespace, [owner]))
    patch = serving.missing_owner(found, owner)
    if patch is not None:
        found = kube.patch(SERVICE, namespace, found["metadata"]["name"], patch)
    return found


def ensure_version_service(kube: Kube, plan: serving.ServingPlan) -> None:
    kube.get_or_create(SERVICE, serving.version_service(plan))


class GatewayDiscovery:
    """Whether the Gateway API's HTTPRoute is served, asked of API discovery and cached for a minute."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answer: tuple[float, bool] | None = None

    def installed(self, kube: Kube) -> bool:
        with self._lock:
            if self._answer is not None and time.monotonic() - self._answer[0] < DISCOVERY_TTL:
                return self._answer[1]
        try:
            doc = kube.request("GET", f"/apis/{serving.GATEWAY_GROUP}/{serving.GATEWAY_VERSION}")
            found = any(r.get("name") == "httproutes" for r in doc.get("resources") or [])
        except NotFound:
            found = False
        with self._lock:
            self._answer = (time.monotonic(), found)
        return found


def ensure_route(kube: Kube, plan: serving.RoutePlan) -> None:
    """Create the model's HTTPRoute, or set its backends and weights."""
    body = serving.http_route(plan)
    found, created = kube.get_or_create(HTTP_ROUTE, body)
    if created:
        return
    if (
        serving.route_weights(found) != serving.route_weights(body)
        or (found.get("spec") or {}).get("parentRefs") != body["spec"]["parentRefs"]
    ):
        kube.patch(HTTP_ROUTE, plan.namespace, body["metadata"]["name"], {"spec": body["spec"]})


def read_baseline(deployment: Mapping[str, Any] | None) -> Baseline | None:
    raw = (((deployment or {}).get("metadata") or {}).get("annotations") or {}).get(BASELINE_ANNOTATION)
    if not raw:
        return None
    try:
        return Baseline.model_validate_json(raw)
    except (ValidationError, ValueError):
        log.warning("unreadable rollout baseline annotation; a new one will be taken")
        return None


def write_baseline(kube: Kube, namespace: str, deployment: str, baseline: Baseline) -> None:
    patch = {"metadata": {"annotations": {BASELINE_ANNOTATION: baseline.model_dump_json()}}}
    kube.patch(DEPLOYMENT, namespace, deployment, patch)
