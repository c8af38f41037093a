"""run_training in-process on local files: the orchestration, its artifact and its numbers."""

import json

import numpy as np
import pandas as pd
import pytest
from kubeloop.contract import TrainerTask, parse_termination_message, render_termination_message
from kubeloop_trainer.artifact import ArtifactError, read_artifact
from kubeloop_trainer.errors import TrainerError
from kubeloop_trainer.evaluate import score
from kubeloop_trainer.features import feature_matrix
from kubeloop_trainer.train import run_training
from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

SKLEARN = ("sklearn.",)


@pytest.fixture(scope="module")
def iris_csv(tmp_path_factory):
    frame = load_iris(as_frame=True).frame
    frame["species"] = np.asarray(load_iris().target_names)[frame.pop("target")]
    frame["batch"] = np.where(np.arange(len(frame)) % 3 == 0, "a", "b")  # a categorical feature
    path = tmp_path_factory.mktemp("data") / "iris.csv"
    frame.to_csv(path, index=False)
    return path


def _task(data_path, out, **kw) -> TrainerTask:
    doc = {
        "model": "iris",
        "trainingRun": "iris-1",
        "namespace": "ml",
        "data": {"uri": f"file://{data_path}", "target": "species", "validation": {"minRows": 100}},
        "estimator": {"classPath": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 500}},
        "artifactUri": f"file://{out}",
        "seed": 3,
    }
    doc.update(kw)
    return TrainerTask.model_validate(doc)


def test_train_writes_a_verified_artifact_with_reproducible_metrics(iris_csv, tmp_path):
    summary = run_training(_task(iris_csv, tmp_path / "a1"), {})
    assert summary.task == "classification" and summary.data_rows == 150
    assert (summary.train_rows, summary.test_rows) == (112, 38)
    art = read_artifact(summary.artifact_uri, SKLEARN, expected_digest=summary.digest)
    assert art.signature.feature_names == ["sepal length (cm)", "sepal width (cm)", "petal length (cm)",
                                           "petal width (cm)", "batch"]  # fmt: skip
    assert art.signature.classes == ["setosa", "versicolor", "virginica"]
    assert art.manifest.data.sha256 == summary.data_hash
    assert art.manifest.lineage.training_run == "iris-1"
    # the recorded metrics are exactly what the stored model scores on the same seeded, stratified split
    frame = pd.read_csv(iris_csv)
    _, test = train_test_split(np.arange(150), test_size=0.25, random_state=3, stratify=frame["species"])
    X = feature_matrix(frame.iloc[np.sort(test)], art.signature.features)
    assert (
        score("classification", art.model, X, frame["species"].to_numpy()[np.sort(test)]) == summary.metrics
    )
    assert art.metrics.split.stratified and art.metrics.candidate == summary.metrics
    assert sum(art.metrics.predictions.counts) == 38
    assert set(art.profile.numeric) == {"sepal length (cm)", "sepal width (cm)", "petal length (cm)",
                                        "petal width (cm)"}  # fmt: skip
    assert art.profile.categorical["batch"].categories == ["b", "a"] and art.profile.n_rows == 112
    # the summary fits a termination message and survives the round trip
    assert parse_termination_message(render_termination_message(summary)) == summary


def test_same_task_same_numbers(iris_csv, tmp_path):
    a = run_training(_task(iris_csv, tmp_path / "x"), {})
    b = run_training(_task(iris_csv, tmp_path / "y", seed=4), {})
    c = run_training(_task(iris_csv, tmp_path / "z"), {})
    assert a.metrics == c.metrics and a.data_hash == b.data_hash == c.data_hash
    assert read_artifact(a.artifact_uri, SKLEARN).profile == read_artifact(c.artifact_uri, SKLEARN).profile
    assert b.metrics != a.metrics  # another seed draws another split


def test_champion_is_scored_on_the_same_split(iris_csv, tmp_path):
    first = run_training(_task(iris_csv, tmp_path / "champ"), {})
    second = run_training(
        _task(
            iris_csv,
            tmp_path / "cand",
            estimator={"classPath": "sklearn.tree.DecisionTreeClassifier", "params": {"max_depth": 1}},
            champion={"artifactUri": first.artifact_uri, "version": "1", "digest": first.digest},
        ),
        {},
    )
    # same data and seed: the champion's metrics on the candidate's split are its own recorded metrics
    assert second.champion_metrics == first.metrics
    assert second.champion_error is None
    assert second.metrics["accuracy"] < first.metrics["accuracy"]  # a depth-1 tree cannot separate 3 classes


def test_a_tampered_champion_is_reported_not_used(iris_csv, tmp_path):
    first = run_training(_task(iris_csv, tmp_path / "champ"), {})
    metrics_path = tmp_path / "champ" / "metrics.json"
    doc = json.loads(metrics_path.read_text())
    doc["candidate"]["accuracy"] = 1.0
    metrics_path.write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match=r"metrics\.json: hash"):
        read_artifact(first.artifact_uri, SKLEARN)
    second = run_training(
        _task(iris_csv, tmp_path / "cand", champion={"artifactUri": first.artifact_uri}), {}
    )
    assert second.champion_metrics is None
    assert "does not match its manifest" in second.champion_error


def test_wrong_digest_is_refused(iris_csv, tmp_path):
    first = run_training(_task(iris_csv, tmp_path / "a"), {})
    with pytest.raises(ArtifactError, match="expected sha256:0"):
        read_artifact(first.artifact_uri, SKLEARN, expected_digest="sha256:0")


def test_regressor_on_text_target_is_a_data_error(iris_csv, tmp_path):
    task = _task(iris_csv, tmp_path / "r", estimator={"classPath": "sklearn.linear_model.Ridge"})
    with pytest.raises(TrainerError) as err:
        run_training(task, {})
    assert err.value.reason == "DataValidationFailed" and "not numeric" in err.value.message
    assert err.value.data_hash and err.value.data_hash.startswith("sha256:")


def test_estimator_is_refused_before_reading_data(tmp_path):
    task = _task(tmp_path / "missing.csv", tmp_path / "o", estimator={"classPath": "subprocess.Popen"})
    with pytest.raises(TrainerError) as err:
        run_training(task, {})
    assert err.value.reason == "EstimatorRejected"


def test_missing_data_is_unavailable(tmp_path):
    with pytest.raises(TrainerError) as err:
        run_training(_task(tmp_path / "missing.csv", tmp_path / "o"), {})
    assert err.value.reason == "DataUnavailable" and "missing.csv" in err.value.message


def test_fit_failure_is_reported(tmp_path):
    # NaN for an estimator without NaN support is a data-gate failure now (test_leakage_gates.py); what
    # is left for TrainingFailed is fit() itself refusing data the gate cannot know about.
    path = tmp_path / "negative.csv"
    pd.DataFrame({"a": [1.0, -2.0, 3.0, 4.0] * 10, "y": [0, 1] * 20}).to_csv(path, index=False)
    task = _task(
        path,
        tmp_path / "o",
        data={"uri": f"file://{path}", "target": "y"},
        estimator={"classPath": "sklearn.naive_bayes.MultinomialNB"},
    )
    with pytest.raises(TrainerError) as err:
        run_training(task, {})
    assert err.value.reason == "TrainingFailed" and "Negative values" in err.value.message
