"""DriftMonitor: watches the production version of one model on live traffic, and retrains when it drifts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, model_validator

from kubeloop.api.cel import cel
from kubeloop.api.common import ApiModel, Duration, ModelName, ObjectName, StatusModel, Timestamp
from kubeloop.api.condition import CONDITIONS_LIST, Condition
from kubeloop.api.kind import AGE_COLUMN, KindInfo, PrinterColumn, condition_column
from kubeloop.api.modelversion import TriggerReason
from kubeloop.api.trainingrun import DATA_URI_PATTERN, TrainingRunSpec

DriftMethod = Literal["Auto", "PSI", "KS", "ChiSquared", "Wasserstein", "JensenShannon"]
Correction = Literal["Bonferroni", "BenjaminiHochberg", "None"]
WindowVerdict = Literal["NoDrift", "Drift", "InsufficientData"]
OnlineMetric = Literal["accuracy", "mae", "rmse"]

CRON_PATTERN = r"^(@(hourly|daily|weekly|monthly|yearly|midnight)|(\S+\s+){4}\S+)$"


class DriftThresholds(ApiModel):
    """When a feature, and then the whole window, counts as drifted.

    By default every method uses a sample-size-aware rule that keeps the false-alarm rate at
    `falseAlarmRate` whatever the window size, so no-drift noise in small windows does not alarm and huge
    windows do not go deaf. A fixed cut for a method replaces that rule for that method.
    """

    false_alarm_rate: float = Field(
        default=0.01,
        gt=0.0,
        lt=0.5,
        description="Target false-alarm rate per window of the sample-size-aware default rule, e.g. 0.01.",
    )
    correction: Correction = Field(
        default="Bonferroni",
        description=(
            "Multiple-testing correction across features: Bonferroni, BenjaminiHochberg (false discovery "
            "rate) or None."
        ),
    )
    psi: float | None = Field(
        default=None,
        gt=0.0,
        le=100.0,
        description="Fixed PSI cut (e.g. 0.2). Unset: the sample-size-aware rule.",
    )
    jensen_shannon: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="Fixed Jensen-Shannon distance cut, 0 to 1. Unset: the sample-size-aware rule.",
    )
    wasserstein: float | None = Field(
        default=None,
        gt=0.0,
        le=1000.0,
        description=(
            "Fixed Wasserstein-1 cut in units of the reference standard deviation. "
            "Unset: the sample-size-aware rule."
        ),
    )
    p_value: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        description="Fixed p-value cut for KS and ChiSquared, before correction. Unset: falseAlarmRate.",
    )
    drift_share: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description=(
            "The window counts as drifted when at least one feature drifted and the share of drifted "
            "features is at least this, 0 to 1 (0: any one feature)."
        ),
    )


@cel(
    "self.metric != 'accuracy' || has(self.min)",
    "accuracy is a floor: set min",
    field_path=".min",
    reason="FieldValueRequired",
)
@cel(
    "self.metric == 'accuracy' || has(self.max)",
    "mae and rmse are ceilings: set max",
    field_path=".max",
    reason="FieldValueRequired",
)
class PerformanceFloor(ApiModel):
    """Online performance from feedback labels that, once breached, triggers a retrain."""

    metric: OnlineMetric = Field(
        default="accuracy", description="accuracy (classification), or mae or rmse (regression)."
    )
    min: float | None = Field(default=None, description="Lowest acceptable value (for accuracy).")
    max: float | None = Field(
        default=None, ge=0.0, description="Highest acceptable value (for mae and rmse)."
    )
    min_labels: int = Field(
        default=50, ge=1, le=10_000_000, description="Feedback labels needed in a window before it is judged."
    )

    @model_validator(mode="after")
    def _direction(self) -> PerformanceFloor:
        if self.metric == "accuracy" and self.min is None:
            raise ValueError("accuracy is a floor: set min")
        if self.metric != "accuracy" and self.max is None:
            raise ValueError(f"{self.metric} is a ceiling: set max")
        return self


class TrainingRunTemplate(ApiModel):
    """A TrainingRun to create on retrain: labels, annotations and a full spec."""

    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels added to the created TrainingRun."
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations added to the created TrainingRun."
    )
    spec: TrainingRunSpec = Field(
        description="Spec of the created TrainingRun; its model must be the monitor's."
    )


class CloneSource(ApiModel):
    """Retrain by cloning the TrainingRun that produced the production version."""

    data_uri: str | None = Field(
        default=None,
        max_length=2048,
        pattern=DATA_URI_PATTERN,
        description="Data URI for the clone, e.g. where fresh labelled data lands. Unset: the original's.",
    )
    training_run: ObjectName | None = Field(
        default=None,
        description="Clone this TrainingRun instead. Unset: the run in the production version's lineage.",
    )


@cel(
    "has(self.template) != has(self.clone)",
    "set exactly one of template or clone",
    reason="FieldValueInvalid",
)
class RetrainPolicy(ApiModel):
    """What TrainingRun to create, and how often at most."""

    on_drift: bool = Field(default=True, description="Retrain after consecutiveWindows drifted windows.")
    on_performance: bool = Field(default=True, description="Retrain when the performance floor is breached.")
    schedule: str | None = Field(
        default=None,
        max_length=128,
        pattern=CRON_PATTERN,
        description="Also retrain on this cron schedule (UTC), e.g. '0 3 * * 1'. Unset: never on a schedule.",
    )
    template: TrainingRunTemplate | None = Field(
        default=None, description="Create a TrainingRun from this template. Exclusive with clone."
    )
    clone: CloneSource | None = Field(
        default=None,
        description="Create a TrainingRun by cloning the production version's run. Exclusive with template.",
    )
    cooldown: Duration = Field(
        default=timedelta(hours=1),
        description="Least time between two retrains started by this monitor, e.g. 1h.",
    )
    max_per_day: int = Field(
        default=3, ge=1, le=100, description="Most retrains this monitor starts in any 24 hours."
    )

    @model_validator(mode="after")
    def _one_source(self) -> RetrainPolicy:
        if (self.template is None) == (self.clone is None):
            raise ValueError("set exactly one of template or clone")
        return self


@cel(
    "!has(self.retrain) || !has(self.retrain.template) || self.retrain.template.spec.model == self.model",
    "retrain.template.spec.model must equal model",
    field_path=".retrain.template.spec.model",
    reason="FieldValueInvalid",
)
@cel(
    "duration(self.interval) >= duration('5s')",
    "interval must be at least 5s",
    field_path=".interval",
    reason="FieldValueInvalid",
)
class DriftMonitorSpec(ApiModel):
    """Desired state of a DriftMonitor: which model, how often, how to judge, and what to do."""

    model: ModelName
    suspend: bool = Field(default=False, description="Stop checking and retraining until set back to false.")
    interval: Duration = Field(
        default=timedelta(minutes=5), description="Length of a window between checks, e.g. 5m."
    )
    min_samples: int = Field(
        default=200,
        ge=1,
        le=100_000_000,
        description="Fewest live rows in a window for a verdict; fewer is InsufficientData, never healthy.",
    )
    features: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Features to watch. Empty: every feature of the reference profile.",
    )
    method: DriftMethod = Field(
        default="Auto",
        description=(
            "Statistic per feature: Auto (ChiSquared on the reference profile's bins, for every feature), "
            "PSI, ChiSquared, JensenShannon, KS (on the ordered bins of numeric features) or Wasserstein "
            "(on the servers' reservoir samples of numeric features). KS and Wasserstein judge categorical "
            "features with ChiSquared."
        ),
    )
    thresholds: DriftThresholds = Field(
        default_factory=DriftThresholds, description="When a feature and a window count as drifted."
    )
    consecutive_windows: int = Field(
        default=3, ge=1, le=100, description="Drifted windows in a row needed before a retrain."
    )
    performance_floor: PerformanceFloor | None = Field(
        default=None, description="Online performance floor from feedback labels. Unset: not watched."
    )
    retrain: RetrainPolicy | None = Field(
        default=None, description="How to retrain. Unset: the monitor only reports."
    )

    @model_validator(mode="after")
    def _consistent(self) -> DriftMonitorSpec:
        if self.interval < timedelta(seconds=5):
            raise ValueError("interval must be at least 5s")
        template = self.retrain.template if self.retrain else None
        if template is not None and template.spec.model != self.model:
            raise ValueError(
                f"retrain.template.spec.model ({template.spec.model}) must equal model ({self.model})"
            )
        return self


class FeatureDrift(StatusModel):
    """The verdict on one feature in the last window."""

    name: str = Field(description="Feature name.")
    kind: Literal["numeric", "categorical"] = Field(description="numeric or categorical.")
    method: str = Field(description="Statistic used, e.g. KS.")
    score: float | None = Field(default=None, description="Value of the statistic.")
    p_value: float | None = Field(default=None, description="p-value, for tests that give one.")
    threshold: float | None = Field(
        default=None, description="The cut the score or p-value was held against."
    )
    drifted: bool = Field(description="Whether the feature drifted.")


class PerformanceObservation(StatusModel):
    """Online performance measured from feedback labels in the last window."""

    metric: OnlineMetric = Field(description="accuracy, mae or rmse.")
    value: float | None = Field(default=None, description="Measured value; unset with too few labels.")
    labels: int = Field(default=0, ge=0, description="Feedback labels in the window.")
    breached: bool = Field(default=False, description="Whether the floor was breached.")


class RetrainRecord(StatusModel):
    """A retrain this monitor started."""

    training_run: ObjectName = Field(description="The TrainingRun created.")
    reason: TriggerReason = Field(description="Drift, PerformanceBreach or Schedule.")
    window: int | None = Field(default=None, ge=0, description="Index of the window that caused it.")
    time: Timestamp = Field(description="When it was created.")
    scores: dict[str, float] = Field(default_factory=dict, description="Scores per feature that caused it.")
    message: str = Field(default="", description="Human-readable account of the trigger.")


class DriftMonitorStatus(StatusModel):
    """Observed state of a DriftMonitor, written only by the operator."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation this status describes."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra=CONDITIONS_LIST,
        description="Ready and Drifted, plus Reconciling and Stalled for kstatus/Flux.",
    )
    model_version: ObjectName | None = Field(
        default=None, description="Production ModelVersion being watched."
    )
    window: int = Field(default=0, ge=0, description="Windows evaluated so far; the index of the last one.")
    window_start: Timestamp | None = Field(default=None, description="Start of the last window.")
    last_check_time: Timestamp | None = Field(default=None, description="End of the last window.")
    sample_count: int = Field(
        default=0, ge=0, description="Live rows in the last window, summed over replicas."
    )
    verdict: WindowVerdict | None = Field(default=None, description="NoDrift, Drift or InsufficientData.")
    drift_share: float | None = Field(default=None, ge=0.0, le=1.0, description="Share of features drifted.")
    consecutive_drifted_windows: int = Field(
        default=0, ge=0, description="Drifted windows in a row, up to now."
    )
    features: list[FeatureDrift] = Field(
        default_factory=list, description="Per-feature verdicts of the last window."
    )
    performance: PerformanceObservation | None = Field(
        default=None, description="Online performance, if watched."
    )
    last_retrain: RetrainRecord | None = Field(
        default=None, description="The last retrain this monitor started."
    )
    retrain_history: list[RetrainRecord] = Field(
        default_factory=list,
        description="Recent retrains, oldest first; the daily cap is counted from these.",
    )
    last_schedule_time: Timestamp | None = Field(
        default=None, description="When the schedule last fired, so a restart does not fire it twice."
    )
    message: str | None = Field(default=None, description="Latest outcome in one sentence.")


