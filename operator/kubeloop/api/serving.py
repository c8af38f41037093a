"""How a ModelVersion is served and rolled out: the canary plan, its steps and the analysis of each step.

A TrainingRun carries the plan in `spec.promotion` so that the version it creates uses it; the ModelVersion
carries it in `spec.serving`.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Literal

from pydantic import Field, model_validator

from kubeloop.api.cel import cel
from kubeloop.api.common import ApiModel, Duration, ResourceRequirements

TrafficRouting = Literal["Replicas", "GatewayAPI"]


class AnalysisSpec(ApiModel):
    """What a canary step must show, measured on the canary pods against the stable pods, before it passes.

    Missing data is inconclusive: the step waits up to `inconclusiveTimeout`, then fails. It never passes
    silently.
    """

    max_error_rate: float = Field(
        default=0.01,
        ge=0.0,
        le=1.0,
        description="Highest share of canary requests that may fail (HTTP 5xx) during the step, 0 to 1.",
    )
    max_p99_latency_milliseconds: float = Field(
        default=500.0,
        gt=0.0,
        le=600_000.0,
        description="Highest 99th-percentile request latency of the canary, in milliseconds.",
    )
    max_prediction_shift: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description=(
            "Highest Jensen-Shannon distance (0 to 1) between the canary's and the stable version's "
            "prediction distributions; catches a model that answers but answers differently."
        ),
    )
    min_online_accuracy: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description=(
            "Lowest online accuracy (0 to 1) of the canary, judged only once feedback labels arrive for at "
            "least `minRequests` of its predictions. Unset: not judged."
        ),
    )
    min_requests: int = Field(
        default=50,
        ge=0,
        le=10_000_000,
        description="Requests the canary must serve in the step before any verdict; fewer is inconclusive.",
    )
    inconclusive_timeout: Duration = Field(
        default=timedelta(minutes=10),
        description=(
            "How long past its interval a step may stay inconclusive (too few requests or no metrics) "
            "before it fails and the version is rolled back, e.g. 10m."
        ),
    )


class CanaryStep(ApiModel):
    """One step of the canary: a share of traffic held for an interval, then analysed."""

    weight: int = Field(
        ge=1, le=100, description="Percent of traffic sent to the canary during this step, 1 to 100."
    )
    interval: Duration = Field(
        default=timedelta(minutes=1),
        description="How long the step runs before its analysis decides, e.g. 30s, 5m.",
    )
    manual_approval: bool = Field(
        default=False,
        description=(
            "Pause before this step until a human approves it: set the ModelVersion's `spec.approvedStep` "
            "to at least this step's index (0-based), or annotate it `kubeloop.dev/approved-step`."
        ),
    )


def _default_steps() -> list[CanaryStep]:
    return [CanaryStep(weight=10), CanaryStep(weight=50), CanaryStep(weight=100)]


# `has()` guards: the API server checks the rules against the schema's own `{}` default before filling it.
@cel(
    "!has(self.steps) || (self.steps.map(s, s.weight).isSorted() && "
    "self.steps.all(s, self.steps.map(x, x.weight).indexOf(s.weight) == "
    "self.steps.map(x, x.weight).lastIndexOf(s.weight)))",
    "steps must have strictly increasing weights",
    field_path=".steps",
    reason="FieldValueInvalid",
)
@cel(
    "!has(self.steps) || self.steps[size(self.steps) - 1].weight == 100",
    "the last step must have weight 100",
    field_path=".steps",
    reason="FieldValueInvalid",
)
class CanaryPlan(ApiModel):
    """The canary rollout plan: weights that rise step by step to 100, each followed by an analysis."""

    steps: list[CanaryStep] = Field(
        default_factory=_default_steps,
        min_length=1,
        max_length=10,
        description=(
            "Steps with strictly increasing weights, the last one 100; for example 10, 50, 100. "
            "The rollout is promoted when the last step passes."
        ),
    )
    analysis: AnalysisSpec = Field(
        default_factory=AnalysisSpec, description="The analysis applied at the end of every step."
    )

    @model_validator(mode="after")
    def _steps_rise_to_100(self) -> CanaryPlan:
        weights = [s.weight for s in self.steps]
        if any(b <= a for a, b in itertools.pairwise(weights)):
            raise ValueError(f"steps must have strictly increasing weights, got {weights}")
        if weights[-1] != 100:
            raise ValueError(f"the last step must have weight 100, got {weights[-1]}")
        return self


class ServingSpec(ApiModel):
    """How the version is served: image, replicas, resources, routing and the canary plan."""

    image: str | None = Field(
        default=None,
        max_length=512,
        description="Image running the `serve` entrypoint. Unset: the training image, else the default.",
    )
    replicas: int = Field(
        default=2,
        ge=1,
        le=100,
        description="Replicas of the version once fully promoted; canary weights are mapped onto these.",
    )
    resources: ResourceRequirements | None = Field(
        default=None, description="Resources of each server container. Unset: the operator's defaults."
    )
    traffic_routing: TrafficRouting = Field(
        default="Replicas",
        description=(
            "How traffic is split during a canary. Replicas: by replica counts behind one Service (works "
            "on any cluster, weights are rounded to whole replicas). GatewayAPI: by HTTPRoute weights, "
            "when the Gateway API is installed."
        ),
    )
    canary: CanaryPlan = Field(default_factory=CanaryPlan, description="The canary rollout plan.")
