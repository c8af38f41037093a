"""The demo's reads of the cluster, through the Kubernetes Python client with the admin kubeconfig.

Everything comes back as plain dicts in the API's camelCase, as `kubectl get -o json` would print them, so
the rest of the demo reads one shape. Writes go through `kubectl apply` (see `stack.py`), as a user's would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubeloop.api import GROUP, VERSION
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

PLURALS = {"TrainingRun": "trainingruns", "ModelVersion": "modelversions", "DriftMonitor": "driftmonitors"}


@dataclass(frozen=True)
class Endpoint:
    """One address behind a Service, from its EndpointSlices."""

    pod: str
    address: str
    port: int
    ready: bool

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"


class Kube:
    def __init__(self, kubeconfig: Path):
        self.api = config.new_client_from_config(config_file=str(kubeconfig))
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.discovery = client.DiscoveryV1Api(self.api)

    def close(self) -> None:
        self.api.close()

    def _plain(self, obj: Any) -> Any:
        return self.api.sanitize_for_serialization(obj)

    def list(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        result = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[kind], _request_timeout=15
        )
        return sorted(result.get("items", []), key=lambda o: o["metadata"]["creationTimestamp"])

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURALS[kind], name, _request_timeout=15
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._plain(self.core.read_namespaced_config_map(name, namespace, _request_timeout=15))
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def pods(self, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        pods = self.core.list_namespaced_pod(namespace, label_selector=selector, _request_timeout=15)
        return self._plain(pods).get("items", [])

    def endpoint_slices(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        slices = self.discovery.list_namespaced_endpoint_slice(
            namespace, label_selector=selector, _request_timeout=15
        )
        return self._plain(slices).get("items", [])

    def service_address(self, namespace: str, service: str) -> Endpoint | None:
        """The Service's ClusterIP and first port: where a client in the cluster sends its requests."""
        try:
            found = self.core.read_namespaced_service(service, namespace, _request_timeout=15)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        if not found.spec.cluster_ip or found.spec.cluster_ip == "None" or not found.spec.ports:
            return None
        return Endpoint(service, found.spec.cluster_ip, int(found.spec.ports[0].port), True)

    def endpoints(self, namespace: str, service: str) -> list[Endpoint]:
        """The ready and not-ready pod addresses behind `service` (what the board shows)."""
        return endpoints_of(self.endpoint_slices(namespace, f"kubernetes.io/service-name={service}"))


def endpoints_of(slices: list[dict[str, Any]]) -> list[Endpoint]:
    """Addresses from EndpointSlices: the first port of each slice, ready unless its condition says not."""
    out = []
    for endpoint_slice in slices:
        ports = endpoint_slice.get("ports") or []
        if not ports or not ports[0].get("port"):
            continue
        port = int(ports[0]["port"])
        for endpoint in endpoint_slice.get("endpoints") or []:
            ready = (endpoint.get("conditions") or {}).get("ready") is not False
            pod = (endpoint.get("targetRef") or {}).get("name", "")
            for address in endpoint.get("addresses") or []:
                out.append(Endpoint(pod, address, port, ready))
    return sorted(out, key=lambda e: (e.pod, e.address))
