"""The pydantic models: wire names, defaults, cross-field rules and the samples."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from kubeloop.api import (
    CanaryPlan,
    DataSpec,
    DriftMonitor,
    DriftMonitorSpec,
    EstimatorSpec,
    MetricThreshold,
    ModelVersion,
    PerformanceFloor,
    RetrainPolicy,
    TrainingRun,
    TrainingRunSpec,
    TrainingSpec,
    ValueRange,
    format_duration,
    parse_duration,
)
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = {
    "trainingrun.yaml": TrainingRun,
    "modelversion.yaml": ModelVersion,
    "driftmonitor.yaml": DriftMonitor,
}


def minimal_run(**over) -> dict:
    body = {
        "model": "iris",
        "data": {"uri": "file:///data/iris.csv", "target": "species"},
        "training": {"estimator": {"classPath": "sklearn.linear_model.LogisticRegression"}},
    }
    body.update(over)
    return body


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_sample_parses_into_its_model(name):
    body = yaml.safe_load((ROOT / "samples" / name).read_text())
    obj = SAMPLES[name].model_validate(body)
    assert obj.kind == body["kind"]
    assert obj.spec.model == "iris"


def test_one_sample_per_kind():
    assert sorted(p.name for p in (ROOT / "samples").glob("*.yaml")) == sorted(SAMPLES)


def test_wire_names_are_camel_case_and_python_names_snake_case():
    spec = TrainingSpec(
        estimator=EstimatorSpec(class_path="sklearn.tree.DecisionTreeRegressor"), test_size=0.3
    )
    wire = spec.model_dump()
    assert wire["estimator"]["classPath"] == "sklearn.tree.DecisionTreeRegressor"
    assert wire["testSize"] == 0.3
    assert wire["deadlineSeconds"] == 3600
    assert TrainingSpec.model_validate(wire) == spec


def test_defaults_of_a_minimal_training_run():
    spec = TrainingRunSpec.model_validate(minimal_run())
    assert spec.data.format == "csv"
    assert spec.training.test_size == 0.25
    assert spec.training.seed == 0
    assert spec.promotion.policy == "Manual"
    assert [s.weight for s in spec.promotion.canary.steps] == [10, 50, 100]
    assert spec.promotion.canary.analysis.min_requests == 50
    assert spec.validation.thresholds == []
    assert spec.validation.champion is None


def test_unknown_fields_are_refused_so_typos_surface():
    with pytest.raises(ValidationError, match="tragetColumn"):
        DataSpec.model_validate({"uri": "s3://b/k.csv", "target": "y", "tragetColumn": "y"})


@pytest.mark.parametrize("uri", ["file:///d/x.csv", "s3://bucket/key.parquet", "pvc://claim/path/x.csv"])
def test_data_uri_schemes_accepted(uri):
    assert DataSpec(uri=uri, target="y").uri == uri


@pytest.mark.parametrize("uri", ["http://x/y.csv", "/abs/path.csv", "s3://", "file:///with space"])
def test_data_uri_other_schemes_refused(uri):
    with pytest.raises(ValidationError):
        DataSpec(uri=uri, target="y")


def test_estimator_params_are_arbitrary_keyword_arguments():
    est = EstimatorSpec.model_validate({"classPath": "a.B", "params": {"n": 3, "nested": {"x": [1, 2]}}})
    assert est.params == {"n": 3, "nested": {"x": [1, 2]}}


@pytest.mark.parametrize(
    "weights, error",
    [
        ([50, 10, 100], "strictly increasing"),
        ([10, 10, 100], "strictly increasing"),
        ([10, 50], "weight 100"),
    ],
)
def test_canary_steps_must_rise_strictly_to_100(weights, error):
    with pytest.raises(ValidationError, match=error):
        CanaryPlan.model_validate({"steps": [{"weight": w} for w in weights]})


def test_canary_step_interval_parses_and_serialises_as_go_duration():
    plan = CanaryPlan.model_validate({"steps": [{"weight": 100, "interval": "1h30m"}]})
    assert plan.steps[0].interval == timedelta(minutes=90)
    assert plan.model_dump()["steps"][0]["interval"] == "1h30m"


@pytest.mark.parametrize(
    "text, seconds",
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("500ms", 0.5), ("1.5h", 5400), ("2h0m5s", 7205)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["", "5", "5 m", "1d", "-5s", "m5"])
def test_parse_duration_refuses_non_durations(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize(
    "seconds, text", [(0, "0s"), (0.25, "250ms"), (59, "59s"), (3600, "1h"), (3725, "1h2m5s")]
)
def test_format_duration_round_trips(seconds, text):
    assert format_duration(timedelta(seconds=seconds)) == text
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_quantities_accept_integers_and_keep_strings():
    spec = TrainingSpec.model_validate(
        {"estimator": {"classPath": "a.B"}, "resources": {"requests": {"cpu": 2, "memory": "1Gi"}}}
    )
    assert spec.resources.requests == {"cpu": "2", "memory": "1Gi"}
    with pytest.raises(ValidationError):
        TrainingSpec.model_validate(
            {"estimator": {"classPath": "a.B"}, "resources": {"limits": {"cpu": "lots"}}}
        )


def test_thresholds_need_a_bound_and_ordered_bounds():
    assert MetricThreshold(metric="accuracy", min=0.8).max is None
    with pytest.raises(ValidationError, match="needs min, max or both"):
        MetricThreshold(metric="accuracy")
    with pytest.raises(ValidationError, match="min"):
        MetricThreshold(metric="accuracy", min=0.9, max=0.8)
    with pytest.raises(ValidationError, match="greater than max"):
        ValueRange(min=2, max=1)


@pytest.mark.parametrize("test_size", [0.0, 1.0, -0.1, 1.5])
def test_test_size_strictly_between_zero_and_one(test_size):
    with pytest.raises(ValidationError):
        TrainingSpec(estimator=EstimatorSpec(class_path="a.B"), test_size=test_size)


@pytest.mark.parametrize("name", ["Iris", "iris_v2", "-iris", "x" * 53, ""])
def test_model_names_are_short_dns_labels(name):
    with pytest.raises(ValidationError):
        TrainingRunSpec.model_validate(minimal_run(model=name))


def test_retrain_policy_takes_exactly_one_of_template_or_clone():
    assert RetrainPolicy.model_validate({"clone": {}}).clone is not None
    with pytest.raises(ValidationError, match="exactly one"):
        RetrainPolicy.model_validate({})
    with pytest.raises(ValidationError, match="exactly one"):
        RetrainPolicy.model_validate({"clone": {}, "template": {"spec": minimal_run()}})


def test_retrain_template_must_train_the_monitored_model():
    ok = {"model": "iris", "retrain": {"template": {"spec": minimal_run()}}}
    assert DriftMonitorSpec.model_validate(ok).retrain.template.spec.model == "iris"
    with pytest.raises(ValidationError, match="must equal model"):
        DriftMonitorSpec.model_validate({**ok, "model": "wine"})


def test_drift_monitor_defaults_are_sample_size_aware():
    spec = DriftMonitorSpec(model="iris")
    assert spec.method == "Auto"
    assert spec.thresholds.false_alarm_rate == 0.01
    assert spec.thresholds.psi is None  # no fixed cut: the sample-size-aware rule decides
    assert spec.consecutive_windows == 3
    assert spec.interval == timedelta(minutes=5)


def test_performance_floor_direction_follows_the_metric():
    assert PerformanceFloor(metric="accuracy", min=0.8).min == 0.8
    assert PerformanceFloor(metric="rmse", max=3.0).max == 3.0
    with pytest.raises(ValidationError, match="set min"):
        PerformanceFloor(metric="accuracy", max=0.9)
    with pytest.raises(ValidationError, match="set max"):
        PerformanceFloor(metric="mae", min=0.1)


def test_promotion_record_uses_from_and_to_on_the_wire():
    mv = yaml.safe_load((ROOT / "samples" / "modelversion.yaml").read_text())
    mv["status"] = {
        "stage": "Production",
        "history": [
            {
                "from": "Staging",
                "to": "Production",
                "by": "alice",
                "reason": "ManualEdit",
                "time": "2025-01-01T00:00:00Z",
            }
        ],
    }
    parsed = ModelVersion.model_validate(mv)
    assert parsed.status.history[0].from_stage == "Staging"
    assert parsed.status.model_dump(mode="json")["history"][0]["from"] == "Staging"
