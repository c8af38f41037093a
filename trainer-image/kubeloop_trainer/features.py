"""Features: which columns the model takes, and the matrix it is fitted and served on.

Models are always fitted on plain numpy arrays in signature order (never on DataFrames), so serving can
hand the model the same kind of array without rebuilding a DataFrame per request. All-numeric data
becomes a float64 matrix. With string columns, the matrix is an object array and the estimator is wrapped
in a one-hot encoder that ignores categories it has not seen, so the model itself stays the user's choice.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from kubeloop.api import ColumnType
from kubeloop.contract import Feature
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from kubeloop_trainer.gate import infer_type


def feature_list(
    frame: pd.DataFrame,
    target: str,
    declared: Mapping[str, ColumnType],
    group_column: str | None = None,
) -> list[Feature]:
    """Every column except the target and the group column, in file order, typed as declared or parsed.

    The group column names an entity (a customer id): it decides the split, and a model that learned
    ids would not generalise to new entities, so it is never a feature.
    """
    out = []
    for name in frame.columns:
        if name in (target, group_column):
            continue
        kind = declared.get(name) or infer_type(frame[name])
        if kind is None:  # the gate has refused such data already
            raise ValueError(f"column {name!r} has no supported type")
        out.append(Feature(name=str(name), type=kind))
    return out


def _numeric(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype=float, na_value=np.nan)


def _categorical(series: pd.Series) -> np.ndarray:
    return np.array([None if pd.isna(v) else str(v) for v in series], dtype=object)


def feature_matrix(frame: pd.DataFrame, features: list[Feature]) -> np.ndarray:
    """The model input for ``frame``: float64 when every feature is numeric, else an object array."""
    if all(f.kind == "numeric" for f in features):
        return (
            np.column_stack([_numeric(frame[f.name]) for f in features])
            if features
            else np.empty((len(frame), 0))
        )
    columns = [
        _numeric(frame[f.name]) if f.kind == "numeric" else _categorical(frame[f.name]) for f in features
    ]
    out = np.empty((len(frame), len(features)), dtype=object)
    for i, column in enumerate(columns):
        out[:, i] = column
    return out


def wrap_estimator(estimator: BaseEstimator, features: list[Feature]) -> BaseEstimator:
    """The estimator itself for numeric data; with string columns, a one-hot encoder in front of it."""
    categorical = [i for i, f in enumerate(features) if f.kind == "categorical"]
    if not categorical:
        return estimator
    encode = ColumnTransformer(
        [("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)],
        remainder="passthrough",
        sparse_threshold=0.0,
    )
    return Pipeline([("encode", encode), ("model", estimator)])
