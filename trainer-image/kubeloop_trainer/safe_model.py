"""Saving and loading models in the skops format, refusing anything that is not on the allow-list.

A pickle runs code while it loads, so the server must never unpickle a file from storage. skops stores a
JSON schema of the object tree and rebuilds only types it is told to trust. We trust skops' own default set
(builtins, numpy and scipy containers, most scikit-learn estimators) plus the *classes* (not functions)
found inside the allowed packages (``allowlist``), which covers the scikit-learn internals skops does not
trust by default, such as ``sklearn.tree._tree.Tree``. Any other type, e.g. a function such as
``os.system`` hidden in a FunctionTransformer, makes the load fail before any object is built. Anything
that is not a skops zip (a pickle, a joblib file) is refused outright.
"""

from __future__ import annotations

import importlib
import inspect

import skops.io as sio
from sklearn.base import BaseEstimator

from kubeloop_trainer.allowlist import is_allowed

_ZIP_MAGIC = b"PK\x03\x04"


class UnsafeModelError(ValueError):
    """The model file is not a skops file, or references a type outside the allow-list."""


def dump_model(model: BaseEstimator) -> bytes:
    return sio.dumps(model)


def _is_allowed_class(type_name: str, allowed: tuple[str, ...]) -> bool:
    module_name, _, attr = type_name.rpartition(".")
    if not module_name or not is_allowed(module_name, allowed):
        return False  # never import a module outside the allow-list, not even to look
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return False
    return inspect.isclass(obj)


def refused_types(data: bytes, allowed: tuple[str, ...]) -> list[str]:
    """Types in the file that would not be trusted; raises UnsafeModelError if the file is not skops."""
    if not data.startswith(_ZIP_MAGIC):
        raise UnsafeModelError("the model file is not in the skops format (pickle/joblib files are refused)")
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as e:  # a corrupt or hand-made zip: refuse, whatever broke
        raise UnsafeModelError(f"the model file is not a readable skops file: {e}") from e
    return [t for t in untrusted if not _is_allowed_class(t, allowed)]


def load_model(data: bytes, allowed: tuple[str, ...]) -> BaseEstimator:
    """Rebuild a model from skops bytes, trusting only the allow-list; raises UnsafeModelError."""
    refused = refused_types(data, allowed)
    if refused:
        raise UnsafeModelError(
            "the model file references types outside the allow-list, refusing to load it: "
            + ", ".join(refused)
        )
    trusted = sio.get_untrusted_types(data=data)
    try:
        model = sio.loads(data, trusted=trusted)
    except Exception as e:
        raise UnsafeModelError(f"the model file could not be loaded: {e}") from e
    if not isinstance(model, BaseEstimator) or not callable(getattr(model, "predict", None)):
        raise UnsafeModelError(f"the model file holds a {type(model).__name__}, not an estimator")
    return model
