"""The objects that serve a model: one Deployment per served version, one Service per model, and,
with GatewayAPI routing, one Service per version plus an HTTPRoute with the canary weights. Pure.

- Each version's Deployment (`<model>-v<version>`) runs `kubeloop-trainer serve` on the version's
  artifact, pinned by its digest. Its pods carry the model and version labels; the Deployment also
  carries the track (stable or canary). The track is deliberately NOT a pod label: promotion flips it,
  and a pod-template change would restart every pod of the version that just proved itself.
- The model's Service (`<model>-serving`) selects the model's server pods of every version, so replica
  counts split the traffic. It is shared by the versions, so each version that served adds itself as a
  (non-controller) owner; the garbage collector deletes it only when every one of them is gone.
- The server binds the pod IP from the downward API (`status.podIP`), so several pods on one host can use
  the same port.
- Traffic is never dropped by a rollout: a pod receives requests only once its readiness probe says the
  model is loaded; on the way out, `preStop` sleeps for `drainSeconds` so that endpoint lists stop naming
  the pod before the server gets SIGTERM, and the grace period covers the sleep plus the server's own
  graceful shutdown (it finishes requests in flight).
- The pod runs under the `restricted` Pod Security Standard, with no ServiceAccount token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kubeloop.api import ModelVersionSpec, ResourceRequirements
from kubeloop.builders.labels import (
    COMPONENT,
    MANAGED_BY,
    MANAGED_BY_VALUE,
    MODEL_LABEL,
    NAME,
    VERSION_LABEL,
    child_name,
    owner_reference,
)
from kubeloop.builders.security import restricted_container, restricted_pod
from kubeloop.builders.storage_env import s3_env
from kubeloop.contract import (
    DEFAULT_PORT,
    LIVE_PATH,
    METRICS_PATH,
    MODEL_DIGEST_ENV,
    MODEL_NAME_ENV,
    MODEL_URI_ENV,
    MODEL_VERSION_ENV,
    PORT_ENV,
    READY_PATH,
)

Track = Literal["stable", "canary", "retired"]

TRACK_LABEL = "kubeloop.dev/track"
SERVER_NAME = "kubeloop-server"
SERVER_COMPONENT = "model-server"
CONTAINER = "server"
PORT = DEFAULT_PORT
PORT_NAME = "http"
PVC_ROOT = "/mnt/pvc"  # the server's default KUBELOOP_PVC_ROOT
# The server's graceful shutdown (finishing requests in flight) on top of the drain sleep.
SHUTDOWN_SECONDS = 25
GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_VERSION = "v1"


def deployment_name(model: str, version: int) -> str:
    return child_name(model, f"v{version}")


def service_name(model: str) -> str:
    return child_name(model, "serving")


def version_service_name(model: str, version: int) -> str:
    """The per-version Service an HTTPRoute points at (GatewayAPI routing only)."""
    return child_name(model, f"v{version}")


def route_name(model: str) -> str:
    return service_name(model)


@dataclass(frozen=True)
class ServingPlan:
    """Everything one version's Deployment depends on, settled by the service before building."""

    version: Mapping[
        str, Any
    ]  # the ModelVersion object (apiVersion, kind, metadata with name, namespace, uid)
    spec: ModelVersionSpec
    image: str
    replicas: int
    track: Track
    default_resources: ResourceRequirements
    s3_secret: str = ""
    s3_endpoint_url: str = ""
    allowed_modules: str = ""
    drain_seconds: int = 5
    readiness_period_seconds: int = 1
    # How long a scale-up may go without a new Ready pod before the Deployment reports
    # ProgressDeadlineExceeded, which the rollout treats as a canary that cannot start.
    progress_deadline_seconds: int = 600

    @property
    def namespace(self) -> str:
        return self.version["metadata"]["namespace"]


def pod_labels(model: str, version: int) -> dict[str, str]:
    """The labels of a version's server pods; the Deployment selects exactly these."""
    return {
        MANAGED_BY: MANAGED_BY_VALUE,
        NAME: SERVER_NAME,
        COMPONENT: SERVER_COMPONENT,
        MODEL_LABEL: model,
        VERSION_LABEL: str(version),
    }


def model_selector(model: str) -> dict[str, str]:
    """Every server pod of the model, whatever its version: the Service's selector."""
    return {COMPONENT: SERVER_COMPONENT, MODEL_LABEL: model}


def _claim(uri: str) -> str | None:
    return uri.removeprefix("pvc://").split("/", 1)[0] if uri.startswith("pvc://") else None


def _probe(path: str, period: int, failures: int, timeout: int = 2) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": PORT_NAME, "scheme": "HTTP"},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
        "successThreshold": 1,
    }


def server_container(plan: ServingPlan) -> dict[str, Any]:
    spec = plan.spec
    env: list[dict[str, Any]] = [
        {"name": MODEL_URI_ENV, "value": spec.artifact.uri},
        {"name": MODEL_DIGEST_ENV, "value": spec.artifact.digest},
        {"name": MODEL_NAME_ENV, "value": spec.model},
        {"name": MODEL_VERSION_ENV, "value": str(spec.version)},
        {"name": PORT_ENV, "value": str(PORT)},
        {"name": "HOME", "value": "/tmp"},
        {"name": "TMPDIR", "value": "/tmp"},
    ]
    if plan.allowed_modules:
        env.append({"name": "KUBELOOP_ALLOWED_MODULES", "value": plan.allowed_modules})
    env += s3_env(plan.s3_secret, plan.s3_endpoint_url)
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    claim = _claim(spec.artifact.uri)
    if claim:
        mounts.append({"name": "artifact", "mountPath": f"{PVC_ROOT}/{claim}", "readOnly": True})
    resources = spec.serving.resources or plan.default_resources
    return {
        "name": CONTAINER,
        "image": plan.image,
        "command": ["kubeloop-trainer", "serve"],
        "env": env,
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        # Ready only once the model is loaded (the server answers liveness while it loads).
        "readinessProbe": _probe(READY_PATH, plan.readiness_period_seconds, 2),
        "livenessProbe": _probe(LIVE_PATH, 10, 3, timeout=3),
        # A large model may take minutes to download; liveness starts counting only after startup.
        "startupProbe": _probe(LIVE_PATH, 2, 150),
        "lifecycle": {"preStop": {"sleep": {"seconds": plan.drain_seconds}}},
        "resources": resources.model_dump(mode="json"),
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": restricted_container(),
    }


