"""Kubernetes Events for lifecycle steps: what users see in `kubectl describe` and `kubectl get events`.

Events are best effort: a failure to post one is logged and never fails a reconcile. Messages are built by
the services from status fields only, so credentials can never reach them.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from kubeloop.api import format_time
from kubeloop.k8s.client import Kube
from kubeloop.k8s.errors import KubeError
from kubeloop.k8s.resources import EVENT

log = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]
COMPONENT = "kubeloop-operator"
MESSAGE_LIMIT = 1024


def event_body(
    obj: Mapping[str, Any],
    type_: EventType,
    reason: str,
    message: str,
    *,
    instance: str,
    now: datetime,
    suffix: str,
) -> dict[str, Any]:
    """A core/v1 Event about `obj`. Pure, apart from the arguments."""
    meta = obj["metadata"]
    stamp = format_time(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{suffix}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion", ""),
            "kind": obj.get("kind", ""),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        },
        "type": type_,
        "reason": reason,
        "message": message[:MESSAGE_LIMIT],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance[:128],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class EventRecorder:
    def __init__(self, kube: Kube, instance: str):
        self._kube = kube
        self._instance = instance

    def post(self, obj: Mapping[str, Any], type_: EventType, reason: str, message: str) -> None:
        body = event_body(
            obj,
            type_,
            reason,
            message,
            instance=self._instance,
            now=datetime.now(UTC),
            suffix=secrets.token_hex(8),
        )
        try:
            self._kube.create(EVENT, body)
        except KubeError as e:
            log.warning("could not post the %s event %s on %s: %s", type_, reason, obj["metadata"]["name"], e)

    def normal(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        self.post(obj, "Normal", reason, message)

    def warning(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        self.post(obj, "Warning", reason, message)
