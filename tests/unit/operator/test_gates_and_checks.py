"""The model gate (thresholds, then champion) and the spec checks the schema cannot make."""

from __future__ import annotations

import pytest
from kubeloop.api import TrainingRunSpec, ValidationSpec
from kubeloop.contract import TrainerFailed, TrainerSucceeded, Violation
from kubeloop.services.gates import data_gate_results, model_gate
from kubeloop.services.spec_checks import describe_validation_error, parse_quantity, spec_problems
from pydantic import ValidationError


def summary(metrics: dict, champion: dict | None = None, error: str | None = None) -> TrainerSucceeded:
    return TrainerSucceeded(
        artifact_uri="s3://a/b",
        digest="sha256:" + "0" * 64,
        task="classification",
        metrics=metrics,
        champion_metrics=champion,
        champion_error=error,
        data_hash="sha256:" + "1" * 64,
        data_rows=150,
        train_rows=112,
        test_rows=38,
    )


def validation(**kwargs) -> ValidationSpec:
    return ValidationSpec.model_validate(kwargs)


def test_thresholds_pass_and_fail_with_both_numbers():
    gate = validation(thresholds=[{"metric": "accuracy", "min": 0.9}, {"metric": "log_loss", "max": 0.3}])
    passed = model_gate(gate, summary({"accuracy": 0.95, "log_loss": 0.2}), None)
    assert passed.passed and [r.passed for r in passed.results] == [True, True]
    failed = model_gate(gate, summary({"accuracy": 0.8512, "log_loss": 0.2}), None)
    assert not failed.passed and failed.reason == "ThresholdNotMet"
    assert "0.8512" in failed.message and "0.9" in failed.message
    assert failed.results[0].value == 0.8512 and failed.results[0].bound == 0.9
    above = model_gate(gate, summary({"accuracy": 0.95, "log_loss": 0.71}), None)
    assert "log_loss 0.71 is above the maximum 0.3" in above.message


def test_a_metric_the_trainer_did_not_report_fails_the_gate():
    decision = model_gate(
        validation(thresholds=[{"metric": "rmse", "max": 1}]), summary({"accuracy": 1.0}), None
    )
    assert (
        not decision.passed and "rmse was not reported" in decision.message and "accuracy" in decision.message
    )


def test_champion_must_be_beaten_by_the_margin():
    gate = validation(champion={"metric": "accuracy", "minImprovement": 0.02})
    beaten = model_gate(gate, summary({"accuracy": 0.95}, {"accuracy": 0.92}), "iris-v3")
    assert beaten.passed and "beats champion iris-v3" in beaten.message
    close = model_gate(gate, summary({"accuracy": 0.93}, {"accuracy": 0.92}), "iris-v3")
    assert not close.passed and close.reason == "ChampionNotBeaten"
    assert "0.93" in close.message and "0.92" in close.message and "iris-v3" in close.message
    (result,) = close.results
    assert (result.gate, result.value, result.bound) == ("Champion", 0.93, 0.92)


def test_lower_is_better_metrics_compare_the_other_way():
    gate = validation(champion={"metric": "rmse", "higherIsBetter": False})
    assert model_gate(gate, summary({"rmse": 40.0}, {"rmse": 45.0}), "d-v1").passed
    assert not model_gate(gate, summary({"rmse": 50.0}, {"rmse": 45.0}), "d-v1").passed


def test_a_negative_margin_tolerates_a_small_regression():
    gate = validation(champion={"metric": "accuracy", "minImprovement": -0.05})
    assert model_gate(gate, summary({"accuracy": 0.90}, {"accuracy": 0.93}), "v").passed


def test_no_champion_yet_passes_but_an_unevaluable_one_fails():
    gate = validation(champion={"metric": "accuracy"})
    first = model_gate(gate, summary({"accuracy": 0.5}), None)
    assert first.passed and "first champion" in first.message
    broken = model_gate(
        gate, summary({"accuracy": 0.99}, error="champion artifact unusable: gone"), "iris-v2"
    )
    assert (
        not broken.passed and "iris-v2 could not be evaluated" in broken.message and "gone" in broken.message
    )
    off = model_gate(
        validation(champion={"metric": "accuracy", "enabled": False}), summary({"accuracy": 0.1}), "x"
    )
    assert off.passed and off.results == []


def test_thresholds_are_checked_before_the_champion():
    gate = validation(thresholds=[{"metric": "accuracy", "min": 0.99}], champion={"metric": "accuracy"})
    decision = model_gate(gate, summary({"accuracy": 0.95}, {"accuracy": 0.5}), "v1")
    assert decision.reason == "ThresholdNotMet" and all(r.gate == "Threshold" for r in decision.results)


def test_data_gate_results_carry_the_violations():
    failed = TrainerFailed(
        reason="DataValidationFailed",
        message="2 violations",
        violations=[
            Violation(check="min_rows", message="150 rows, need 1000", value=150, bound=1000),
            Violation(check="range", column="x", message="x above 5", value=6.9, bound=5),
        ],
    )
    results = data_gate_results(failed)
    assert [(r.metric, r.value, r.bound, r.passed) for r in results] == [
        ("min_rows", 150, 1000, False),
        ("range:x", 6.9, 5, False),
    ]
    (ok,) = data_gate_results(summary({"accuracy": 1}))
    assert ok.passed and ok.value == 150


BASE = {
    "model": "iris",
    "data": {"uri": "s3://d/iris.csv", "target": "y"},
    "training": {"estimator": {"classPath": "sklearn.tree.DecisionTreeClassifier"}},
}


def spec(**changes) -> TrainingRunSpec:
    doc = {**BASE}
    for key, value in changes.items():
        doc[key] = {**doc.get(key, {}), **value}
    return TrainingRunSpec.model_validate(doc)


def test_a_good_spec_has_no_problems():
    assert spec_problems(spec()) == []
    assert spec_problems(spec(validation={"champion": {"metric": "rmse", "higherIsBetter": False}})) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (
            {"validation": {"thresholds": [{"metric": "acuracy", "min": 0.9}]}},
            "spec.validation.thresholds[0].metric",
        ),
        ({"validation": {"champion": {"metric": "f2"}}}, "spec.validation.champion.metric"),
        ({"validation": {"champion": {"metric": "rmse"}}}, "spec.validation.champion.higherIsBetter"),
        (
            {"validation": {"champion": {"metric": "accuracy", "higherIsBetter": False}}},
            "spec.validation.champion.higherIsBetter",
        ),
        (
            {"training": {**BASE["training"], "estimator": {"classPath": "a.B", "params": {"max depth": 3}}}},
            "spec.training.estimator.params",
        ),
        (
            {
                "training": {
                    **BASE["training"],
                    "resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}},
                }
            },
            "spec.training.resources.requests.memory",
        ),
        ({"data": {"format": "parquet"}}, "spec.data.format"),
    ],
)
def test_problems_name_the_field(changes, field):
    problems = spec_problems(spec(**changes))
    assert len(problems) == 1 and problems[0].startswith(field), problems


def test_quantities():
    assert parse_quantity("500m") == 0.5 and parse_quantity("2") == 2.0
    assert parse_quantity("1Gi") == 2**30 and parse_quantity("1G") == 1e9
    assert parse_quantity("lots") is None


def test_validation_errors_are_described_with_wire_names():
    with pytest.raises(ValidationError) as error:
        TrainingRunSpec.model_validate({**BASE, "training": {"estimator": {"classPath": "no dots"}}})
    text = describe_validation_error(error.value)
    assert text.startswith("spec.training.estimator.classPath:")
