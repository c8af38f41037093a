"""ModelVersion: one registry entry, long-lived, with its lineage, its desired stage and its rollout."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from kubeloop.api.cel import cel
from kubeloop.api.common import ApiModel, ModelName, ObjectName, StatusModel, Timestamp
from kubeloop.api.condition import CONDITIONS_LIST, Condition
from kubeloop.api.kind import AGE_COLUMN, KindInfo, PrinterColumn, condition_column
from kubeloop.api.serving import ServingSpec
from kubeloop.api.trainingrun import EstimatorSpec

Stage = Literal["None", "Staging", "Production", "Archived"]
TriggerReason = Literal["Manual", "Drift", "PerformanceBreach", "Schedule", "NewData"]
RolloutPhase = Literal["Idle", "Pending", "Progressing", "Paused", "Promoted", "RolledBack", "Superseded"]
Verdict = Literal["Pass", "Fail", "Inconclusive"]

DIGEST_PATTERN = r"^sha256:[a-f0-9]{64}$"


class ArtifactRef(ApiModel):
    """Where the model artifact directory lives, and the digest that pins its content."""

    uri: str = Field(
        min_length=1,
        max_length=2048,
        pattern=r"^(file|s3|pvc)://[^\s]+$",
        description="Artifact directory, e.g. s3://kubeloop-artifacts/iris/v3/.",
    )
    digest: str = Field(
        pattern=DIGEST_PATTERN,
        description="sha256 of the artifact manifest, as sha256:<64 hex>; the server refuses other content.",
    )


class Trigger(ApiModel):
    """Why a training happened: who or what asked for it, and the evidence."""

    reason: TriggerReason = Field(
        default="Manual",
        description="Manual, Drift, PerformanceBreach, Schedule or NewData.",
    )
    monitor: ObjectName | None = Field(
        default=None, description="DriftMonitor that triggered the training, if any."
    )
    window: int | None = Field(default=None, ge=0, description="Index of the monitor window that caused it.")
    scores: dict[str, float] = Field(
        default_factory=dict,
        description="Drift scores (or the performance value) per feature that caused it.",
    )
    message: str = Field(default="", max_length=4096, description="Human-readable account of the trigger.")


class Lineage(ApiModel):
    """Where the version came from: run, data, image, estimator, and what triggered it."""

    training_run: ObjectName | None = Field(
        default=None, description="TrainingRun that produced the version."
    )
    data_uri: str | None = Field(default=None, max_length=2048, description="URI of the training data.")
    data_hash: str | None = Field(
        default=None, max_length=128, description="Content hash of the training data (sha256:...)."
    )
    image: str | None = Field(
        default=None, max_length=512, description="Trainer image that fitted the model."
    )
    estimator: EstimatorSpec | None = Field(default=None, description="Estimator class and params used.")
    trigger: Trigger = Field(default_factory=Trigger, description="What caused the training.")


@cel("self.model == oldSelf.model", "model is immutable", field_path=".model", reason="FieldValueForbidden")
@cel(
    "self.version == oldSelf.version",
    "version is immutable",
    field_path=".version",
    reason="FieldValueForbidden",
)
@cel(
    "self.artifact == oldSelf.artifact",
    "artifact is immutable: register a new version instead",
    field_path=".artifact",
    reason="FieldValueForbidden",
)
@cel(
    "!has(self.approvedStep) || !has(self.serving) || !has(self.serving.canary) || "
    "!has(self.serving.canary.steps) || self.approvedStep < size(self.serving.canary.steps)",
    "approvedStep must be the index of a step of serving.canary.steps",
    field_path=".approvedStep",
    reason="FieldValueInvalid",
)
class ModelVersionSpec(ApiModel):
    """Desired state of a registry entry: the artifact, its lineage, and the stage it should be in."""

    model: ModelName
    version: int = Field(ge=1, le=1_000_000, description="Version number, unique per model, counting from 1.")
    artifact: ArtifactRef = Field(description="The model artifact.")
    lineage: Lineage = Field(default_factory=Lineage, description="Provenance of the version.")
    metrics: dict[str, float] = Field(
        default_factory=dict, description="Metrics on the held-out split at training time."
    )
    stage: Stage = Field(
        default="None",
        description=(
            "Desired stage: None, Staging, Production or Archived. Setting Production starts a canary "
            "rollout next to the current production version; the previous one is Archived once promoted."
        ),
    )
    approved_step: int | None = Field(
        default=None,
        ge=0,
        le=9,
        description=(
            "Index of the last canary step a human approved; steps with manualApproval wait until this "
            "reaches them. The annotation kubeloop.dev/approved-step does the same."
        ),
    )
    serving: ServingSpec = Field(default_factory=ServingSpec, description="How the version is served.")


class Measurement(StatusModel):
    """One analysed metric of a canary step."""

    metric: str = Field(
        description="errorRate, p99LatencyMilliseconds, predictionShift, onlineAccuracy or requests."
    )
    value: float | None = Field(default=None, description="Measured value; unset when there was no data.")
    threshold: float | None = Field(default=None, description="The bound it was held against.")
    passed: bool | None = Field(
        default=None, description="Whether it met the bound; unset when inconclusive."
    )


class StepAnalysis(StatusModel):
    """The verdict of one canary step and the values that led to it."""

    step: int = Field(ge=0, description="Index of the step in the canary plan.")
    weight: int = Field(ge=0, le=100, description="Canary weight during the step.")
    verdict: Verdict = Field(description="Pass, Fail or Inconclusive.")
    measurements: list[Measurement] = Field(default_factory=list, description="Each metric analysed.")
    time: Timestamp = Field(description="When the verdict was reached.")
    message: str = Field(default="", description="Summary of the verdict.")


class RolloutStatus(StatusModel):
    """Where the canary rollout stands."""

    phase: RolloutPhase = Field(
        default="Idle",
        description="Idle, Pending, Progressing, Paused (for approval), Promoted, RolledBack or Superseded.",
    )
    step: int = Field(default=0, ge=0, description="Index of the current (or last) step.")
    weight: int = Field(
        default=0, ge=0, le=100, description="Percent of traffic currently sent to this version."
    )
    step_start_time: Timestamp | None = Field(default=None, description="When the current step began.")
    inconclusive_since: Timestamp | None = Field(
        default=None, description="When the current step's analysis first came back inconclusive."
    )
    stable_version: ObjectName | None = Field(
        default=None, description="ModelVersion serving as stable while this one is the canary."
    )
    canary_replicas: int = Field(default=0, ge=0, description="Replicas of this version during the rollout.")
    stable_replicas: int = Field(
        default=0, ge=0, description="Replicas of the stable version during the rollout."
    )
    start_time: Timestamp | None = Field(default=None, description="When the rollout started.")
    completion_time: Timestamp | None = Field(
        default=None, description="When it was promoted or rolled back."
    )
    analyses: list[StepAnalysis] = Field(
        default_factory=list, description="Verdicts of the steps analysed so far, in order."
    )


class PromotionRecord(StatusModel):
    """One stage change: from, to, who or what, why, and when."""

    from_stage: Stage = Field(alias="from", description="Stage before the change.")
    to_stage: Stage = Field(alias="to", description="Stage after the change.")
    by: str = Field(description="Who or what made the change, e.g. a user name, a TrainingRun, the operator.")
    reason: str = Field(description="Why, e.g. Promoted, RolledBack, Superseded, ManualEdit.")
    time: Timestamp = Field(description="When.")


class ModelVersionStatus(StatusModel):
    """Observed state of a registry entry, written only by the operator."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status describes."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra=CONDITIONS_LIST,
        description="Ready, Progressing and RolledBack, plus Reconciling and Stalled for kstatus/Flux.",
    )
    stage: Stage = Field(default="None", description="Stage the version is actually in.")
    rollout: RolloutStatus | None = Field(default=None, description="The canary rollout, once one started.")
    deployment: ObjectName | None = Field(default=None, description="Deployment serving this version.")
    service: ObjectName | None = Field(
        default=None, description="Service of the model, shared by its versions."
    )
    ready_replicas: int = Field(default=0, ge=0, description="Ready server pods of this version.")
    history: list[PromotionRecord] = Field(
        default_factory=list, description="Stage changes, oldest first, bounded to the most recent ones."
    )
    message: str | None = Field(default=None, description="Latest outcome in one sentence.")


