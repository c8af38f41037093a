"""TrainingRun: one bounded training attempt, ending with Succeeded True or False.

The spec shapes here are also the trainer's task document: the operator hands them over as they are.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from kubeloop.api.cel import cel
from kubeloop.api.common import ApiModel, ModelName, ObjectName, ResourceRequirements, StatusModel, Timestamp
from kubeloop.api.condition import CONDITIONS_LIST, Condition
from kubeloop.api.kind import AGE_COLUMN, KindInfo, PrinterColumn, condition_column
from kubeloop.api.serving import CanaryPlan

ColumnType = Literal["int", "float", "string", "bool"]
DataFormat = Literal["csv", "parquet"]
PromotionPolicy = Literal["Auto", "Manual"]

# Column and metric names end up in CEL, labels and messages; keep them printable and bounded.
_NAME_LIMIT = 128

DATA_URI_PATTERN = r"^(file://|s3://|pvc://)[^\s]+$"


@cel(
    "!has(self.min) || !has(self.max) || self.min <= self.max",
    "min must not be greater than max",
    reason="FieldValueInvalid",
)
class ValueRange(ApiModel):
    """Closed bounds on a numeric column; either bound may be left out."""

    min: float | None = Field(default=None, description="Lowest allowed value (inclusive). Unset: unbounded.")
    max: float | None = Field(
        default=None, description="Highest allowed value (inclusive). Unset: unbounded."
    )

    @model_validator(mode="after")
    def _ordered(self) -> ValueRange:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) must not be greater than max ({self.max})")
        return self


class DataValidation(ApiModel):
    """The data gate: checks the training data must pass before any model is fitted."""

    expected_columns: dict[str, ColumnType] = Field(
        default_factory=dict,
        max_length=1000,
        description=(
            "Columns that must be present, with their type: int, float, string or bool. "
            "Columns not listed are allowed."
        ),
    )
    ranges: dict[str, ValueRange] = Field(
        default_factory=dict,
        max_length=1000,
        description="Allowed value range per numeric column; a value outside fails the gate.",
    )
    max_null_fraction: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Highest share of missing values allowed in any column, 0 to 1.",
    )
    min_rows: int = Field(default=1, ge=1, description="Fewest rows the data must have.")


@cel(
    "!has(self.groupColumn) || self.groupColumn != self.target",
    "groupColumn must differ from target",
    field_path=".groupColumn",
    reason="FieldValueInvalid",
)
class DataSpec(ApiModel):
    """Where the training data is and how to read it."""

    uri: str = Field(
        min_length=1,
        max_length=2048,
        pattern=DATA_URI_PATTERN,
        description=(
            "Location of the data: file:///path, s3://bucket/key, or pvc://claim/path for a file on a "
            "PersistentVolumeClaim mounted into the training pod."
        ),
    )
    format: DataFormat = Field(default="csv", description="File format: csv or parquet.")
    target: str = Field(
        min_length=1, max_length=_NAME_LIMIT, description="Name of the column the model learns to predict."
    )
    group_column: str | None = Field(
        default=None,
        min_length=1,
        max_length=_NAME_LIMIT,
        description=(
            "Column naming the entity each row belongs to (a customer, patient or device id). All rows "
            "of a group land on the same side of the train/test split, so the held-out metrics measure "
            "unseen entities; testSize is then a share of the groups. The column must have no missing "
            "values and is not a feature. Unset: copies of a row (identical rows carrying a value that no "
            "other row has) are kept together, and every other row splits on its own."
        ),
    )
    validation: DataValidation | None = Field(
        default=None,
        description=(
            "The data gate. Unset: only the target column is required, and the checks every run gets "
            "still apply (parseable file, at least two classes, no infinite values, no missing values "
            "for an estimator that cannot take them)."
        ),
    )

    @model_validator(mode="after")
    def _group_is_not_target(self) -> DataSpec:
        if self.group_column is not None and self.group_column == self.target:
            raise ValueError(f"groupColumn must differ from the target column {self.target!r}")
        return self


class EstimatorSpec(ApiModel):
    """Any scikit-learn compatible estimator, named by import path."""

    class_path: str = Field(
        min_length=3,
        max_length=256,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$",
        description="Import path of the estimator class, e.g. sklearn.ensemble.RandomForestClassifier.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments passed to the estimator's constructor, e.g. {n_estimators: 100}.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class TrainingSpec(ApiModel):
    """How to train: image, estimator, split, and the limits of the training Job."""

    image: str | None = Field(
        default=None,
        max_length=512,
        description="Trainer image running the `train` entrypoint. Unset: the operator's default image.",
    )
    estimator: EstimatorSpec = Field(description="The estimator to fit.")
    test_size: float = Field(
        default=0.25,
        gt=0.0,
        lt=1.0,
        description="Share of rows held out for evaluation (stratified for classification), between 0 and 1.",
    )
    seed: int = Field(
        default=0,
        ge=0,
        le=2**31 - 1,
        description="Random seed for the split and the estimator, for repeatable runs.",
    )
    resources: ResourceRequirements | None = Field(
        default=None, description="Resources of the training container. Unset: the operator's defaults."
    )
    deadline_seconds: int = Field(
        default=3600,
        ge=10,
        le=7 * 24 * 3600,
        description="Longest the training Job may run, in seconds (the Job's activeDeadlineSeconds).",
    )
    retries: int = Field(
        default=0,
        ge=0,
        le=10,
        description="How many times a failed training pod is retried (the Job's backoffLimit).",
    )


@cel(
    "has(self.min) || has(self.max)",
    "a threshold needs min, max or both",
    reason="FieldValueRequired",
)
@cel(
    "!has(self.min) || !has(self.max) || self.min <= self.max",
    "min must not be greater than max",
    reason="FieldValueInvalid",
)
class MetricThreshold(ApiModel):
    """An absolute bound the candidate's metric must meet on the held-out split."""

    metric: str = Field(
        min_length=1,
        max_length=_NAME_LIMIT,
        description="Metric name as the trainer reports it, e.g. accuracy, f1, roc_auc, rmse, r2.",
    )
    min: float | None = Field(default=None, description="The metric must be at least this.")
    max: float | None = Field(default=None, description="The metric must be at most this.")

    @model_validator(mode="after")
    def _bounded(self) -> MetricThreshold:
        if self.min is None and self.max is None:
            raise ValueError(f"threshold on {self.metric!r} needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"threshold on {self.metric!r}: min ({self.min}) > max ({self.max})")
        return self


class ChampionGate(ApiModel):
    """Champion/challenger: the candidate must beat the current production version on the same split."""

    enabled: bool = Field(default=True, description="Compare against the champion at all.")
    metric: str = Field(
        min_length=1,
        max_length=_NAME_LIMIT,
        description="Metric compared, e.g. accuracy or rmse.",
    )
    higher_is_better: bool = Field(
        default=True,
        description="Whether a larger value of the metric is better; false for errors such as rmse or mae.",
    )
    min_improvement: float = Field(
        default=0.0,
        ge=-1e9,
        le=1e9,
        description=(
            "Margin by which the candidate must beat the champion, in the metric's units; 0 means at least "
            "as good, a negative value tolerates a small regression."
        ),
    )


class ValidationSpec(ApiModel):
    """The model gate: absolute thresholds, then the champion comparison."""

    thresholds: list[MetricThreshold] = Field(
        default_factory=list,
        max_length=32,
        description="Absolute bounds, all of which the candidate must meet.",
    )
    champion: ChampionGate | None = Field(
        default=None,
        description="Comparison with the current production version of the model. Unset: no comparison.",
    )


class PromotionSpec(ApiModel):
    """What happens to the version a successful run registers."""

    policy: PromotionPolicy = Field(
        default="Manual",
        description=(
            "Auto: the new version is registered with stage Production requested, so its canary rollout "
            "starts at once. Manual: it is registered as Staging and waits for a user to set Production."
        ),
    )
    canary: CanaryPlan = Field(
        default_factory=CanaryPlan, description="Canary plan the new version will use when it is rolled out."
    )


class TrainingRunSpec(ApiModel):
    """Desired state of a TrainingRun: what to train on, how, which gates to pass, how to promote."""

    model: ModelName
    data: DataSpec = Field(description="The training data and its validation gate.")
    training: TrainingSpec = Field(description="The estimator and the limits of the training Job.")
    validation: ValidationSpec = Field(
        default_factory=ValidationSpec,
        description="The model gate: absolute metric thresholds and the champion comparison.",
    )
    promotion: PromotionSpec = Field(
        default_factory=PromotionSpec,
        description="Promotion policy and canary plan of the resulting version.",
    )


class GateResult(StatusModel):
    """One check of the data or model gate, with the numbers that decided it."""

    gate: Literal["Data", "Threshold", "Champion"] = Field(description="Which gate made the check.")
    metric: str = Field(description="Metric or check name, e.g. accuracy or min_rows.")
    value: float | None = Field(default=None, description="Measured value of the candidate.")
    bound: float | None = Field(
        default=None, description="The bound or the champion's value it was compared with."
    )
    passed: bool = Field(description="Whether the check passed.")
    message: str = Field(default="", description="Human-readable explanation of the check.")


class TrainingRunStatus(StatusModel):
    """Observed state of a TrainingRun, written only by the operator."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status describes."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra=CONDITIONS_LIST,
        description=(
            "DataValidated, Trained, ModelValidated, Registered and Succeeded, plus Ready, Reconciling "
            "and Stalled for kstatus/Flux."
        ),
    )
    job_name: ObjectName | None = Field(default=None, description="Name of the training Job.")
    task_config_map: ObjectName | None = Field(
        default=None, description="Name of the ConfigMap holding the trainer's task document."
    )
    image: str | None = Field(default=None, description="Trainer image actually used.")
    attempts: int = Field(default=0, ge=0, description="Training pods started so far.")
    data_hash: str | None = Field(default=None, description="Content hash of the training data (sha256:...).")
    data_rows: int | None = Field(default=None, ge=0, description="Rows read from the training data.")
    artifact_uri: str | None = Field(
        default=None, description="Where the trainer wrote the artifact directory."
    )
    artifact_digest: str | None = Field(
        default=None, description="Digest of the artifact manifest (sha256:...)."
    )
    candidate_metrics: dict[str, float] = Field(
        default_factory=dict, description="Metrics of the trained candidate on the held-out split."
    )
    champion_metrics: dict[str, float] = Field(
        default_factory=dict, description="Metrics of the champion on the same split, when there was one."
    )
    champion_version: ObjectName | None = Field(
        default=None, description="ModelVersion that was the champion at validation time."
    )
    gates: list[GateResult] = Field(
        default_factory=list, description="Every check of the data and model gates, with its numbers."
    )
    model_version: ObjectName | None = Field(
        default=None, description="Name of the ModelVersion this run created."
    )
    version: int | None = Field(default=None, ge=1, description="Version number of the ModelVersion created.")
    start_time: Timestamp | None = Field(default=None, description="When the operator started the run.")
    completion_time: Timestamp | None = Field(default=None, description="When the run ended, either way.")
    message: str | None = Field(
        default=None, description="Outcome in one sentence; on failure, what failed and the numbers."
    )


class TrainingRun(ApiModel):
    """A TrainingRun trains one candidate model, gates it and registers it as a ModelVersion."""

    api_version: Literal["kubeloop.dev/v1alpha1"] = Field(default="kubeloop.dev/v1alpha1", alias="apiVersion")
    kind: Literal["TrainingRun"] = "TrainingRun"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: TrainingRunSpec
    status: TrainingRunStatus | None = None


INFO = KindInfo(
    kind="TrainingRun",
    plural="trainingruns",
    short_names=("tr",),
    conditions=(
        "DataValidated",
        "Trained",
        "ModelValidated",
        "Registered",
        "Succeeded",
        "Ready",
        "Reconciling",
        "Stalled",
    ),
    spec=TrainingRunSpec,
    status=TrainingRunStatus,
    description=(
        "A TrainingRun trains one candidate model on the given data, passes it through the data gate and the "
        "model gate (absolute thresholds, then champion/challenger), and registers it as a ModelVersion. "
        "It is bounded: it ends with the Succeeded condition True or False."
    ),
    columns=(
        PrinterColumn("Model", ".spec.model", description="Registry model name."),
        condition_column("Succeeded"),
        condition_column("Succeeded", "reason", name="Reason"),
        PrinterColumn("Version", ".status.version", "integer", "Version number registered by the run."),
        AGE_COLUMN,
        PrinterColumn("Job", ".status.jobName", description="The training Job.", priority=1),
        condition_column("Succeeded", "message", name="Message", priority=1),
    ),
)
