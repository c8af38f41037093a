import sys

import pytest
from kubeloop.api import EstimatorSpec
from kubeloop_trainer.allowlist import allowed_modules, is_allowed
from kubeloop_trainer.errors import TrainerError
from kubeloop_trainer.estimators import build_estimator
from kubeloop_trainer.storage import StorageError, pvc_path, resolve, s3_options

SKLEARN = ("sklearn.",)


def test_pvc_uri_maps_to_the_claim_mount():
    assert pvc_path("pvc://data-claim/sets/iris.csv", {}) == "/mnt/pvc/data-claim/sets/iris.csv"
    assert pvc_path("pvc://c/x.csv", {"KUBELOOP_PVC_ROOT": "/tmp/vols"}) == "/tmp/vols/c/x.csv"


@pytest.mark.parametrize("uri", ["pvc://c/../../etc/passwd", "pvc://Bad_Claim/x", "pvc://claim-only"])
def test_bad_pvc_uris_are_refused(uri):
    with pytest.raises(StorageError):
        pvc_path(uri, {})


def test_resolve_schemes(tmp_path):
    fs, path = resolve(f"file://{tmp_path}/a.csv", {})
    assert path == f"{tmp_path}/a.csv" and fs.protocol[0] == "file"
    with pytest.raises(StorageError, match="only file://, s3:// and pvc://"):
        resolve("http://example.com/x.csv", {})
    with pytest.raises(StorageError, match="absolute"):
        resolve("file://relative/x.csv", {})


def test_s3_options_come_from_the_aws_environment():
    env = {
        "AWS_ACCESS_KEY_ID": "ak",
        "AWS_SECRET_ACCESS_KEY": "sk",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_REGION": "eu-west-1",
    }
    assert s3_options(env) == {
        "key": "ak",
        "secret": "sk",
        "endpoint_url": "http://127.0.0.1:9000",
        "config_kwargs": {"s3": {"addressing_style": "path"}},
        "client_kwargs": {"region_name": "eu-west-1"},
    }
    # the service-specific endpoint wins, as in the AWS SDKs
    assert s3_options({**env, "AWS_ENDPOINT_URL_S3": "http://s3:1"})["endpoint_url"] == "http://s3:1"
    assert s3_options({}) == {}


def test_allow_list_prefixes_end_at_a_package_boundary():
    assert allowed_modules({}) == ("sklearn.",)
    assert allowed_modules({"KUBELOOP_ALLOWED_MODULES": "sklearn, lightgbm."}) == ("sklearn.", "lightgbm.")
    assert is_allowed("sklearn.ensemble", SKLEARN)
    assert is_allowed("sklearn", SKLEARN)
    assert not is_allowed("sklearn_evil.ensemble", SKLEARN)
    assert not is_allowed("os", SKLEARN)


def _build(class_path: str, params: dict | None = None, allowed=SKLEARN):
    return build_estimator(EstimatorSpec(class_path=class_path, params=params or {}), 42, allowed)


def test_estimator_outside_the_allow_list_is_not_even_imported():
    assert "antigravity" not in sys.modules
    with pytest.raises(TrainerError) as err:
        _build("antigravity.Fly")
    assert err.value.reason == "EstimatorRejected"
    assert "outside the allowed modules sklearn." in err.value.message
    assert "antigravity" not in sys.modules
    with pytest.raises(TrainerError, match="outside the allowed modules"):
        _build("os.system")


@pytest.mark.parametrize(
    ("class_path", "message"),
    [
        ("sklearn.pipeline.make_pipeline", "is not a scikit-learn estimator class"),
        ("sklearn.preprocessing.StandardScaler", "has no predict\\(\\) method"),
        ("sklearn.cluster.KMeans", "neither a classifier nor a regressor"),
        ("sklearn.ensemble.NoSuchForest", "has no 'NoSuchForest'"),
        ("sklearn.nosuchmodule.Thing", "cannot import module"),
    ],
)
def test_non_estimators_are_refused_clearly(class_path, message):
    with pytest.raises(TrainerError, match=message) as err:
        _build(class_path)
    assert err.value.reason == "EstimatorRejected"


def test_bad_constructor_parameters_are_refused():
    with pytest.raises(TrainerError, match=r"bad parameters for sklearn\.linear_model\.LogisticRegression"):
        _build("sklearn.linear_model.LogisticRegression", {"no_such_param": 1})


def test_seed_becomes_random_state_unless_given():
    est, kind = _build("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 3})
    assert kind == "classification"
    assert est.get_params()["random_state"] == 42 and est.get_params()["n_estimators"] == 3
    est, kind = _build("sklearn.ensemble.RandomForestRegressor", {"random_state": 7})
    assert kind == "regression" and est.get_params()["random_state"] == 7
    est, _ = _build("sklearn.linear_model.LinearRegression")
    assert "random_state" not in est.get_params()