class ModelVersion(ApiModel):
    """A ModelVersion is one registered model: artifact, lineage, metrics, stage and rollout."""

    api_version: Literal["kubeloop.dev/v1alpha1"] = Field(default="kubeloop.dev/v1alpha1", alias="apiVersion")
    kind: Literal["ModelVersion"] = "ModelVersion"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ModelVersionSpec
    status: ModelVersionStatus | None = None


INFO = KindInfo(
    kind="ModelVersion",
    plural="modelversions",
    short_names=("mv",),
    conditions=("Ready", "Progressing", "RolledBack", "Reconciling", "Stalled"),
    spec=ModelVersionSpec,
    status=ModelVersionStatus,
    description=(
        "A ModelVersion is one entry of the model registry: an immutable artifact with its lineage and "
        "metrics, a desired stage, and the canary rollout that serves it when it becomes Production."
    ),
    columns=(
        PrinterColumn("Model", ".spec.model", description="Registry model name."),
        PrinterColumn("Version", ".spec.version", "integer", "Version number."),
        PrinterColumn("Desired", ".spec.stage", description="Desired stage."),
        PrinterColumn("Stage", ".status.stage", description="Actual stage."),
        condition_column("Ready"),
        PrinterColumn("Weight", ".status.rollout.weight", "integer", "Percent of traffic on this version."),
        AGE_COLUMN,
        condition_column("Progressing", "reason", name="Rollout", priority=1),
        condition_column("RolledBack", "status", name="RolledBack", priority=1),
        PrinterColumn("Artifact", ".spec.artifact.uri", description="Artifact directory.", priority=1),
    ),
)
