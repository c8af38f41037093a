"""The operator exports exactly the metric names the chart's alerts and dashboard use."""

from __future__ import annotations

import pytest
from kubeloop import observability
from kubeloop.api import metrics as names
from prometheus_client import REGISTRY, generate_latest


def test_every_metric_of_the_api_is_exported_under_its_name():
    observability.RECONCILES.labels("TrainingRun", "success").inc(0)
    observability.PHASE_DURATION.labels("TrainingRun", "EndToEnd").observe(1.0)
    observability.TRAINING_RUNS.labels("ml", "iris", "Succeeded").inc(0)
    observability.PROMOTIONS.labels("ml", "iris").inc(0)
    observability.ROLLBACKS.labels("ml", "iris").inc(0)
    observability.DRIFT_SCORE.labels("ml", "iris", "x", "KS").set(0)
    observability.DRIFT_DETECTED.labels("ml", "iris").set(0)
    observability.RETRAINS.labels("ml", "iris", "Drift").inc(0)
    text = generate_latest(REGISTRY).decode()
    for name in names.ALL:
        sample = (
            name
            if name.endswith("_total") or name in (names.DRIFT_SCORE, names.DRIFT_DETECTED)
            else name + "_count"
        )
        assert f"\n{sample}{{" in text, name


def test_reconcile_counts_success_error_and_waits():
    def count(outcome: str) -> float:
        return (
            REGISTRY.get_sample_value(f"{names.RECONCILES_TOTAL}", {"kind": "Unit", "outcome": outcome})
            or 0.0
        )

    class Wait(Exception):
        outcome = "success"

    with observability.reconcile("Unit"):
        pass
    with pytest.raises(RuntimeError), observability.reconcile("Unit"):
        raise RuntimeError("boom")
    with pytest.raises(Wait), observability.reconcile("Unit"):
        raise Wait()
    assert (count("success"), count("error")) == (2.0, 1.0)
