"""The data gate: every check the training data must pass before a model is fitted.

All checks run and every violation is reported, each naming its column and its numbers, so one failed
run tells the user everything that is wrong with the data instead of one problem per attempt.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from kubeloop.api import ColumnType, DataSpec, DataValidation
from kubeloop.contract import Violation
from pandas.api import types as ptypes


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


def _check_nulls(frame: pd.DataFrame, max_fraction: float, target: str) -> list[Violation]:
    out: list[Violation] = []
    if len(frame) == 0:
        return out
    fractions = frame.isna().mean()
    for name, fraction in fractions.items():
        if name != target and fraction > max_fraction:
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


def _check_target(frame: pd.DataFrame, target: str) -> list[Violation]:
    if target not in frame.columns:
        return [Violation(check="target", column=target, message=f"target column {target!r} is missing")]
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


def _check_feature_types(
    frame: pd.DataFrame, target: str, declared: dict[str, ColumnType]
) -> list[Violation]:
    out: list[Violation] = []
    features = [c for c in frame.columns if c != target]
    if not features:
        out.append(Violation(check="features", message="the data has no feature columns besides the target"))
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


def check_data(frame: pd.DataFrame, spec: DataSpec) -> list[Violation]:
    """Every violation of the data gate; an empty list means the data passed."""
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
    violations += _check_feature_types(frame, spec.target, validation.expected_columns)
    if spec.validation is not None:
        violations += _check_nulls(frame, validation.max_null_fraction, spec.target)
    return violations
