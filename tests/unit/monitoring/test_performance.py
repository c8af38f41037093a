"""Online accuracy and error of a window from feedback totals, against the floor."""

from __future__ import annotations

import math

import pytest
from kubeloop.api import PerformanceFloor
from kubeloop.monitoring.performance import observe_performance
from kubeloop.monitoring.window import FeedbackTotals


def test_accuracy_below_the_floor_is_a_breach():
    floor = PerformanceFloor(metric="accuracy", min=0.85, min_labels=50)
    obs = observe_performance(floor, FeedbackTotals(task="classification", joined=100, correct=80))
    assert obs is not None and obs.value == pytest.approx(0.8) and obs.labels == 100 and obs.breached
    ok = observe_performance(floor, FeedbackTotals(task="classification", joined=100, correct=90))
    assert ok is not None and not ok.breached


def test_too_few_labels_say_nothing():
    floor = PerformanceFloor(metric="accuracy", min=0.85, min_labels=50)
    obs = observe_performance(floor, FeedbackTotals(task="classification", joined=49, correct=0))
    assert obs is not None and obs.value is None and obs.labels == 49 and not obs.breached


def test_regression_errors_are_ceilings():
    fb = FeedbackTotals(task="regression", joined=4, abs_error_sum=8.0, squared_error_sum=32.0)
    mae = observe_performance(PerformanceFloor(metric="mae", max=1.5, min_labels=1), fb)
    rmse = observe_performance(PerformanceFloor(metric="rmse", max=3.0, min_labels=1), fb)
    assert mae is not None and mae.value == 2.0 and mae.breached
    assert rmse is not None and rmse.value == pytest.approx(math.sqrt(8.0)) and not rmse.breached


def test_a_metric_that_does_not_fit_the_model_is_not_judged():
    obs = observe_performance(
        PerformanceFloor(metric="accuracy", min=0.9, min_labels=1),
        FeedbackTotals(task="regression", joined=10),
    )
    assert obs is not None and obs.value is None and not obs.breached


def test_not_watched_without_a_floor():
    assert observe_performance(None, FeedbackTotals(joined=100)) is None
