"""The retraining TrainingRun: from the template or a clone, named deterministically, with its trigger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from kubeloop.api import DriftMonitor, TrainingRun, TrainingRunSpec, Trigger
from kubeloop.builders.retrain import (
    MONITOR_LABEL,
    TRIGGER_ANNOTATION,
    read_trigger,
    retrain_record,
    retrain_run,
    retrain_run_name,
)

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
TRIGGER = Trigger(
    reason="Drift", monitor="iris", window=12, scores={"petal_length": 85.5}, message="drift in 1 of 4"
)


def _monitor(retrain: dict) -> DriftMonitor:
    body = yaml.safe_load((SAMPLES / "driftmonitor.yaml").read_text())
    body["metadata"].update(namespace="ml", uid="1234")
    body["spec"]["retrain"] = retrain
    return DriftMonitor.model_validate(body)


def _source() -> TrainingRun:
    body = yaml.safe_load((SAMPLES / "trainingrun.yaml").read_text())
    body["metadata"].update(
        namespace="ml",
        labels={"team": "vision", "kubeloop.dev/trigger": "Manual"},
        annotations={"kubectl.kubernetes.io/last-applied-configuration": "{}"},
    )
    body["status"] = {"jobName": "iris-rf-1-train", "kopf": {"progress": {}}}
    return TrainingRun.model_validate(body)


def test_name_is_deterministic_short_and_valid():
    a = retrain_run_name("iris", "uid-1", 12, "Drift")
    assert a == retrain_run_name("iris", "uid-1", 12, "Drift")
    assert a.startswith("iris-retrain-w12-") and len(a) <= 52
    assert a != retrain_run_name("iris", "uid-2", 12, "Drift")  # a recreated monitor gets new names
    assert a != retrain_run_name("iris", "uid-1", 13, "Drift")
    long = retrain_run_name("a.very-long.monitor-name-" + "x" * 80, "u", 123456, "Schedule")
    assert len(long) <= 52 and long.replace("-", "").isalnum() and long[0].isalnum()


def test_clone_keeps_the_spec_with_the_new_data_uri():
    monitor = _monitor({"clone": {"dataUri": "s3://kubeloop/datasets/iris/latest.csv"}})
    name = retrain_run_name("iris", "1234", 12, "Drift")
    run = retrain_run(monitor, TRIGGER, name=name, source=_source())
    meta = run["metadata"]
    assert meta["name"] == name and meta["namespace"] == "ml"
    assert meta["labels"] == {
        "team": "vision",
        "app.kubernetes.io/managed-by": "kubeloop",
        "kubeloop.dev/model": "iris",
        "kubeloop.dev/drift-monitor": "iris",
        "kubeloop.dev/trigger": "Drift",
    }
    assert list(meta["annotations"]) == [TRIGGER_ANNOTATION]  # nothing copied from the source's
    assert "ownerReferences" not in meta and "status" not in run
    spec = TrainingRunSpec.model_validate(run["spec"])
    assert spec.data.uri == "s3://kubeloop/datasets/iris/latest.csv"
    assert spec.model_copy(update={"data": _source().spec.data}) == _source().spec
    assert run["spec"]["training"]["estimator"]["classPath"] == "sklearn.ensemble.RandomForestClassifier"


def test_clone_without_data_uri_keeps_the_original_data():
    run = retrain_run(_monitor({"clone": {}}), TRIGGER, name="n", source=_source())
    assert run["spec"]["data"]["uri"] == "s3://kubeloop/datasets/iris/train.csv"


def test_template_gives_its_spec_labels_and_annotations():
    template = {
        "labels": {"team": "ml"},
        "annotations": {"note": "retrain"},
        "spec": _source().spec.model_dump(mode="json"),
    }
    run = retrain_run(_monitor({"template": template}), TRIGGER, name="n")
    assert run["metadata"]["labels"]["team"] == "ml" and run["metadata"]["labels"][MONITOR_LABEL] == "iris"
    assert run["metadata"]["annotations"]["note"] == "retrain"
    assert TrainingRunSpec.model_validate(run["spec"]) == _source().spec


def test_the_trigger_round_trips_through_the_annotation():
    run = retrain_run(_monitor({"clone": {}}), TRIGGER, name="n", source=_source())
    raw = run["metadata"]["annotations"][TRIGGER_ANNOTATION]
    assert json.loads(raw)["scores"] == {"petal_length": 85.5}
    assert read_trigger(run["metadata"]["annotations"]) == TRIGGER
    assert read_trigger({TRIGGER_ANNOTATION: "{not json"}) is None
    assert read_trigger(None) is None
    run["metadata"]["creationTimestamp"] = "2025-03-01T12:00:00Z"
    record = retrain_record(run)
    assert (
        record is not None and record.training_run == "n" and record.window == 12 and record.reason == "Drift"
    )
    assert record.time.isoformat() == "2025-03-01T12:00:00+00:00"


def test_a_clone_needs_its_source_and_the_same_model():
    with pytest.raises(ValueError, match="clone"):
        retrain_run(_monitor({"clone": {}}), TRIGGER, name="n")
    other = _source().model_copy(update={"spec": _source().spec.model_copy(update={"model": "wine"})})
    with pytest.raises(ValueError, match="wine"):
        retrain_run(_monitor({"clone": {}}), TRIGGER, name="n", source=other)
