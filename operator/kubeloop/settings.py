"""The operator's one typed settings object, read from the environment (prefix `KUBELOOP_`).

Every knob of the operator is here, with a description; `handlers/startup.py` applies the kopf ones, and
the services read the rest from the object kopf passes around in its memo. Nothing else reads the
environment.
"""

from __future__ import annotations

import os
import random
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kubeloop.api import ResourceRequirements

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
ProgressStorage = Literal["status", "annotations", "smart"]

# Named points where the operator kills itself with SIGKILL (KUBELOOP_CRASH_AT), for restart-safety tests.
CRASH_POINTS = frozenset({"job-created", "job-finished", "version-created"})


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _default_training_resources() -> ResourceRequirements:
    return ResourceRequirements(
        requests={"cpu": "100m", "memory": "256Mi"}, limits={"cpu": "2", "memory": "2Gi"}
    )


class Settings(BaseSettings):
    """Operator settings; each field is the env var `KUBELOOP_<FIELD NAME IN CAPITALS>`."""

    model_config = SettingsConfigDict(env_prefix="KUBELOOP_", extra="ignore", frozen=True)

    # -- what to watch ------------------------------------------------------------------------------------
    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Namespaces to watch, comma separated. Empty: every namespace (cluster-wide).",
    )
    peering: str = Field(
        default="",
        description=(
            "Name of the kopf peering object shared by the replicas; only the one with the highest priority "
            "acts. Empty: standalone (exactly one replica must run)."
        ),
    )
    peering_priority: int = Field(
        default_factory=lambda: random.randint(1, 2**31 - 1),
        ge=0,
        description=(
            "This replica's peering priority. Default: random, so that two replicas never tie (kopf pauses "
            "every replica of a tie, which is safe but stops all work)."
        ),
    )

    peering_lifetime: int = Field(
        default=60,
        ge=5,
        le=3600,
        description=(
            "Seconds a replica's peering heartbeat stays valid; a replica that died without saying goodbye "
            "(SIGKILL, node loss) blocks the others this long."
        ),
    )

    # -- the work -----------------------------------------------------------------------------------------
    trainer_image: str = Field(
        default="ghcr.io/kubeloop/trainer:0.1.0",
        description="Default image of training Jobs, when a TrainingRun names none.",
    )
    artifact_root: str = Field(
        default="s3://kubeloop-artifacts",
        pattern=r"^(s3|file|pvc)://\S+$",
        description="Where trainers write artifacts: <root>/<namespace>/<model>/<run>-<uid>.",
    )
    s3_secret: str = Field(
        default="kubeloop-s3",
        description=(
            "Secret, in each TrainingRun's namespace, whose keys AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY "
            "and optionally AWS_ENDPOINT_URL and AWS_DEFAULT_REGION become the training pod's environment "
            "through secretKeyRef. Optional: without it the pod relies on its cloud identity. Empty: none."
        ),
    )
    s3_endpoint_url: str = Field(
        default="",
        description="S3 endpoint for training pods (AWS_ENDPOINT_URL); overrides the Secret's. Empty: none.",
    )
    allowed_modules: str = Field(
        default="",
        description="Estimator packages trainers may import (KUBELOOP_ALLOWED_MODULES of the pod). Empty: sklearn.",
    )
    training_resources: ResourceRequirements = Field(
        default_factory=_default_training_resources,
        description="Resources of a training container when the TrainingRun gives none (JSON).",
    )
    training_service_account: str = Field(
        default="",
        description="ServiceAccount of training pods. Empty: the namespace's default (its token is not mounted).",
    )

    # -- registry ------------------------------------------------------------------------------------------
    registry_config_map: str = Field(
        default="kubeloop-registry", description="Name of the registry index ConfigMap in each namespace."
    )
    registry_recent_versions: int = Field(
        default=50, ge=1, le=1000, description="Most recent versions listed per model in the index."
    )
    registry_history: int = Field(
        default=50, ge=1, le=1000, description="Most recent stage changes kept per model in the index."
    )
    version_history: int = Field(
        default=20, ge=1, le=200, description="Stage changes kept in each ModelVersion's status.history."
    )

    # -- process ------------------------------------------------------------------------------------------
    log_level: LogLevel = Field(default="INFO", description="Log level of the operator.")
    posting_level: LogLevel = Field(
        default="WARNING",
        description="Lowest level of kopf's own handler messages posted as Events (kubeloop's are separate).",
    )
    bind_address: str = Field(default="0.0.0.0", description="Address of the health and metrics servers.")
    health_port: int = Field(default=8080, ge=1, le=65535, description="Port of GET /healthz.")
    metrics_port: int = Field(default=9090, ge=1, le=65535, description="Port of GET /metrics.")
    progress_storage: ProgressStorage = Field(
        default="status",
        description=(
            "Where kopf keeps handler progress: status (status.kopf), annotations, or smart (both). status "
            "never writes the metadata of objects that users or GitOps own."
        ),
    )
    max_workers: int = Field(
        default=8, ge=1, le=256, description="Threads running handlers; bounds concurrent API work."
    )
    worker_limit: int = Field(
        default=200, ge=1, le=10000, description="Objects processed concurrently (kopf's per-object workers)."
    )
    request_timeout: float = Field(default=30.0, gt=0, description="Timeout of one API request, seconds.")
    watch_timeout: int = Field(
        default=300, gt=0, description="Server-side timeout of a watch request before it is renewed."
    )
    resync_interval: float = Field(
        default=60.0,
        gt=0,
        description="Longest a running TrainingRun waits between checks when no Job event wakes it.",
    )
    retry_delay: float = Field(
        default=10.0, gt=0, description="Delay before a handler that hit a transient error runs again."
    )
    pod_name: str = Field(
        default_factory=lambda: os.uname().nodename,
        validation_alias=AliasChoices("KUBELOOP_POD_NAME", "POD_NAME"),
        description="This replica's name (the Deployment sets POD_NAME), reported on Events.",
    )
    crash_at: Annotated[frozenset[str], NoDecode] = Field(
        default_factory=frozenset,
        description=(
            "Testing only: comma-separated points (job-created, job-finished, version-created) where the "
            "process kills itself with SIGKILL, to prove that a restart at that point converges."
        ),
    )

    _split_namespaces = field_validator("namespaces", mode="before")(_comma_list)

    @field_validator("crash_at", mode="before")
    @classmethod
    def _crash_points(cls, value: object) -> object:
        value = _comma_list(value)
        unknown = set(value) - CRASH_POINTS if isinstance(value, list | set | frozenset) else set()
        if unknown:
            raise ValueError(f"unknown crash points {sorted(unknown)}; known: {sorted(CRASH_POINTS)}")
        return value

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    @property
    def standalone(self) -> bool:
        return not self.peering
