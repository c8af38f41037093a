import numpy as np
import pandas as pd
from kubeloop.api import DataSpec, DataValidation, ValueRange
from kubeloop_trainer.gate import check_data, conforms, infer_type


def _spec(**validation) -> DataSpec:
    return DataSpec(
        uri="file:///d.csv", target="y", validation=DataValidation(**validation) if validation else None
    )


def test_clean_data_passes():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": ["x", "y", "x"], "y": [0, 1, 0]})
    spec = _spec(
        expected_columns={"a": "float", "b": "string", "y": "int"}, ranges={"a": ValueRange(min=0, max=5)}
    )
    assert check_data(frame, spec) == []


def test_every_violation_is_reported_by_name():
    frame = pd.DataFrame(
        {
            "age": [25, -3, 40, 130],
            "income": [1.0, None, None, 3.0],
            "city": [1.5, 2.5, 3.5, 4.5],
            "y": [0, 1, None, 1],
        }
    )
    spec = _spec(
        expected_columns={"age": "int", "city": "string", "zip": "string"},
        ranges={"age": ValueRange(min=0, max=120)},
        max_null_fraction=0.25,
        min_rows=10,
    )
    violations = check_data(frame, spec)
    found = {(v.check, v.column) for v in violations}
    assert found == {
        ("target", "y"),
        ("min_rows", None),
        ("missing_column", "zip"),
        ("type", "city"),
        ("range", "age"),  # below min
        ("null_fraction", "income"),
    }
    by_check = {}
    for v in violations:
        by_check.setdefault((v.check, v.column), []).append(v)
    assert len(by_check[("range", "age")]) == 2  # one below min, one above max
    low, high = sorted(by_check[("range", "age")], key=lambda v: v.value)
    assert (low.value, low.bound) == (-3.0, 0.0) and "1 values below min 0" in low.message
    assert (high.value, high.bound) == (130.0, 120.0)
    nulls = by_check[("null_fraction", "income")][0]
    assert nulls.value == 0.5 and nulls.bound == 0.25 and "50.0% missing" in nulls.message
    assert "should be string but holds float" in by_check[("type", "city")][0].message
    assert by_check[("min_rows", None)][0].value == 4
    assert "1 missing values" in by_check[("target", "y")][0].message


def test_missing_target_and_no_validation():
    frame = pd.DataFrame({"a": [1, 2]})
    violations = check_data(frame, _spec())
    assert [(v.check, v.column) for v in violations] == [("target", "y")]
    assert violations[0].message == "target column 'y' is missing (columns found: 'a')"


def test_unsupported_feature_type_is_named():
    frame = pd.DataFrame({"when": pd.to_datetime(["2024-01-01", "2024-01-02"]), "y": [0, 1]})
    violations = check_data(frame, _spec())
    assert [(v.check, v.column) for v in violations] == [("type", "when")]


def test_range_on_text_column():
    frame = pd.DataFrame({"s": ["a", "b"], "y": [0, 1]})
    violations = check_data(frame, _spec(ranges={"s": ValueRange(min=0)}))
    assert [(v.check, v.column) for v in violations] == [("range", "s")]


def test_types():
    assert infer_type(pd.Series([1, 2])) == "int"
    assert infer_type(pd.Series([1.5, 2])) == "float"
    assert infer_type(pd.Series([True, False])) == "bool"
    assert infer_type(pd.Series([True, None], dtype=object)) == "bool"
    assert infer_type(pd.Series(["a", None])) == "string"
    # an int column with a missing value is parsed as float, and still conforms to int
    assert conforms(pd.Series([1.0, np.nan, 3.0]), "int")
    assert not conforms(pd.Series([1.5, 3.0]), "int")
    assert conforms(pd.Series([1, 2]), "float")
    assert not conforms(pd.Series([True, False]), "int")


def test_target_only_data_has_no_features():
    violations = check_data(pd.DataFrame({"y": [0, 1]}), _spec())
    assert [(v.check, v.column) for v in violations] == [("features", None)]
