import math

import numpy as np
import pandas as pd
import pytest
from kubeloop.contract import ClassPredictions, Feature, ValuePredictions
from kubeloop_trainer.evaluate import classification_metrics, prediction_reference, regression_metrics
from kubeloop_trainer.features import feature_list, feature_matrix, wrap_estimator
from scipy.stats import mannwhitneyu
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.svm import LinearSVC

RNG = np.random.default_rng(1)


def _binary():
    X = RNG.normal(size=(400, 2))
    y = np.where(X[:, 0] + 0.8 * RNG.normal(size=400) > 0, "yes", "no")
    model = LogisticRegression().fit(X[:300], y[:300])
    return model, X[300:], y[300:]


def test_binary_metrics_match_independent_formulas():
    model, X, y = _binary()
    m = classification_metrics(model, X, y)
    pred = model.predict(X)
    positive = model.classes_[1]
    assert positive == "yes"
    tp = np.sum((pred == positive) & (y == positive))
    fp = np.sum((pred == positive) & (y != positive))
    fn = np.sum((pred != positive) & (y == positive))
    assert m["accuracy"] == pytest.approx(np.mean(pred == y))
    assert m["precision"] == pytest.approx(tp / (tp + fp))
    assert m["recall"] == pytest.approx(tp / (tp + fn))
    assert m["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
    score = model.predict_proba(X)[:, 1]
    u = mannwhitneyu(score[y == positive], score[y != positive]).statistic
    assert m["roc_auc"] == pytest.approx(u / (np.sum(y == positive) * np.sum(y != positive)))
    p_true = np.where(y == positive, score, 1 - score)
    assert m["log_loss"] == pytest.approx(-np.mean(np.log(p_true)))


def test_multiclass_metrics_are_macro_averaged():
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X[::2], y[::2])
    m = classification_metrics(model, X[1::2], y[1::2])
    pred = model.predict(X[1::2])
    recalls = [np.mean(pred[y[1::2] == c] == c) for c in range(3)]
    assert m["recall"] == pytest.approx(np.mean(recalls))
    assert set(m) == {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}


def test_without_probabilities_roc_auc_uses_scores_and_log_loss_is_left_out():
    X = RNG.normal(size=(200, 2))
    y = (X[:, 0] > 0).astype(int)
    m = classification_metrics(LinearSVC().fit(X, y), X, y)
    assert "log_loss" not in m
    assert 0.95 < m["roc_auc"] <= 1.0


def test_regression_metrics_match_numpy():
    X, y = load_diabetes(return_X_y=True)
    model = LinearRegression().fit(X[:300], y[:300])
    m = regression_metrics(model, X[300:], y[300:])
    err = y[300:] - model.predict(X[300:])
    assert m["rmse"] == pytest.approx(math.sqrt(np.mean(err**2)))
    assert m["mae"] == pytest.approx(np.mean(np.abs(err)))
    assert m["r2"] == pytest.approx(1 - np.sum(err**2) / np.sum((y[300:] - y[300:].mean()) ** 2))


def test_prediction_reference_counts_every_test_row():
    model, X, y = _binary()
    ref = prediction_reference("classification", model, X, y, 10)
    assert isinstance(ref, ClassPredictions)
    assert ref.classes == ["no", "yes"]
    assert ref.counts == [int(np.sum(model.predict(X) == "no")), int(np.sum(model.predict(X) == "yes"))]
    Xd, yd = load_diabetes(return_X_y=True)
    reg = LinearRegression().fit(Xd[:300], yd[:300])
    vref = prediction_reference("regression", reg, Xd[300:], yd[:300], 5)
    assert isinstance(vref, ValuePredictions)
    assert len(vref.edges) == 4 and sum(vref.counts) == len(Xd) - 300
    # the edges are quantiles of the training target, so each bin held about a fifth of it
    inner = np.searchsorted(vref.edges, yd[:300], side="left")
    assert np.all(np.abs(np.bincount(inner) - 60) <= 3)


def test_feature_matrix_numeric_and_mixed():
    frame = pd.DataFrame(
        {"a": [1, 2, None], "flag": [True, False, True], "city": ["x", None, "y"], "t": [0, 1, 0]}
    )
    features = feature_list(frame, "t", {})
    assert [(f.name, f.type, f.kind) for f in features] == [
        ("a", "float", "numeric"),
        ("flag", "bool", "numeric"),
        ("city", "string", "categorical"),
    ]
    X = feature_matrix(frame, features[:2])
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, [[1.0, 1.0], [2.0, 0.0], [np.nan, 1.0]])
    Xm = feature_matrix(frame, features)
    assert Xm.dtype == object and Xm[1, 2] is None and Xm[0, 2] == "x"


def test_categorical_features_get_a_one_hot_encoder_that_ignores_unseen_values():
    features = [Feature(name="n", type="float"), Feature(name="c", type="string")]
    X = np.array([[float(i % 3), "red" if i % 2 else "blue"] for i in range(60)], dtype=object)
    y = np.array([1 if i % 2 else 0 for i in range(60)])
    model = wrap_estimator(LogisticRegression(), features).fit(X, y)
    assert model.predict(np.array([[1.0, "red"], [1.0, "blue"]], dtype=object)).tolist() == [1, 0]
    assert model.predict(np.array([[1.0, "green"]], dtype=object)).shape == (1,)
    assert wrap_estimator(LogisticRegression(), features[:1]).__class__ is LogisticRegression
