import pytest
from kubeloop.contract import (
    MANIFEST_FILE,
    TrainerTask,
    artifact_file_uri,
    higher_is_better,
    improvement,
    join_uri,
    run_artifact_uri,
)
from pydantic import ValidationError


def test_join_uri_has_single_slashes():
    assert join_uri("s3://bucket/", "/ns/", "model", "") == "s3://bucket/ns/model"
    assert join_uri("file:///tmp/a", "b") == "file:///tmp/a/b"


def test_run_artifact_uri_is_deterministic():
    assert run_artifact_uri("s3://kubeloop-artifacts", "team", "iris", "iris-run-7") == (
        "s3://kubeloop-artifacts/team/iris/iris-run-7"
    )


def test_artifact_file_uri_knows_only_layout_files():
    assert artifact_file_uri("s3://b/x", MANIFEST_FILE) == "s3://b/x/manifest.json"
    with pytest.raises(ValueError, match="not a file of the artifact layout"):
        artifact_file_uri("s3://b/x", "evil.pkl")


def test_metric_direction():
    assert higher_is_better("accuracy") and higher_is_better("r2")
    assert not higher_is_better("rmse") and not higher_is_better("log_loss")
    assert improvement("accuracy", 0.9, 0.8) == pytest.approx(0.1)
    assert improvement("rmse", 40.0, 50.0) == pytest.approx(10.0)
    assert improvement("mae", 5.0, 4.0) == pytest.approx(-1.0)


TASK = {
    "model": "iris",
    "trainingRun": "iris-1",
    "namespace": "ml",
    "data": {
        "uri": "s3://data/iris.csv",
        "target": "species",
        "validation": {"expectedColumns": {"sepal_length": "float"}, "minRows": 10},
    },
    "estimator": {"classPath": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 5}},
    "artifactUri": "s3://artifacts/ml/iris/iris-1",
    "champion": {"artifactUri": "s3://artifacts/ml/iris/iris-0", "version": "3"},
}


def test_task_document_parses_camel_case_and_fills_defaults():
    task = TrainerTask.model_validate(TASK)
    assert task.data.validation is not None and task.data.validation.min_rows == 10
    assert task.estimator.class_path == "sklearn.ensemble.RandomForestClassifier"
    assert task.test_size == 0.25 and task.seed == 0
    assert task.profile.n_bins == 10
    assert task.champion is not None and task.champion.version == "3"
    again = TrainerTask.model_validate_json(task.model_dump_json())
    assert again == task
    assert '"artifactUri"' in task.model_dump_json()


def test_task_document_refuses_bad_values():
    with pytest.raises(ValidationError, match=r"test_size|testSize"):
        TrainerTask.model_validate({**TASK, "testSize": 1.5})
    with pytest.raises(ValidationError):
        TrainerTask.model_validate({**TASK, "data": {**TASK["data"], "uri": "http://x/y.csv"}})


def test_serving_paths():
    from kubeloop.contract import feedback_path, infer_path, model_path, monitoring_path

    assert model_path("iris") == "/v2/models/iris"
    assert infer_path("iris", "3") == "/v2/models/iris/versions/3/infer"
    assert monitoring_path("iris") == "/v2/models/iris/monitoring"
    assert feedback_path("iris", "3") == "/v2/models/iris/versions/3/feedback"
