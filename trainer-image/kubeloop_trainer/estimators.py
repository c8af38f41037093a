"""Turning an import path from a TrainingRun into an estimator, safely.

The class path comes from a custom resource, i.e. from anyone who may create TrainingRuns. Importing an
arbitrary module runs its code, so the module is checked against the allow-list (see ``allowlist``)
*before* it is imported, and the class must then be a scikit-learn estimator.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from kubeloop.api import EstimatorSpec
from kubeloop.contract import TaskKind
from sklearn.base import BaseEstimator, is_classifier, is_regressor

from kubeloop_trainer.allowlist import ALLOWED_MODULES_ENV, is_allowed
from kubeloop_trainer.errors import TrainerError


def resolve_class(class_path: str, allowed: tuple[str, ...]) -> type:
    module_name, _, class_name = class_path.rpartition(".")
    if not module_name or not is_allowed(module_name, allowed):
        raise TrainerError(
            "EstimatorRejected",
            f"estimator {class_path!r} is outside the allowed modules {', '.join(allowed)} "
            f"(an admin can extend them with {ALLOWED_MODULES_ENV})",
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise TrainerError("EstimatorRejected", f"cannot import module {module_name!r}: {e}") from e
    cls = getattr(module, class_name, None)
    if cls is None:
        raise TrainerError("EstimatorRejected", f"module {module_name!r} has no {class_name!r}")
    if not inspect.isclass(cls) or not issubclass(cls, BaseEstimator):
        raise TrainerError("EstimatorRejected", f"{class_path!r} is not a scikit-learn estimator class")
    for method in ("fit", "predict", "get_params"):
        if not callable(getattr(cls, method, None)):
            raise TrainerError("EstimatorRejected", f"{class_path!r} has no {method}() method")
    return cls


def task_kind(estimator: BaseEstimator, class_path: str) -> TaskKind:
    if is_classifier(estimator):
        return "classification"
    if is_regressor(estimator):
        return "regression"
    raise TrainerError(
        "EstimatorRejected", f"{class_path!r} is neither a classifier nor a regressor, so it cannot be served"
    )


def build_estimator(
    spec: EstimatorSpec, seed: int, allowed: tuple[str, ...]
) -> tuple[BaseEstimator, TaskKind]:
    """Instantiate the estimator with its params; ``random_state`` defaults to the run's seed."""
    cls = resolve_class(spec.class_path, allowed)
    params: dict[str, Any] = dict(spec.params)
    try:
        estimator = cls(**params)
    except TypeError as e:
        raise TrainerError("EstimatorRejected", f"bad parameters for {spec.class_path}: {e}") from e
    if "random_state" in estimator.get_params(deep=False) and "random_state" not in params:
        estimator.set_params(random_state=seed)
    return estimator, task_kind(estimator, spec.class_path)