def deployment(plan: ServingPlan) -> dict[str, Any]:
    """The version's Deployment, at `plan.replicas`."""
    spec = plan.spec
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "512Mi"}}]
    claim = _claim(spec.artifact.uri)
    if claim:
        volumes.append({"name": "artifact", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
    labels = pod_labels(spec.model, spec.version)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(spec.model, spec.version),
            "namespace": plan.namespace,
            "labels": {**labels, TRACK_LABEL: plan.track},
            "ownerReferences": [owner_reference(plan.version)],
        },
        "spec": {
            "replicas": plan.replicas,
            "selector": {"matchLabels": labels},
            # The template changes only with the operator's own upgrades; then no pod leaves before its
            # replacement is Ready.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": plan.progress_deadline_seconds,
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(PORT),
                        "prometheus.io/path": METRICS_PATH,
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": plan.drain_seconds + SHUTDOWN_SECONDS,
                    "securityContext": restricted_pod(),
                    "containers": [server_container(plan)],
                    "volumes": volumes,
                },
            },
        },
    }


def scale_patch(replicas: int, track: Track | None = None) -> dict[str, Any]:
    """The merge patch that sets a Deployment's replicas (and its track label)."""
    patch: dict[str, Any] = {"spec": {"replicas": replicas}}
    if track is not None:
        patch["metadata"] = {"labels": {TRACK_LABEL: track}}
    return patch


def _service(
    name: str,
    namespace: str,
    selector: dict[str, str],
    owners: Sequence[Mapping[str, Any]],
    labels: dict[str, str],
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(o, controller=False) for o in owners],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }


def model_service(model: str, namespace: str, owners: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The model's Service, in front of the server pods of all its versions."""
    labels = {
        MANAGED_BY: MANAGED_BY_VALUE,
        NAME: SERVER_NAME,
        COMPONENT: SERVER_COMPONENT,
        MODEL_LABEL: model,
    }
    return _service(service_name(model), namespace, model_selector(model), owners, labels)


def version_service(plan: ServingPlan) -> dict[str, Any]:
    """One version's own Service, the backend an HTTPRoute weighs (GatewayAPI routing)."""
    spec = plan.spec
    labels = pod_labels(spec.model, spec.version)
    return _service(
        version_service_name(spec.model, spec.version), plan.namespace, labels, [plan.version], labels
    )


def missing_owner(service: Mapping[str, Any], owner: Mapping[str, Any]) -> dict[str, Any] | None:
    """The merge patch adding `owner` to a shared object's ownerReferences, or None if it is there."""
    refs = list((service.get("metadata") or {}).get("ownerReferences") or [])
    uid = owner["metadata"]["uid"]
    if any(ref.get("uid") == uid for ref in refs):
        return None
    # ownerReferences is a list: a merge patch replaces it whole, so the patch carries the old ones too.
    return {"metadata": {"ownerReferences": [*refs, owner_reference(owner, controller=False)]}}


@dataclass(frozen=True)
class RoutePlan:
    model: str
    namespace: str
    owners: Sequence[Mapping[str, Any]]
    stable_version: int | None
    canary_version: int | None
    canary_weight: int  # 0..100
    parent_refs: list[dict[str, Any]] = field(default_factory=list)
    hostnames: list[str] = field(default_factory=list)


def http_route(plan: RoutePlan) -> dict[str, Any]:
    """The model's HTTPRoute: the stable and the canary Services, weighted 100 - w and w."""
    backends = []
    if plan.stable_version is not None:
        backends.append(
            {
                "name": version_service_name(plan.model, plan.stable_version),
                "port": PORT,
                "weight": 100 - plan.canary_weight if plan.canary_version is not None else 100,
            }
        )
    if plan.canary_version is not None:
        backends.append(
            {
                "name": version_service_name(plan.model, plan.canary_version),
                "port": PORT,
                "weight": plan.canary_weight,
            }
        )
    spec: dict[str, Any] = {
        "parentRefs": plan.parent_refs,
        "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": backends}],
    }
    if plan.hostnames:
        spec["hostnames"] = plan.hostnames
    return {
        "apiVersion": f"{GATEWAY_GROUP}/{GATEWAY_VERSION}",
        "kind": "HTTPRoute",
        "metadata": {
            "name": route_name(plan.model),
            "namespace": plan.namespace,
            "labels": {MANAGED_BY: MANAGED_BY_VALUE, NAME: SERVER_NAME, MODEL_LABEL: plan.model},
            "ownerReferences": [owner_reference(o, controller=False) for o in plan.owners],
        },
        "spec": spec,
    }


def route_weights(route: Mapping[str, Any]) -> dict[str, int]:
    """Backend Service name -> weight of an HTTPRoute's first rule."""
    rules = (route.get("spec") or {}).get("rules") or [{}]
    return {b["name"]: int(b.get("weight", 1)) for b in rules[0].get("backendRefs") or []}
