"""A step's traffic: each pod's counters now minus its counters when the step began, summed per version.

Counter resets are told apart by the server's start time: a pod whose server restarted since the baseline
counts everything since its restart (all of it is inside the step). A pod with no baseline counts fully
only if its server started after the baseline was taken; otherwise part of its traffic predates the step
and nobody knows how much, so it is left out (and reported).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, Field

from kubeloop.rollout.metrics import ServerCounters

# Server start times are floats from another clock; a second of slack keeps a pod started right at the
# baseline on the counted side.
START_SLACK_SECONDS = 1.0


class Baseline(BaseModel):
    """Every scraped pod's counters when a step began, plus the stable's predictions so far.

    The operator stores it on the canary Deployment (annotation), so a restarted operator resumes the
    step's analysis on the same window.
    """

    step: int = Field(ge=0)
    taken_at: datetime
    pods: dict[str, ServerCounters] = Field(default_factory=dict)
    # Rows the stable predicted per class/bin over the steps already passed: the reference of the
    # prediction-shift check when the stable no longer serves (the 100% step).
    stable_predictions: dict[str, float] = Field(default_factory=dict)
    stable_prediction_kind: str | None = None
    stable_through_step: int | None = None  # the last step whose stable predictions are in the total


def delta(now: ServerCounters, before: ServerCounters) -> ServerCounters | None:
    """now - before for the same server process, or None if it restarted (a start time or counter moved back)."""
    if now.started != before.started or now.requests < before.requests:
        return None
    if now.latency_bounds != before.latency_bounds or now.prediction_labels != before.prediction_labels:
        return None

    def minus(a: list[float], b: list[float]) -> list[float]:
        return [max(x - y, 0.0) for x, y in zip(a, b, strict=True)]

    correct = None
    if now.feedback_correct is not None:
        correct = max(now.feedback_correct - (before.feedback_correct or 0.0), 0.0)
    return now.model_copy(
        update={
            "requests": now.requests - before.requests,
            "server_errors": max(now.server_errors - before.server_errors, 0.0),
            "client_errors": max(now.client_errors - before.client_errors, 0.0),
            "latency": minus(now.latency, before.latency),
            "predictions": minus(now.predictions, before.predictions),
            "feedback_joined": max(now.feedback_joined - before.feedback_joined, 0.0),
            "feedback_correct": correct,
        }
    )


@dataclass
class Traffic:
    """The summed window of one version's pods."""

    pods: int = 0
    requests: float = 0.0
    server_errors: float = 0.0
    client_errors: float = 0.0
    latency_bounds: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    prediction_kind: str | None = None
    predictions: dict[str, float] = field(default_factory=dict)  # by class name or bin upper bound
    feedback_joined: float = 0.0
    feedback_correct: float | None = None
    skipped: list[str] = field(default_factory=list)  # pods left out, and why

    def add(self, window: ServerCounters) -> None:
        self.pods += 1
        self.requests += window.requests
        self.server_errors += window.server_errors
        self.client_errors += window.client_errors
        if not self.latency_bounds:
            self.latency_bounds, self.latency = list(window.latency_bounds), list(window.latency)
        elif window.latency_bounds == self.latency_bounds:
            self.latency = [a + b for a, b in zip(self.latency, window.latency, strict=True)]
        if self.prediction_kind is None:
            self.prediction_kind = window.prediction_kind
        if window.prediction_kind == self.prediction_kind:
            for label, n in zip(window.prediction_labels, window.predictions, strict=True):
                self.predictions[label] = self.predictions.get(label, 0.0) + n
        self.feedback_joined += window.feedback_joined
        if window.feedback_correct is not None:
            self.feedback_correct = (self.feedback_correct or 0.0) + window.feedback_correct


def traffic(baseline: Baseline, current: Mapping[str, ServerCounters], pods: Iterable[str]) -> Traffic:
    """The step's window summed over `pods` (names of one version's pods that answered the scrape)."""
    out = Traffic()
    taken = baseline.taken_at.timestamp()
    for pod in sorted(pods):
        now = current[pod]
        before = baseline.pods.get(pod)
        window = delta(now, before) if before is not None else None
        if window is None:
            if before is None and now.started < taken - START_SLACK_SECONDS:
                out.skipped.append(f"{pod} (no baseline)")
                continue
            window = now  # restarted, or started within the step: all of its traffic is the step's
        out.add(window)
    return out


def accumulate_stable(baseline: Baseline, stable: Traffic) -> tuple[dict[str, float], str | None]:
    """The stable's prediction counts over the steps so far, including this one (carried to the next baseline)."""
    kind = baseline.stable_prediction_kind or stable.prediction_kind
    total = dict(baseline.stable_predictions)
    if stable.prediction_kind is not None and stable.prediction_kind == kind:
        for label, n in stable.predictions.items():
            total[label] = total.get(label, 0.0) + n
    return total, kind
