"""The kinds the operator reads and writes, and how their URLs are formed. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from kubeloop.api import GROUP, VERSION


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        """`/api/v1/namespaces/ns/pods/name/status` and the like; no namespace lists across namespaces."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base

    def describe(self, namespace: str | None, name: str | None = None) -> str:
        where = f"{namespace}/" if namespace else ""
        return f"{self.kind} {where}{name}" if name else f"{self.plural} in {namespace or 'all namespaces'}"


TRAINING_RUN = Resource(GROUP, VERSION, "trainingruns", "TrainingRun")
MODEL_VERSION = Resource(GROUP, VERSION, "modelversions", "ModelVersion")
DRIFT_MONITOR = Resource(GROUP, VERSION, "driftmonitors", "DriftMonitor")
JOB = Resource("batch", "v1", "jobs", "Job")
POD = Resource("", "v1", "pods", "Pod")
CONFIG_MAP = Resource("", "v1", "configmaps", "ConfigMap")
SERVICE = Resource("", "v1", "services", "Service")
EVENT = Resource("", "v1", "events", "Event")
DEPLOYMENT = Resource("apps", "v1", "deployments", "Deployment")
