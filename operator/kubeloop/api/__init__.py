"""The kubeloop API: pydantic models of TrainingRun, ModelVersion and DriftMonitor (group kubeloop.dev).

The models are the single source of the CRDs (`python -m kubeloop.api.crdgen`), and the shapes the operator
and the trainer parse. This package imports neither kopf nor the Kubernetes client.
"""

from kubeloop.api.common import (
    API_VERSION,
    GROUP,
    VERSION,
    ApiModel,
    Duration,
    ResourceRequirements,
    StatusModel,
    format_duration,
    parse_duration,
)
from kubeloop.api.condition import Condition, find_condition, set_condition
from kubeloop.api.serving import AnalysisSpec, CanaryPlan, CanaryStep, ServingSpec
from kubeloop.api.trainingrun import (
    ChampionGate,
    ColumnType,
    DataSpec,
    DataValidation,
    EstimatorSpec,
    GateResult,
    MetricThreshold,
    PromotionSpec,
    TrainingRun,
    TrainingRunSpec,
    TrainingRunStatus,
    TrainingSpec,
    ValidationSpec,
    ValueRange,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "AnalysisSpec",
    "ApiModel",
    "CanaryPlan",
    "CanaryStep",
    "ChampionGate",
    "ColumnType",
    "Condition",
    "DataSpec",
    "DataValidation",
    "Duration",
    "EstimatorSpec",
    "GateResult",
    "MetricThreshold",
    "PromotionSpec",
    "ResourceRequirements",
    "ServingSpec",
    "StatusModel",
    "TrainingRun",
    "TrainingRunSpec",
    "TrainingRunStatus",
    "TrainingSpec",
    "ValidationSpec",
    "ValueRange",
    "find_condition",
    "format_duration",
    "parse_duration",
    "set_condition",
]
