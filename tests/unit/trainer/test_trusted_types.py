"""The trusted set, spelled out, and proof that each family needs exactly its part of it.

A change to what model files may name is a change to this list, in review. Each family's models are
fitted here, saved with skops, and loaded back: the types skops does not trust by default must be exactly
the family's list (so nothing on it is unused) and the model must load and predict the same.
"""

import warnings

import numpy as np
import pytest
import skops.io as sio
from kubeloop_trainer.safe_model import dump_model, load_model
from kubeloop_trainer.trusted_types import TRUSTED_BY_FAMILY, TRUSTED_TYPES, real_name, refusal
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    AdaBoostClassifier,
    BaggingRegressor,
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.gaussian_process import GaussianProcessClassifier, GaussianProcessRegressor
from sklearn.linear_model import LogisticRegression, Ridge, TweedieRegressor
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.tree import DecisionTreeClassifier, ExtraTreeRegressor

SKLEARN = ("sklearn.",)

EXPECTED = {
    "trees": ["sklearn.tree._tree.Tree"],
    "histogram gradient boosting": ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
    "nearest neighbours": [
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.neighbors._kd_tree.KDTree",
    ],
    "neural networks": [
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    ],
    "gaussian processes": [
        "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
        "sklearn.gaussian_process.kernels.ConstantKernel",
        "sklearn.gaussian_process.kernels.Product",
        "sklearn.gaussian_process.kernels.RBF",
    ],
    "calibration": [
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.calibration._TemperatureScaling",
    ],
    "generalized linear models": [
        "sklearn._loss.loss.HalfTweedieLoss",
        "sklearn._loss.loss.HalfTweedieLossIdentity",
    ],
}

# Each family's models, with the parameters that make them store each listed type.
REPRESENTATIVES = {
    "trees": lambda: [
        DecisionTreeClassifier(max_depth=2),
        ExtraTreeRegressor(max_depth=2),
        RandomForestRegressor(n_estimators=2, max_depth=2),
        ExtraTreesClassifier(n_estimators=2, max_depth=2),
        GradientBoostingClassifier(n_estimators=2),
        AdaBoostClassifier(n_estimators=2),
        BaggingRegressor(n_estimators=2),
    ],
    "histogram gradient boosting": lambda: [
        HistGradientBoostingClassifier(max_iter=2),
        HistGradientBoostingRegressor(max_iter=2),
    ],
    "nearest neighbours": lambda: [KNeighborsClassifier(), KNeighborsRegressor(algorithm="ball_tree")],
    "neural networks": lambda: [MLPClassifier(max_iter=5), MLPRegressor(solver="sgd", max_iter=5)],
    "gaussian processes": lambda: [GaussianProcessClassifier(), GaussianProcessRegressor()],
    "calibration": lambda: [
        CalibratedClassifierCV(LogisticRegression(), cv=2),
        CalibratedClassifierCV(LogisticRegression(), cv=2, method="temperature"),
    ],
    "generalized linear models": lambda: [TweedieRegressor(), TweedieRegressor(power=1.5, link="log")],
}

RNG = np.random.default_rng(0)
X = np.abs(RNG.normal(size=(40, 3))) + 0.1
Y = {"classifier": (X[:, 0] > 0.8).astype(int), "regressor": X[:, 1] * 2}


def _fit(model):
    kind = (
        "classifier"
        if hasattr(model, "predict_proba") or "Classifier" in type(model).__name__
        else "regressor"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of 5-iteration fits
        return model.fit(X, Y[kind])


def test_the_trusted_set_is_this_list():
    assert {family: sorted(types) for family, types in TRUSTED_BY_FAMILY.items()} == EXPECTED
    assert sorted(TRUSTED_TYPES) == sorted(t for types in EXPECTED.values() for t in types)


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_each_family_needs_exactly_its_types_and_loads(family):
    needed: set[str] = set()
    for model in REPRESENTATIVES[family]():
        fitted = _fit(model)
        data = dump_model(fitted)
        needed |= set(sio.get_untrusted_types(data=data))
        loaded = load_model(data, SKLEARN)
        np.testing.assert_array_equal(loaded.predict(X), fitted.predict(X))
    assert sorted(needed) == EXPECTED[family]


def test_models_without_internals_need_nothing_beyond_skops_defaults():
    for model in (LogisticRegression(), Ridge()):
        assert sio.get_untrusted_types(data=dump_model(_fit(model))) == []


@pytest.mark.parametrize("name", sorted(TRUSTED_TYPES))
def test_every_listed_type_is_a_class_defined_where_it_is_named(name):
    assert real_name(name) == name
    assert refusal(name, SKLEARN) is None


def test_a_listed_name_that_resolves_to_a_class_defined_elsewhere_is_refused():
    # The check is on the object found, not on the path: a re-export is refused even if it were listed.
    name = "sklearn.datasets._lfw.Memory"
    assert real_name(name) == "joblib.memory.Memory"
    assert (
        refusal(name, SKLEARN, trusted=frozenset({name}))
        == "the class there is joblib.memory.Memory, defined elsewhere"
    )
    assert (
        refusal("sklearn.utils.shuffle", SKLEARN, trusted=frozenset({"sklearn.utils.shuffle"}))
        == "not a class"
    )


def test_names_outside_the_allowed_packages_are_refused_without_importing_them():
    import sys

    assert "antigravity" not in sys.modules
    assert refusal("antigravity.Fly", SKLEARN) == "outside the allowed packages sklearn."
    assert "antigravity" not in sys.modules
    # a listed type is refused too when its package is not allowed
    assert refusal("sklearn.tree._tree.Tree", ("lightgbm.",)) == "outside the allowed packages lightgbm."
