"""From decoded tensors to model input and from model output to V2 outputs, driven by the signature.

Two input forms are accepted:

- by feature name: one tensor per feature, each of shape ``[N]`` or ``[N, 1]``, all with the same N;
- one 2-D tensor of shape ``[N, F]`` whose columns are the features in signature order (any name).

All-numeric models get a float64 matrix (no per-request DataFrame); models with string features get the
object matrix the trainer fitted them on. Outputs: ``predict`` (default) and, for classifiers with
probabilities, ``predict_proba`` of shape ``[N, classes]``.
"""

from __future__ import annotations

import numpy as np
from kubeloop.contract import ModelSignature
from sklearn.base import BaseEstimator

from kubeloop_trainer.serve.codec import BadRequest, Tensor

PREDICT = "predict"
PREDICT_PROBA = "predict_proba"


def _categorical(values: np.ndarray) -> np.ndarray:
    out = np.empty(values.shape, dtype=object)
    for i, v in enumerate(values.tolist()):
        out[i] = None if v is None or (isinstance(v, float) and v != v) else str(v)
    return out


def _numeric(tensor: Tensor) -> np.ndarray:
    if tensor.values.dtype == np.float64:
        return tensor.values
    try:
        return tensor.values.astype(np.float64)
    except (ValueError, TypeError):
        raise BadRequest(f"input {tensor.name!r}: expected numbers") from None


class Predictor:
    """The loaded model and everything needed to call it from a V2 request."""

    def __init__(self, model: BaseEstimator, signature: ModelSignature) -> None:
        self.model = model
        self.signature = signature
        self.features = signature.feature_names
        self.n_features = len(self.features)
        self.index = {name: i for i, name in enumerate(self.features)}
        self.numeric_only = not signature.categorical_features
        self.is_numeric = [f.kind == "numeric" for f in signature.features]
        self.outputs = [PREDICT] + ([PREDICT_PROBA] if signature.probabilities else [])

    def assemble(self, inputs: list[Tensor]) -> np.ndarray:
        """The model input matrix, shape (rows, features)."""
        first = inputs[0]
        if len(inputs) == 1 and len(first.shape) == 2 and first.name not in self.index:
            return self._from_matrix(first)
        return self._from_columns(inputs)

    def _from_matrix(self, tensor: Tensor) -> np.ndarray:
        rows, cols = tensor.shape
        if cols != self.n_features:
            raise BadRequest(
                f"input {tensor.name!r} has {cols} columns, the model takes {self.n_features} features: "
                + ", ".join(self.features)
            )
        if self.numeric_only:
            return _numeric(tensor).reshape(rows, cols)
        matrix = tensor.values.reshape(rows, cols)
        out = np.empty((rows, cols), dtype=object)
        for j in range(cols):
            column = Tensor(tensor.name, (rows,), tensor.datatype, matrix[:, j])
            out[:, j] = _numeric(column) if self.is_numeric[j] else _categorical(column.values)
        return out

    def _from_columns(self, inputs: list[Tensor]) -> np.ndarray:
        given = {t.name: t for t in inputs}
        unknown = [n for n in given if n not in self.index]
        if unknown:
            raise BadRequest(
                f"unknown inputs {unknown}; the model takes {self.features} (or one [N, F] tensor)"
            )
        missing = [n for n in self.features if n not in given]
        if missing:
            raise BadRequest(f"missing inputs for features {missing}")
        rows = {t.shape[0] if t.shape else -1 for t in inputs}
        bad = [
            t.name for t in inputs if len(t.shape) not in (1, 2) or (len(t.shape) == 2 and t.shape[1] != 1)
        ]
        if bad or len(rows) != 1:
            raise BadRequest("inputs by feature name must all have shape [N] or [N, 1] with the same N")
        n = rows.pop()
        out = np.empty((n, self.n_features), dtype=np.float64 if self.numeric_only else object)
        for j, name in enumerate(self.features):
            tensor = given[name]
            out[:, j] = _numeric(tensor) if self.is_numeric[j] else _categorical(tensor.values)
        return out

    def predict(self, X: np.ndarray, wanted: list[str] | None) -> dict[str, np.ndarray]:
        """Run the model for the requested outputs; a ValueError from sklearn means bad input values."""
        names = wanted or [PREDICT]
        for name in names:
            if name not in self.outputs:
                raise BadRequest(f"unknown output {name!r}; this model offers {self.outputs}")
        out: dict[str, np.ndarray] = {}
        try:
            for name in names:
                out[name] = self.model.predict(X) if name == PREDICT else self.model.predict_proba(X)
        except (ValueError, TypeError) as e:
            raise BadRequest(f"the model refused the input: {e}") from None
        return out
