"""Held-out metrics, and the reference distribution of the predictions.

Classification: accuracy; precision, recall and f1 (binary for two classes, with the second class of the
model's sorted classes as positive; macro-averaged otherwise); roc_auc (one-vs-rest macro for more than two
classes) and log_loss, when the model has scores or probabilities. Regression: rmse, mae, r2. A metric that
cannot be computed (no probabilities, a class absent from the split) is left out rather than made up.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from kubeloop.contract import ClassPredictions, TaskKind, ValuePredictions
from kubeloop.drift.profile import NumericReference, build_profile, count_numeric
from sklearn import metrics as skm
from sklearn.base import BaseEstimator


def _add(out: dict[str, float], name: str, compute: Callable[[], float]) -> None:
    try:
        value = float(compute())
    except (ValueError, TypeError, IndexError):
        return
    if math.isfinite(value):
        out[name] = value


def _scores(model: BaseEstimator, X: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(probabilities, decision scores); either may be None."""
    proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
    decision = None
    if proba is None and hasattr(model, "decision_function"):
        decision = model.decision_function(X)
    return proba, decision


def classification_metrics(model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    classes = np.asarray(model.classes_)
    pred = model.predict(X)
    out: dict[str, float] = {}
    _add(out, "accuracy", lambda: skm.accuracy_score(y, pred))
    if len(classes) == 2:
        avg: dict = {"average": "binary", "pos_label": classes[1]}
    else:
        avg = {"average": "macro", "labels": classes}
    _add(out, "precision", lambda: skm.precision_score(y, pred, zero_division=0, **avg))
    _add(out, "recall", lambda: skm.recall_score(y, pred, zero_division=0, **avg))
    _add(out, "f1", lambda: skm.f1_score(y, pred, zero_division=0, **avg))
    try:
        proba, decision = _scores(model, X)
    except (AttributeError, ValueError):  # e.g. SVC(probability=False) exposes predict_proba but refuses it
        proba, decision = None, None
    if proba is not None:
        if len(classes) == 2:
            _add(out, "roc_auc", lambda: skm.roc_auc_score(y == classes[1], proba[:, 1]))
        else:
            _add(out, "roc_auc", lambda: skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes))
        _add(out, "log_loss", lambda: skm.log_loss(y, proba, labels=classes))
    elif decision is not None:
        if len(classes) == 2:
            _add(out, "roc_auc", lambda: skm.roc_auc_score(y == classes[1], decision))
        else:
            _add(out, "roc_auc", lambda: skm.roc_auc_score(y, decision, multi_class="ovr", labels=classes))
    return out


def regression_metrics(model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    pred = np.asarray(model.predict(X), dtype=float)
    out: dict[str, float] = {}
    _add(out, "rmse", lambda: math.sqrt(skm.mean_squared_error(y, pred)))
    _add(out, "mae", lambda: skm.mean_absolute_error(y, pred))
    _add(out, "r2", lambda: skm.r2_score(y, pred))
    return out


def score(task: TaskKind, model: BaseEstimator, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    if task == "classification":
        return classification_metrics(model, X, y)
    return regression_metrics(model, X, np.asarray(y, dtype=float))


def prediction_reference(
    task: TaskKind,
    model: BaseEstimator,
    X_test: np.ndarray,
    y_train: np.ndarray,
    n_bins: int,
) -> ClassPredictions | ValuePredictions:
    """How the candidate's predictions on the held-out split are distributed.

    For regression the bins are quantiles of the training target, so a canary whose predictions drift
    away from the training distribution shows up on the same bins the server counts live.
    """
    pred = model.predict(X_test)
    if task == "classification":
        classes = np.asarray(model.classes_).tolist()
        index = {c: i for i, c in enumerate(classes)}
        counts = [0] * len(classes)
        for p in pred.tolist():
            counts[index[p]] += 1
        return ClassPredictions(classes=[str(c) for c in classes], counts=counts)
    target = build_profile({"target": np.asarray(y_train, dtype=float)}, {}, n_bins=n_bins, sample_size=0)
    edges = target.numeric["target"].edges
    ref = NumericReference(edges=edges, counts=[0] * (len(edges) + 1))
    return ValuePredictions(edges=edges, counts=count_numeric(ref, np.asarray(pred, dtype=float)).tolist())
