"""The demo's custom resources, built from the `kubeloop.api` models (so the API server sees exactly what a
user's YAML would say). Pure: a config and URIs in, manifest dicts out."""

from __future__ import annotations

from typing import Any

from kubeloop.api import (
    AnalysisSpec,
    CanaryPlan,
    CanaryStep,
    ChampionGate,
    CloneSource,
    DataSpec,
    DriftMonitor,
    DriftMonitorSpec,
    DriftThresholds,
    EstimatorSpec,
    MetricThreshold,
    PerformanceFloor,
    PromotionSpec,
    RetrainPolicy,
    TrainingRun,
    TrainingRunSpec,
    TrainingSpec,
    ValidationSpec,
)

from kubeloop_demo.config import DemoConfig
from kubeloop_demo.data import TARGET, data_gate

DEMO_LABEL = "kubeloop.dev/demo"


def canary_plan(config: DemoConfig) -> CanaryPlan:
    return CanaryPlan(
        steps=[CanaryStep(weight=weight, interval=interval) for weight, interval in config.canary_steps],
        analysis=AnalysisSpec(
            max_error_rate=0.01,
            max_p99_latency_milliseconds=config.canary_max_p99_latency_ms,
            max_prediction_shift=config.canary_max_prediction_shift,
            min_online_accuracy=config.canary_min_online_accuracy,
            min_requests=config.canary_min_requests,
            inconclusive_timeout="60s",
        ),
    )


def training_run_spec(config: DemoConfig, data_uri: str) -> TrainingRunSpec:
    return TrainingRunSpec(
        model=config.model,
        data=DataSpec(uri=data_uri, format="csv", target=TARGET, validation=data_gate()),
        training=TrainingSpec(
            estimator=EstimatorSpec(
                class_path="sklearn.ensemble.RandomForestClassifier",
                params={"n_estimators": 50, "max_depth": 4},
            ),
            test_size=0.25,
            seed=0,
            deadline_seconds=300,
            retries=1,
        ),
        validation=ValidationSpec(
            thresholds=[MetricThreshold(metric="accuracy", min=0.85)],
            # A retrain must be at least as good as the production version on the retrain's own held-out split.
            champion=ChampionGate(metric="accuracy", min_improvement=0.0),
        ),
        promotion=PromotionSpec(policy="Auto", canary=canary_plan(config)),
    )


def _metadata(config: DemoConfig, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": config.namespace, "labels": {DEMO_LABEL: config.cluster}}


def training_run(config: DemoConfig, name: str, data_uri: str) -> dict[str, Any]:
    run = TrainingRun(metadata=_metadata(config, name), spec=training_run_spec(config, data_uri))
    return run.model_dump(mode="json", exclude_none=True)


def drift_monitor(config: DemoConfig, fresh_data_uri: str) -> dict[str, Any]:
    """Watch the production version every `monitor_interval`; after `consecutive_windows` drifted windows,
    retrain by cloning the production version's TrainingRun onto the newer data at `fresh_data_uri`.

    Online accuracy from the feedback labels is watched and reported, but the demo retrains on drift only
    (`onPerformance: false`): a breach would otherwise win the race and name a different trigger.
    """
    monitor = DriftMonitor(
        metadata=_metadata(config, config.monitor),
        spec=DriftMonitorSpec(
            model=config.model,
            interval=config.monitor_interval,
            min_samples=config.min_samples,
            method="Auto",
            thresholds=DriftThresholds(false_alarm_rate=config.false_alarm_rate, correction="Bonferroni"),
            consecutive_windows=config.consecutive_windows,
            performance_floor=PerformanceFloor(metric="accuracy", min=0.8, min_labels=50),
            retrain=RetrainPolicy(
                on_drift=True,
                on_performance=False,
                clone=CloneSource(data_uri=fresh_data_uri),
                cooldown="10m",
                max_per_day=3,
            ),
        ),
    )
    return monitor.model_dump(mode="json", exclude_none=True)
