"""The Helm chart's values, as one typed model: the source of `values.yaml` (with its comments) and of the
strict `values.schema.json`, so the two can never disagree.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from kubeloop.api.common import ResourceRequirements


class Values(BaseModel):
    """Base of every values block: camelCase keys, unknown keys refused (additionalProperties false)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True, extra="forbid"
    )


class ImageValues(Values):
    repository: str = Field(
        default="ghcr.io/kubeloop/operator",
        min_length=1,
        description="Image repository of the operator.",
    )
    tag: str = Field(default="", description="Image tag. Empty: the chart's appVersion.")
    digest: str = Field(
        default="",
        pattern=r"^(sha256:[a-f0-9]{64})?$",
        description="Image digest; when set it wins over the tag.",
    )
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="Image pull policy."
    )


class CrdValues(Values):
    enabled: bool = Field(
        default=True, description="Install the TrainingRun, ModelVersion and DriftMonitor CRDs."
    )
    keep: bool = Field(
        default=True,
        description=(
            "Keep the CRDs when the release is uninstalled (helm.sh/resource-policy: keep), so that "
            "uninstalling the chart never deletes the custom resources of its users."
        ),
    )


class PeeringValues(Values):
    enabled: bool = Field(
        default=False,
        description=(
            "Use kopf peering so that only one of several replicas acts at a time. Required when replicas > 1; "
            "installs the kopf peering CRDs and the peering object."
        ),
    )
    name: str = Field(
        default="kubeloop",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Name of the kopf peering object.",
    )


class S3Values(Values):
    existing_secret: str = Field(
        default="",
        description=(
            "Secret with the object store credentials, keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. "
            "Empty: none are set (e.g. when the pod gets them from its cloud identity)."
        ),
    )
    endpoint_url: str = Field(
        default="", description="S3 endpoint for S3-compatible stores (AWS_ENDPOINT_URL). Empty: AWS."
    )


class EnvVar(Values):
    name: str = Field(min_length=1, description="Variable name.")
    value: str = Field(default="", description="Variable value.")


class OperatorValues(Values):
    replicas: int = Field(
        default=1, ge=0, le=10, description="Operator replicas. More than one needs peering.enabled."
    )
    strategy: Literal["Recreate", "RollingUpdate"] = Field(
        default="Recreate",
        description=(
            "Deployment strategy. Recreate (the default) never runs two operators at once; RollingUpdate is "
            "safe only with peering."
        ),
    )
    peering: PeeringValues = Field(
        default_factory=PeeringValues, description="kopf peering between replicas."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Operator log level (KUBELOOP_LOG_LEVEL)."
    )
    trainer_image: str = Field(
        default="ghcr.io/kubeloop/trainer:0.1.0",
        min_length=1,
        description="Default image of training Jobs and model servers (KUBELOOP_TRAINER_IMAGE).",
    )
    artifact_root: str = Field(
        default="s3://kubeloop-artifacts",
        pattern=r"^(s3|file|pvc)://.+$",
        description="Where artifacts are written, e.g. s3://bucket/prefix (KUBELOOP_ARTIFACT_ROOT).",
    )
    s3: S3Values = Field(default_factory=S3Values, description="Object store credentials and endpoint.")
    extra_env: list[EnvVar] = Field(
        default_factory=list, description="More KUBELOOP_* settings as name/value pairs."
    )
    resources: ResourceRequirements = Field(
        default_factory=lambda: ResourceRequirements(
            requests={"cpu": "100m", "memory": "256Mi"}, limits={"cpu": "1", "memory": "512Mi"}
        ),
        description="Resources of the operator container.",
    )
    health_port: int = Field(default=8080, ge=1024, le=65535, description="Port of GET /healthz (probes).")
    metrics_port: int = Field(
        default=9090, ge=1024, le=65535, description="Port of GET /metrics (Prometheus)."
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node selector of the operator pod."
    )
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, description="Tolerations of the operator pod."
    )
    affinity: dict[str, Any] = Field(default_factory=dict, description="Affinity of the operator pod.")
    pod_annotations: dict[str, str] = Field(default_factory=dict, description="Extra annotations of the pod.")
    pod_labels: dict[str, str] = Field(default_factory=dict, description="Extra labels of the pod.")
    priority_class_name: str = Field(default="", description="Priority class of the operator pod.")


