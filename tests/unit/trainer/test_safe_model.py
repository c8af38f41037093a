import os
import pickle

import numpy as np
import pytest
import skops.io as sio
from kubeloop.contract import Feature
from kubeloop_trainer.features import wrap_estimator
from kubeloop_trainer.safe_model import UnsafeModelError, dump_model, load_model, refused_types
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import FunctionTransformer

SKLEARN = ("sklearn.",)
RNG = np.random.default_rng(0)
X = RNG.normal(size=(60, 3))
y = (X[:, 0] > 0).astype(int)


@pytest.mark.parametrize(
    "model",
    [
        RandomForestRegressor(n_estimators=3, random_state=0).fit(
            X, X[:, 1]
        ),  # holds sklearn.tree._tree.Tree
        HistGradientBoostingClassifier(max_iter=5).fit(X, y),
    ],
)
def test_round_trip_predicts_the_same(model):
    loaded = load_model(dump_model(model), SKLEARN)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_round_trip_of_the_categorical_pipeline():
    features = [Feature(name="a", type="float"), Feature(name="c", type="string")]
    Xc = np.array([[float(i), "u" if i % 2 else "v"] for i in range(40)], dtype=object)
    yc = np.array([i % 2 for i in range(40)])
    model = wrap_estimator(LogisticRegression(), features).fit(Xc, yc)
    loaded = load_model(dump_model(model), SKLEARN)
    np.testing.assert_array_equal(loaded.predict(Xc), yc)


def test_a_function_outside_the_allow_list_is_refused():
    # A FunctionTransformer calling os.system would run a shell command on every prediction.
    data = sio.dumps(FunctionTransformer(func=os.system))
    assert refused_types(data, SKLEARN) == ["posix.system"]
    with pytest.raises(UnsafeModelError, match=r"outside the allow-list.*posix\.system"):
        load_model(data, SKLEARN)


def test_sklearn_functions_are_not_trusted_by_prefix():
    # Only classes inside allowed packages are trusted, not arbitrary functions there.
    from sklearn.utils import shuffle

    data = sio.dumps(FunctionTransformer(func=shuffle))
    assert refused_types(data, SKLEARN) == ["sklearn.utils._indexing.shuffle"]


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/kubeloop-pwned-by-pickle",))


def test_a_pickle_is_refused_without_being_run(tmp_path):
    marker = "/tmp/kubeloop-pwned-by-pickle"
    if os.path.exists(marker):
        os.remove(marker)
    with pytest.raises(UnsafeModelError, match="not in the skops format"):
        load_model(pickle.dumps(_Boom()), SKLEARN)
    assert not os.path.exists(marker)


def test_a_zip_that_is_not_skops_is_refused(tmp_path):
    import zipfile

    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(UnsafeModelError, match="not a readable skops file"):
        load_model(path.read_bytes(), SKLEARN)


def test_a_non_estimator_object_is_refused():
    with pytest.raises(UnsafeModelError, match="holds a dict, not an estimator"):
        load_model(sio.dumps({"a": 1}), SKLEARN)
