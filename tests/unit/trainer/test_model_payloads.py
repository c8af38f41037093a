"""Model files that name classes from outside scikit-learn, reached through a scikit-learn module.

Each payload is a working LogisticRegression with one more attribute whose constructor would show if it
ran: a joblib cache directory, a TCP listener. Loading must refuse the file, name the type, and leave no
trace: no audit event of a socket, a directory or a write, no new path, no new socket.
"""

import pytest
from kubeloop_trainer.safe_model import UnsafeModelError, load_model

SKLEARN = ("sklearn.",)


@pytest.mark.parametrize(
    "foreign",
    [
        "joblib.Memory",
        "multiprocessing.connection.Listener",
        "threading.Thread",
        "pathlib.Path",
    ],
)
def test_a_foreign_class_reached_through_sklearn_is_refused_and_runs_nothing(
    crafted, foreign, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    data = crafted.foreign_payload(foreign, tmp_path)
    module, cls = crafted.FOREIGN_CLASSES[foreign]
    with crafted.side_effects(tmp_path) as effects, pytest.raises(UnsafeModelError) as refused:
        load_model(data, SKLEARN)
    assert f"{module}.{cls}" in str(refused.value)
    assert not effects, effects


def test_the_payloads_do_act_when_their_classes_are_trusted(crafted, tmp_path, monkeypatch):
    # The check above means something only if these files would run their constructors when trusted.
    import skops.io as sio

    monkeypatch.chdir(tmp_path)
    memory = crafted.foreign_payload("joblib.Memory", tmp_path)
    listener = crafted.foreign_payload("multiprocessing.connection.Listener", tmp_path)
    with crafted.side_effects(tmp_path) as effects:
        model = sio.loads(memory, trusted=sio.get_untrusted_types(data=memory))
        served = sio.loads(listener, trusted=sio.get_untrusted_types(data=listener))
    assert "joblib-cache" in effects.new_paths
    assert any(e.startswith("socket.bind") for e in effects.events) and effects.new_sockets
    assert hasattr(model, "predict")  # the payload rides along in a model that still works
    served.payload_.close()


def test_a_sklearn_class_that_no_model_needs_is_refused(crafted):
    # Defined in scikit-learn, but no estimator family stores one: not on the trusted list.
    node = {"__class__": "Bunch", "__module__": "sklearn.utils._bunch", "__loader__": "ObjectNode"}
    data = crafted.with_attribute(crafted.benign_models()["logistic"], "extra_", node)
    with pytest.raises(UnsafeModelError, match=r"sklearn\.utils\._bunch\.Bunch"):
        load_model(data, SKLEARN)
