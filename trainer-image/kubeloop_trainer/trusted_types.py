"""Which types a model file may name, beyond skops' own default set: an explicit list per estimator family.

skops trusts by default the scikit-learn estimators, builtins, and numpy and scipy containers, each by the
module that defines it. Fitted models also hold scikit-learn internals it does not trust by default (a
forest's ``Tree``, a KNN index, an MLP optimizer). Those are listed here by family, each family with the
exact types its models store, and nothing else: trusting "any class reachable from ``sklearn.``" admitted
``sklearn.datasets._lfw.Memory`` (joblib's ``Memory``, which makes a directory) and 141 other classes
defined outside scikit-learn. ``tests/unit/trainer/test_trusted_types.py`` fits each family's models and
checks that the list is exactly what they need.

A listed name is trusted only if its module lies in an allowed package and the object found there is a
class *defined* there (``__module__`` and ``__qualname__`` say so), which is how skops will resolve it.
Trusting a type lets its constructor and ``__setstate__`` run on values from the file; it does not make a
crafted tree's node indices safe to predict with. The digest the operator pins is what vouches for the
content; this list decides what code loading may run at all.
"""

from __future__ import annotations

import importlib
import inspect

from kubeloop_trainer.allowlist import is_allowed

# Family -> the types its fitted models hold that skops does not trust by default.
TRUSTED_BY_FAMILY: dict[str, tuple[str, ...]] = {
    # DecisionTree*, ExtraTree*, RandomForest*, ExtraTrees*, GradientBoosting*, AdaBoost*, Bagging* on trees
    "trees": ("sklearn.tree._tree.Tree",),
    "histogram gradient boosting": ("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",),
    "nearest neighbours": (
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.neighbors._kd_tree.KDTree",
    ),
    "neural networks": (
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    ),
    "gaussian processes": (
        "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
        "sklearn.gaussian_process.kernels.ConstantKernel",
        "sklearn.gaussian_process.kernels.Product",
        "sklearn.gaussian_process.kernels.RBF",
    ),
    "calibration": (
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.calibration._TemperatureScaling",
    ),
    "generalized linear models": (
        "sklearn._loss.loss.HalfTweedieLoss",
        "sklearn._loss.loss.HalfTweedieLossIdentity",
    ),
}
TRUSTED_TYPES: frozenset[str] = frozenset(t for types in TRUSTED_BY_FAMILY.values() for t in types)


def real_name(type_name: str) -> str | None:
    """Where the class found at ``type_name`` is defined (``module.qualname``); None if it is no class.

    Imports the module, so call it only for names whose module is in an allowed package.
    """
    module_name, _, attr = type_name.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError):
        return None
    return f"{obj.__module__}.{obj.__qualname__}" if inspect.isclass(obj) else None


def refusal(type_name: str, allowed: tuple[str, ...], trusted: frozenset[str] = TRUSTED_TYPES) -> str | None:
    """Why ``type_name`` may not be loaded, or None if it may."""
    module_name = type_name.rpartition(".")[0]
    if not module_name or not is_allowed(module_name, allowed):
        return f"outside the allowed packages {', '.join(allowed)}"  # never imported, not even to look
    if type_name not in trusted:
        return "not a type any supported estimator family stores (see kubeloop_trainer.trusted_types)"
    real = real_name(type_name)
    if real is None:
        return "not a class"
    if real != type_name:
        return f"the class there is {real}, defined elsewhere"
    return None
