"""The one client of the API server: plain dicts in and out, domain errors instead of ApiException.

Objects stay JSON dicts (the pydantic models parse them at the service boundary); the generated typed
models of the `kubernetes` package are never used, so camelCase never turns into snake_case on the way.
Only transport comes from the `kubernetes` package: configuration (kubeconfig or in-cluster, including
token refresh), TLS and the connection pool.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import urllib3
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel

from kubeloop.api.status import status_patch
from kubeloop.k8s.errors import AlreadyExists, Conflict, KubeError, NotFound, TransientError, from_response
from kubeloop.k8s.resources import Resource

log = logging.getLogger(__name__)

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
FIELD_MANAGER = "kubeloop-operator"

T = TypeVar("T")


def load_configuration() -> kclient.Configuration:
    """The kubeconfig (KUBECONFIG or ~/.kube/config) if there is one, else the pod's ServiceAccount."""
    configuration = kclient.Configuration()
    try:
        kconfig.load_kube_config(client_configuration=configuration)
    except kconfig.ConfigException:
        kconfig.load_incluster_config(client_configuration=configuration)
    return configuration


class Kube:
    """Thread-safe: handlers run in a thread pool and share one instance (and its connection pool)."""

    def __init__(
        self,
        configuration: kclient.Configuration | None = None,
        *,
        timeout: float = 30.0,
        pool_size: int = 16,
    ):
        configuration = configuration or load_configuration()
        configuration.connection_pool_maxsize = pool_size
        self._api = kclient.ApiClient(configuration)
        self._api.user_agent = FIELD_MANAGER
        self._timeout = timeout
        self._lock = threading.Lock()

    def close(self) -> None:
        self._api.close()

    # -- transport -----------------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = JSON,
        what: str = "",
    ) -> dict[str, Any]:
        """One API call; returns the decoded JSON body or raises a KubeError."""
        params = [(k, v) for k, v in (query or {}).items() if v is not None]
        request = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=params,
            header_params={"Accept": JSON, "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self._api.call_api(*request, _request_timeout=self._timeout)
            data = response.read()
        except ApiException as e:  # raised by the REST layer for Retry-After and some transport failures
            raise from_response(e.status or 0, e.body, verb=method, what=what or path) from e
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise TransientError(f"{method} {what or path}: {type(e).__name__}: {e}") from e
        if not 200 <= response.status < 300:
            raise from_response(response.status, data, verb=method, what=what or path)
        return json.loads(data) if data else {}

    # -- reads ---------------------------------------------------------------------------------------------
    def get(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or None if it does not exist."""
        try:
            return self.request(
                "GET", resource.path(namespace, name), what=resource.describe(namespace, name)
            )
        except NotFound:
            return None

    def list(
        self,
        resource: Resource,
        namespace: str | None,
        *,
        labels: Mapping[str, str] | str | None = None,
        fields: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every object matching the selectors (all pages), each with its kind and apiVersion set."""
        selector = labels if isinstance(labels, str) or labels is None else selector_of(labels)
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self.request(
                "GET",
                resource.path(namespace),
                query={"labelSelector": selector, "fieldSelector": fields, "limit": 500, "continue": token},
                what=resource.describe(namespace),
            )
            for item in page.get("items") or []:
                item.setdefault("apiVersion", resource.api_version)
                item.setdefault("kind", resource.kind)
                items.append(item)
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    # -- writes --------------------------------------------------------------------------------------------
    def create(self, resource: Resource, body: Mapping[str, Any]) -> dict[str, Any]:
        namespace = body["metadata"].get("namespace")
        return self.request(
            "POST",
            resource.path(namespace),
            query={"fieldManager": FIELD_MANAGER},
            body=dict(body),
            what=resource.describe(namespace, body["metadata"].get("name")),
        )

    def get_or_create(self, resource: Resource, body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create the object; if one of that name exists (409), return that one. True when created here.

        The caller checks that an existing object is really its own (e.g. the owner's uid): a name may
        outlive the owner that used it, until the garbage collector catches up.
        """
        meta = body["metadata"]
        try:
            return self.create(resource, body), True
        except AlreadyExists:
            existing = self.get(resource, meta.get("namespace"), meta["name"])
            if existing is None:  # deleted between the two calls; the next reconcile creates it again
                raise TransientError(
                    f"{resource.describe(meta.get('namespace'), meta['name'])} vanished right after a 409",
                    status=409,
                ) from None
            return existing, False

    def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """A JSON merge patch; `metadata.resourceVersion` in the patch makes it conditional (409 if stale)."""
        return self.request(
            "PATCH",
            resource.path(namespace, name, subresource),
            query={"fieldManager": FIELD_MANAGER},
            body=dict(patch),
            content_type=MERGE_PATCH,
            what=resource.describe(namespace, name) + (f" ({subresource})" if subresource else ""),
        )

    def patch_status(
        self,
        resource: Resource,
        obj: Mapping[str, Any],
        desired: BaseModel,
        *,
        conditional: bool = False,
    ) -> dict[str, Any] | None:
        """Write `desired` to the object's status subresource; None, and no request, when nothing changed.

        With `conditional`, the write carries the resourceVersion it was computed from, so that a
        concurrent change is a Conflict instead of a lost update (for read-modify-write of lists).
        """
        body = status_patch(obj.get("status"), desired)
        if body is None:
            return None
        meta = obj["metadata"]
        if conditional:
            body = {**body, "metadata": {"resourceVersion": meta["resourceVersion"]}}
        return self.patch(resource, meta.get("namespace"), meta["name"], body, subresource="status")

    def replace(self, resource: Resource, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT; the body's metadata.resourceVersion makes it fail with Conflict if the object changed."""
        meta = body["metadata"]
        return self.request(
            "PUT",
            resource.path(meta.get("namespace"), meta["name"]),
            query={"fieldManager": FIELD_MANAGER},
            body=dict(body),
            what=resource.describe(meta.get("namespace"), meta["name"]),
        )

    def delete(
        self, resource: Resource, namespace: str | None, name: str, *, propagation: str = "Background"
    ) -> bool:
        """Delete; False if it was already gone."""
        try:
            self.request(
                "DELETE",
                resource.path(namespace, name),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation},
                what=resource.describe(namespace, name),
            )
            return True
        except NotFound:
            return False


def selector_of(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def retry_on_conflict(attempt: Callable[[], T], *, attempts: int = 8, what: str = "") -> T:
    """Run a read-modify-write `attempt` again while it loses optimistic-concurrency races (409)."""
    last: KubeError | None = None
    for _ in range(attempts):
        try:
            return attempt()
        except (Conflict, AlreadyExists) as e:
            last = e
            log.debug("conflict on %s, retrying: %s", what, e)
    raise TransientError(f"{what or 'write'} kept conflicting after {attempts} attempts: {last}", status=409)