class WatchValues(Values):
    mode: Literal["Cluster", "Namespaced"] = Field(
        default="Cluster",
        description=(
            "Cluster: watch every namespace, with a ClusterRole. Namespaced: watch only `namespaces`, with a "
            "Role in each and nothing cluster-wide (CRDs installed later are served after a restart)."
        ),
    )
    namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces to watch in Namespaced mode. Empty: the release namespace.",
    )


class ServiceAccountValues(Values):
    create: bool = Field(default=True, description="Create the operator's ServiceAccount.")
    name: str = Field(default="", description="Its name. Empty: the release's full name.")
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations, e.g. for a cloud workload identity."
    )


class RbacValues(Values):
    create: bool = Field(
        default=True, description="Create the least-privilege Roles or ClusterRoles and bindings."
    )
    gateway_api: bool = Field(
        default=False, description="Allow managing Gateway API HTTPRoutes (for precise canary weights)."
    )


class ServiceMonitorValues(Values):
    enabled: bool = Field(default=False, description="Create a Prometheus Operator ServiceMonitor.")
    interval: str = Field(default="30s", pattern=r"^[0-9]+(ms|s|m|h)$", description="Scrape interval.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="Extra labels, e.g. for a Prometheus selector."
    )


class PrometheusRuleValues(Values):
    enabled: bool = Field(
        default=False, description="Create a PrometheusRule alerting on drift, failed runs and rollbacks."
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Extra labels, e.g. for a Prometheus selector."
    )
    drift_for: str = Field(
        default="15m", pattern=r"^[0-9]+(s|m|h)$", description="How long drift must last before it alerts."
    )


class GrafanaValues(Values):
    enabled: bool = Field(
        default=False, description="Ship the Grafana dashboard as a ConfigMap for the Grafana sidecar."
    )
    labels: dict[str, str] = Field(
        default_factory=lambda: {"grafana_dashboard": "1"},
        description="Labels the Grafana sidecar looks for.",
    )


class MetricsValues(Values):
    service_monitor: ServiceMonitorValues = Field(
        default_factory=ServiceMonitorValues, description="ServiceMonitor (needs the Prometheus Operator)."
    )
    prometheus_rule: PrometheusRuleValues = Field(
        default_factory=PrometheusRuleValues, description="Alerts (needs the Prometheus Operator)."
    )
    grafana_dashboard: GrafanaValues = Field(default_factory=GrafanaValues, description="Grafana dashboard.")


class ChartValues(Values):
    """Values of the kubeloop chart."""

    name_override: str = Field(default="", description="Replaces the chart name in resource names.")
    full_name_override: str = Field(
        default="", alias="fullnameOverride", description="Replaces the full name."
    )
    image: ImageValues = Field(default_factory=ImageValues, description="The operator image.")
    image_pull_secrets: list[str] = Field(default_factory=list, description="Names of image pull Secrets.")
    crds: CrdValues = Field(default_factory=CrdValues, description="The kubeloop CRDs.")
    operator: OperatorValues = Field(default_factory=OperatorValues, description="The operator Deployment.")
    watch: WatchValues = Field(
        default_factory=WatchValues, description="Which namespaces the operator serves."
    )
    service_account: ServiceAccountValues = Field(
        default_factory=ServiceAccountValues, description="The operator's ServiceAccount."
    )
    rbac: RbacValues = Field(default_factory=RbacValues, description="RBAC of the operator.")
    metrics: MetricsValues = Field(default_factory=MetricsValues, description="Monitoring integrations.")