class DriftMonitor(ApiModel):
    """A DriftMonitor compares live traffic of a model's production version with its training data."""

    api_version: Literal["kubeloop.dev/v1alpha1"] = Field(default="kubeloop.dev/v1alpha1", alias="apiVersion")
    kind: Literal["DriftMonitor"] = "DriftMonitor"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: DriftMonitorSpec
    status: DriftMonitorStatus | None = None


INFO = KindInfo(
    kind="DriftMonitor",
    plural="driftmonitors",
    short_names=("dm",),
    conditions=("Ready", "Drifted", "Reconciling", "Stalled"),
    spec=DriftMonitorSpec,
    status=DriftMonitorStatus,
    description=(
        "A DriftMonitor watches the live traffic of a model's production version window by window, compares "
        "it with the reference profile of its training data, and starts a retraining TrainingRun when the "
        "data drifts, online performance falls below a floor, or a schedule fires."
    ),
    columns=(
        PrinterColumn("Model", ".spec.model", description="Registry model name."),
        condition_column("Ready"),
        condition_column("Drifted"),
        PrinterColumn("Verdict", ".status.verdict", description="Verdict of the last window."),
        PrinterColumn("Samples", ".status.sampleCount", "integer", "Live rows in the last window."),
        PrinterColumn("Last-Check", ".status.lastCheckTime", "date", "End of the last window."),
        AGE_COLUMN,
        condition_column("Drifted", "reason", name="Reason", priority=1),
        PrinterColumn(
            "Last-Retrain", ".status.lastRetrain.trainingRun", description="Last retrain started.", priority=1
        ),
    ),
)
