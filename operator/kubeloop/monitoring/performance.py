"""Online performance of one window, from the feedback labels joined to its predictions."""

from __future__ import annotations

import math

from kubeloop.api import PerformanceFloor, PerformanceObservation
from kubeloop.monitoring.window import FeedbackTotals

__all__ = ["observe_performance"]


def _value(metric: str, fb: FeedbackTotals) -> float:
    if metric == "accuracy":
        return fb.correct / fb.joined
    if metric == "mae":
        return fb.abs_error_sum / fb.joined
    return math.sqrt(max(fb.squared_error_sum, 0.0) / fb.joined)


def observe_performance(
    floor: PerformanceFloor | None, feedback: FeedbackTotals
) -> PerformanceObservation | None:
    """The window's accuracy (or mae, rmse) and whether it breached the floor; None when not watched.

    With fewer labels than ``minLabels`` there is no value and no breach: too few labels say nothing. Nor is
    there one when the metric does not fit the model (accuracy of a regressor, mae of a classifier).
    """
    if floor is None:
        return None
    labels = max(feedback.joined, 0)
    wanted = "classification" if floor.metric == "accuracy" else "regression"
    if labels < floor.min_labels or feedback.task not in (None, wanted):
        return PerformanceObservation(metric=floor.metric, labels=labels)
    value = _value(floor.metric, feedback)
    if floor.metric == "accuracy":
        breached = floor.min is not None and value < floor.min
    else:
        breached = floor.max is not None and value > floor.max
    return PerformanceObservation(metric=floor.metric, value=value, labels=labels, breached=breached)
