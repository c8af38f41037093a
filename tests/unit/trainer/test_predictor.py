import numpy as np
import pytest
from kubeloop.contract import Feature, ModelSignature
from kubeloop_trainer.features import wrap_estimator
from kubeloop_trainer.serve.codec import BadRequest, Tensor
from kubeloop_trainer.serve.predictor import Predictor
from sklearn.linear_model import LinearRegression, LogisticRegression

RNG = np.random.default_rng(3)
X = RNG.normal(size=(80, 3))
Y = (X[:, 0] - X[:, 2] > 0).astype(int)
NUMERIC = ModelSignature(
    task="classification",
    target="y",
    target_type="int",
    features=[Feature(name=n, type="float") for n in ("a", "b", "c")],
    classes=[0, 1],
    estimator="sklearn.linear_model.LogisticRegression",
    probabilities=True,
)


def _t(name, values, shape=None, datatype="FP64"):
    arr = np.asarray(values, dtype=object if datatype == "BYTES" else np.float64)
    return Tensor(name, tuple(shape or arr.shape), datatype, arr.reshape(-1))


@pytest.fixture(scope="module")
def numeric():
    return Predictor(LogisticRegression().fit(X, Y), NUMERIC)


def test_matrix_and_named_inputs_give_the_same_predictions(numeric):
    rows = X[:5]
    by_matrix = numeric.assemble([_t("input-0", rows)])
    by_name = numeric.assemble([_t("c", rows[:, 2]), _t("a", rows[:, 0]), _t("b", rows[:, 1], shape=(5, 1))])
    np.testing.assert_array_equal(by_matrix, rows)
    np.testing.assert_array_equal(by_name, rows)
    out = numeric.predict(by_name, ["predict", "predict_proba"])
    np.testing.assert_array_equal(out["predict"], numeric.model.predict(rows))
    assert out["predict_proba"].shape == (5, 2)
    assert list(numeric.predict(by_name, None)) == ["predict"]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([_t("m", np.ones((2, 2)))], "has 2 columns, the model takes 3 features: a, b, c"),
        ([_t("a", [1.0]), _t("b", [1.0])], r"missing inputs for features \['c'\]"),
        ([_t("a", [1.0]), _t("b", [1.0]), _t("c", [1.0]), _t("d", [1.0])], "unknown inputs"),
        ([_t("a", [1.0]), _t("b", [1.0, 2.0]), _t("c", [1.0])], "same N"),
        ([_t("a", ["x"], datatype="BYTES"), _t("b", [1.0]), _t("c", [1.0])], "expected numbers"),
    ],
)
def test_bad_inputs(numeric, inputs, message):
    with pytest.raises(BadRequest, match=message):
        numeric.assemble(inputs)


def test_unknown_output_and_nan_are_client_errors(numeric):
    with pytest.raises(BadRequest, match="unknown output 'scores'"):
        numeric.predict(X[:1], ["scores"])
    with pytest.raises(BadRequest, match=r"the model refused the input.*NaN"):
        numeric.predict(np.array([[np.nan, 1.0, 2.0]]), None)


def test_regression_offers_no_probabilities():
    sig = NUMERIC.model_copy(update={"task": "regression", "classes": None, "probabilities": False})
    p = Predictor(LinearRegression().fit(X, X[:, 0]), sig)
    assert p.outputs == ["predict"]
    with pytest.raises(BadRequest, match="unknown output 'predict_proba'"):
        p.predict(X[:1], ["predict_proba"])


def test_mixed_model_takes_strings_by_name_or_in_one_bytes_matrix():
    features = [Feature(name="n", type="float"), Feature(name="color", type="string")]
    Xm = np.array([[float(i % 4), "red" if i % 2 else "blue"] for i in range(40)], dtype=object)
    ym = np.array([i % 2 for i in range(40)])
    model = wrap_estimator(LogisticRegression(), features).fit(Xm, ym)
    sig = NUMERIC.model_copy(update={"features": features})
    p = Predictor(model, sig)
    named = p.assemble([_t("n", [1.0, 2.0]), _t("color", ["red", "blue"], datatype="BYTES")])
    matrix = p.assemble([_t("x", [[1, "red"], [2, "blue"]], datatype="BYTES")])
    assert named.tolist() == matrix.tolist() == [[1.0, "red"], [2.0, "blue"]]
    assert p.predict(named, None)["predict"].tolist() == [1, 0]
