"""The data gate: every check the training data must pass before a model is fitted.

All checks run and every violation is reported, each naming its column and its numbers, so one failed
run tells the user everything that is wrong with the data instead of one problem per attempt.

Two layers: the ``validation`` block of the spec (declared columns, ranges, a null budget, a row
minimum), and checks every run gets, block or not, because without them a model is fitted on data that
cannot give a meaningful one: a target with a single class (a "perfect" classifier that has learned
nothing), infinite values, missing values for an estimator that cannot take them, and an unusable group
column. Every violation is a ``DataValidationFailed``: a permanent failure the Job does not retry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from kubeloop.api import ColumnType, DataSpec, DataValidation
from kubeloop.contract import TaskKind, Violation
from pandas.api import types as ptypes
from sklearn.base import BaseEstimator
from sklearn.utils import get_tags


@dataclass(frozen=True)
class Learner:
    """What the data gate needs to know about the estimator that will be fitted."""

    task: TaskKind
    name: str  # the class path, for messages
    accepts_missing: bool  # whether fit() takes NaN in numeric features


def learner_of(estimator: BaseEstimator, task: TaskKind, class_path: str) -> Learner:
    """The estimator's task and whether it declares NaN support (scikit-learn's ``allow_nan`` tag)."""
    try:
        accepts_missing = bool(get_tags(estimator).input_tags.allow_nan)
    except Exception:  # a third-party estimator without tags: assume it does not, and say so
        accepts_missing = False
    return Learner(task=task, name=class_path, accepts_missing=accepts_missing)


def _non_null(series: pd.Series) -> pd.Series:
    return series[series.notna()]


def infer_type(series: pd.Series) -> ColumnType | None:
    """The column type of a parsed column, or None when it is none of int, float, string, bool."""
    if ptypes.is_bool_dtype(series):
        return "bool"
    if ptypes.is_integer_dtype(series):
        return "int"
    if ptypes.is_float_dtype(series):
        return "float"
    if ptypes.is_string_dtype(series) and not ptypes.is_object_dtype(series):
        return "string"
    if ptypes.is_object_dtype(series):
        values = _non_null(series)
        if len(values) == 0:
            return "string"
        if all(isinstance(v, bool | np.bool_) for v in values):
            return "bool"
        if all(isinstance(v, str) for v in values):
            return "string"
    return None


def conforms(series: pd.Series, declared: ColumnType) -> bool:
    """Whether a column holds values of the declared type (missing values aside)."""
    actual = infer_type(series)
    if actual == declared:
        return True
    if declared == "float":
        return actual == "int"
    if declared == "int" and actual == "float":
        # A CSV integer column with a missing value is parsed as float; it is still an int column.
        values = _non_null(series).to_numpy(dtype=float)
        return bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
    return False


def _example(series: pd.Series) -> str:
    values = _non_null(series)
    return repr(values.iloc[0]) if len(values) else "only missing values"


def _check_types(frame: pd.DataFrame, validation: DataValidation) -> list[Violation]:
    out: list[Violation] = []
    for name, declared in validation.expected_columns.items():
        if name not in frame.columns:
            out.append(Violation(check="missing_column", column=name, message=f"column {name!r} is missing"))
        elif not conforms(frame[name], declared):
            found = infer_type(frame[name]) or str(frame[name].dtype)
            out.append(
                Violation(
                    check="type",
                    column=name,
                    message=f"column {name!r} should be {declared} but holds {found} values "
                    f"(e.g. {_example(frame[name])})",
                )
            )
    return out


def _check_ranges(frame: pd.DataFrame, validation: DataValidation) -> list[Violation]:
    out: list[Violation] = []
    for name, bounds in validation.ranges.items():
        if name not in frame.columns:
            if name not in validation.expected_columns:  # already reported as missing otherwise
                out.append(
                    Violation(check="missing_column", column=name, message=f"column {name!r} is missing")
                )
            continue
        series = frame[name]
        if ptypes.is_bool_dtype(series) or not ptypes.is_numeric_dtype(series):
            out.append(
                Violation(
                    check="range", column=name, message=f"column {name!r} has a range but is not numeric"
                )
            )
            continue
        values = _non_null(series).to_numpy(dtype=float)
        if bounds.min is not None:
            below = values[values < bounds.min]
            if below.size:
                out.append(
                    Violation(
                        check="range",
                        column=name,
                        message=f"column {name!r}: {below.size} values below min {bounds.min:g} "
                        f"(lowest {below.min():g})",
                        value=float(below.min()),
                        bound=bounds.min,
                    )
                )
        if bounds.max is not None:
            above = values[values > bounds.max]
            if above.size:
                out.append(
                    Violation(
                        check="range",
                        column=name,
                        message=f"column {name!r}: {above.size} values above max {bounds.max:g} "
                        f"(highest {above.max():g})",
                        value=float(above.max()),
                        bound=bounds.max,
                    )
                )
    return out


def _check_nulls(frame: pd.DataFrame, max_fraction: float, columns: list[str]) -> list[Violation]:
    out: list[Violation] = []
    if len(frame) == 0:
        return out
    fractions = frame[columns].isna().mean()
    for name, fraction in fractions.items():
        if fraction > max_fraction:
            out.append(
                Violation(
                    check="null_fraction",
                    column=str(name),
                    message=f"column {name!r} has {fraction:.1%} missing values (max {max_fraction:.1%})",
                    value=float(fraction),
                    bound=max_fraction,
                )
            )
    return out


def _names(columns: pd.Index, limit: int = 10) -> str:
    shown = ", ".join(repr(str(c)) for c in columns[:limit])
    return shown + (f" and {len(columns) - limit} more" if len(columns) > limit else "")


def _check_target(frame: pd.DataFrame, target: str) -> list[Violation]:
    if target not in frame.columns:
        found = f"columns found: {_names(frame.columns)}" if len(frame.columns) else "no columns found"
        message = f"target column {target!r} is missing ({found})"
        return [Violation(check="target", column=target, message=message)]
    missing = int(frame[target].isna().sum())
    if missing:
        return [
            Violation(
                check="target",
                column=target,
                message=f"target column {target!r} has {missing} missing values; every row needs a label",
                value=float(missing),
                bound=0.0,
            )
        ]
    return []


def feature_columns(frame: pd.DataFrame, spec: DataSpec) -> list[str]:
    """Every column except the target and the group column, in file order."""
    return [c for c in frame.columns if c not in (spec.target, spec.group_column)]


def _check_feature_types(
    frame: pd.DataFrame, features: list[str], declared: dict[str, ColumnType]
) -> list[Violation]:
    out: list[Violation] = []
    if not features:
        out.append(
            Violation(
                check="features", message="the data has no feature columns besides the target (and group)"
            )
        )
    for name in features:
        if name not in declared and infer_type(frame[name]) is None:
            out.append(
                Violation(
                    check="type",
                    column=str(name),
                    message=f"column {name!r} has unsupported type {frame[name].dtype} "
                    "(supported: int, float, string, bool)",
                )
            )
    return out


def _check_classes(frame: pd.DataFrame, target: str, learner: Learner) -> list[Violation]:
    """A target with one class (or one value, for a regressor) gives a model that has learned nothing."""
    labels = _non_null(frame[target])
    if len(labels) == 0 or labels.nunique() > 1:
        return []
    value = labels.iloc[0]
    if learner.task == "classification":
        message = (
            f"target column {target!r} holds a single class ({value!r}) in all {len(labels)} rows; "
            "a classifier needs at least two classes"
        )
    else:
        message = (
            f"target column {target!r} has the same value ({value!r}) in all {len(labels)} rows; "
            "a regressor has nothing to learn"
        )
    return [Violation(check="single_class", column=target, message=message, value=1.0, bound=2.0)]


def _numeric_columns(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    return [c for c in columns if ptypes.is_numeric_dtype(frame[c]) and not ptypes.is_bool_dtype(frame[c])]


def _check_infinite(frame: pd.DataFrame, columns: list[str]) -> list[Violation]:
    """No estimator is fitted or scored on +-inf: it is almost always a division by zero upstream."""
    out: list[Violation] = []
    for name in _numeric_columns(frame, columns):
        values = frame[name].to_numpy(dtype=float, na_value=np.nan)
        n = int(np.count_nonzero(np.isinf(values)))
        if n:
            out.append(
                Violation(
                    check="infinite",
                    column=str(name),
                    message=f"column {name!r} has {n} infinite values; replace or drop them",
                    value=float(n),
                    bound=0.0,
                )
            )
    return out


def _check_missing_for(
    frame: pd.DataFrame, features: list[str], learner: Learner, already: set[str]
) -> list[Violation]:
    """Missing numeric values, when the estimator cannot take them (a string column's gap is a category)."""
    if learner.accepts_missing or len(frame) == 0:
        return []
    out: list[Violation] = []
    numeric = [c for c in features if infer_type(frame[c]) in ("int", "float", "bool")]
    for name in numeric:
        n = int(frame[name].isna().sum())
        if n and name not in already:
            out.append(
                Violation(
                    check="missing_values",
                    column=str(name),
                    message=f"column {name!r} has {n} missing values ({n / len(frame):.1%} of rows) and "
                    f"{learner.name} does not declare support for them (scikit-learn's allow_nan tag); impute or "
                    "drop them, or use an estimator that handles them (e.g. HistGradientBoostingClassifier)",
                    value=float(n),
                    bound=0.0,
                )
            )
    return out


def _check_group(frame: pd.DataFrame, column: str) -> list[Violation]:
    if column not in frame.columns:
        return [Violation(check="group", column=column, message=f"group column {column!r} is missing")]
    missing = int(frame[column].isna().sum())
    if missing:
        message = f"group column {column!r} has {missing} missing values; every row needs a group"
        return [Violation(check="group", column=column, message=message, value=float(missing), bound=0.0)]
    groups = int(frame[column].nunique())
    if len(frame) and groups < 2:
        message = f"group column {column!r} has {groups} group(s); a split needs at least two"
        return [Violation(check="group", column=column, message=message, value=float(groups), bound=2.0)]
    return []


def check_data(frame: pd.DataFrame, spec: DataSpec, learner: Learner | None = None) -> list[Violation]:
    """Every violation of the data gate; an empty list means the data passed.

    ``learner`` adds the checks that depend on the estimator (single class, missing values it cannot
    take); without it only the data itself is checked.
    """
    validation = spec.validation or DataValidation()
    violations = _check_target(frame, spec.target)
    if len(frame) < validation.min_rows:
        violations.append(
            Violation(
                check="min_rows",
                message=f"the data has {len(frame)} rows, fewer than the minimum {validation.min_rows}",
                value=float(len(frame)),
                bound=float(validation.min_rows),
            )
        )
    violations += _check_types(frame, validation)
    violations += _check_ranges(frame, validation)
    features = feature_columns(frame, spec)
    violations += _check_feature_types(frame, features, validation.expected_columns)
    if spec.group_column is not None:
        violations += _check_group(frame, spec.group_column)
    if spec.validation is not None:
        violations += _check_nulls(frame, validation.max_null_fraction, features)
    target = [spec.target] if spec.target in frame.columns else []
    violations += _check_infinite(frame, features + target)
    if learner is not None:
        if target and not frame[spec.target].isna().any():
            violations += _check_classes(frame, spec.target, learner)
        flagged = {v.column for v in violations if v.check == "null_fraction" and v.column is not None}
        violations += _check_missing_for(frame, features, learner, flagged)
    return violations
