"""Gates that must not pass nonsense: one class, duplicated rows, groups, nulls and infinities, binary files.

Each case runs the real ``run_training`` on a local file, because the review found these through the
entrypoint: a model was written and reported with a perfect score, or the failure was mislabelled.
"""

import numpy as np
import pandas as pd
import pytest
from kubeloop.contract import EXIT_CODES, TrainerTask, permanent_exit_codes
from kubeloop_trainer.artifact import read_artifact
from kubeloop_trainer.errors import TrainerError
from kubeloop_trainer.train import run_training

SKLEARN = ("sklearn.",)


def _task(path, out, *, target="y", estimator="sklearn.tree.DecisionTreeClassifier", params=None, **data):
    return TrainerTask.model_validate(
        {
            "model": "m",
            "data": {"uri": f"file://{path}", "target": target, **data},
            "estimator": {"classPath": estimator, "params": params or {}},
            "artifactUri": f"file://{out}",
            "seed": 0,
        }
    )


def _refused(task) -> TrainerError:
    with pytest.raises(TrainerError) as err:
        run_training(task, {})
    return err.value


def _csv(tmp_path, frame: pd.DataFrame, name="d.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_a_single_class_target_is_refused_for_a_classifier(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200), "y": ["churned"] * 200})
    err = _refused(_task(_csv(tmp_path, frame), tmp_path / "o"))
    assert err.reason == "DataValidationFailed"
    assert EXIT_CODES[err.reason] in permanent_exit_codes()
    [violation] = err.violations
    assert (violation.check, violation.column) == ("single_class", "y")
    assert "'y'" in violation.message and "'churned'" in violation.message
    assert "at least two classes" in err.message


def test_a_constant_target_is_refused_for_a_regressor(tmp_path):
    frame = pd.DataFrame({"a": np.arange(100.0), "y": [3.5] * 100})
    err = _refused(_task(_csv(tmp_path, frame), tmp_path / "o", estimator="sklearn.linear_model.Ridge"))
    assert err.reason == "DataValidationFailed"
    assert [(v.check, v.column) for v in err.violations] == [("single_class", "y")]
    assert "3.5" in err.violations[0].message


def _duplicated(copies: int = 10, distinct: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = pd.DataFrame({"a": rng.normal(size=distinct), "b": rng.normal(size=distinct)})
    base["y"] = base["a"] + 0.5 * base["b"] + rng.normal(scale=0.5, size=distinct)
    frame = pd.concat([base] * copies, ignore_index=True)
    return frame.sample(frac=1.0, random_state=1).reset_index(drop=True)


def test_duplicated_rows_never_straddle_the_split(tmp_path, capsys):
    # The review's case: every row 10x, and a 1-NN regressor "scores" r2 = 1.0 by looking up its twin.
    frame = _duplicated()
    task = _task(
        _csv(tmp_path, frame),
        tmp_path / "o",
        estimator="sklearn.neighbors.KNeighborsRegressor",
        params={"n_neighbors": 1},
    )
    summary = run_training(task, {})
    assert summary.metrics["r2"] < 0.95
    assert summary.train_rows + summary.test_rows == 400
    assert summary.test_rows % 10 == 0  # whole copies only
    out = capsys.readouterr().out
    assert "360 duplicate rows (copies of 40 distinct rows)" in out


def test_split_keeps_identical_rows_together():
    from kubeloop_trainer.split import row_groups, split_rows

    frame = _duplicated(copies=3, distinct=50)
    groups = row_groups(frame, group_column=None)
    assert groups.duplicates == 100 and groups.n_groups == 50
    split = split_rows(frame["y"].to_numpy(), "regression", 0.25, seed=0, groups=groups.codes)
    train = {tuple(r) for r in frame.iloc[split.train].to_numpy()}
    test = {tuple(r) for r in frame.iloc[split.test].to_numpy()}
    assert train.isdisjoint(test)
    assert len(split.train) + len(split.test) == 150


def test_without_duplicates_the_split_is_unchanged():
    # No duplicate and no group column: the same rows as a plain stratified train_test_split.
    from kubeloop_trainer.split import row_groups, split_rows
    from sklearn.model_selection import train_test_split

    y = np.array(["a", "b", "c"] * 40)
    frame = pd.DataFrame({"x": np.arange(120.0), "y": y})
    groups = row_groups(frame, group_column=None)
    assert groups.duplicates == 0
    split = split_rows(y, "classification", 0.25, seed=3, groups=groups.codes)
    _, test = train_test_split(np.arange(120), test_size=0.25, random_state=3, stratify=y)
    assert split.test.tolist() == sorted(test.tolist()) and split.stratified


def test_group_column_keeps_each_group_on_one_side(tmp_path):
    rng = np.random.default_rng(2)
    patients = np.repeat([f"p{i:02d}" for i in range(40)], 5)
    risk = np.repeat(rng.normal(size=40), 5)  # a per-patient trait the rows share
    frame = pd.DataFrame(
        {
            "patient": patients,
            "a": risk + rng.normal(scale=0.1, size=200),
            "b": rng.normal(size=200),
            "y": np.where(risk > 0, "high", "low"),
        }
    )
    from kubeloop_trainer.split import row_groups, split_rows

    summary = run_training(_task(_csv(tmp_path, frame), tmp_path / "o", groupColumn="patient"), {})
    assert summary.test_rows % 5 == 0 and summary.train_rows % 5 == 0
    art = read_artifact(summary.artifact_uri, SKLEARN, expected_digest=summary.digest)
    assert art.signature.feature_names == ["a", "b"]  # an id is not a feature
    groups = row_groups(frame, group_column="patient")
    assert groups.n_groups == 40
    split = split_rows(frame["y"].to_numpy(), "classification", 0.25, seed=0, groups=groups.codes)
    assert set(patients[split.train]).isdisjoint(patients[split.test])
    assert len(set(patients[split.test])) == 10  # test_size is a share of the groups


def test_a_group_column_that_is_missing_or_has_gaps_is_refused(tmp_path):
    frame = pd.DataFrame({"g": ["a", None] * 50, "x": np.arange(100.0), "y": [0, 1] * 50})
    err = _refused(_task(_csv(tmp_path, frame), tmp_path / "o", groupColumn="g"))
    assert [(v.check, v.column) for v in err.violations] == [("group", "g")]
    assert "50 missing values" in err.violations[0].message
    err = _refused(_task(_csv(tmp_path, frame), tmp_path / "o", groupColumn="patient"))
    assert [(v.check, v.column) for v in err.violations] == [("group", "patient")]


def test_nulls_and_infinities_fail_the_data_gate_without_a_validation_block(tmp_path):
    rng = np.random.default_rng(3)
    a = rng.normal(size=120)
    a[[3, 50, 77]] = np.nan
    b = rng.normal(size=120)
    b[[10, 11]] = [np.inf, -np.inf]
    frame = pd.DataFrame({"a": a, "b": b, "y": ["x", "z"] * 60})
    task = _task(_csv(tmp_path, frame), tmp_path / "o", estimator="sklearn.linear_model.LogisticRegression")
    assert task.data.validation is None
    err = _refused(task)
    assert err.reason == "DataValidationFailed"  # a data problem: permanent, never retried
    assert EXIT_CODES[err.reason] in permanent_exit_codes()
    found = {(v.check, v.column): v for v in err.violations}
    assert set(found) == {("missing_values", "a"), ("infinite", "b")}
    assert "3 missing values" in found[("missing_values", "a")].message
    assert "LogisticRegression" in found[("missing_values", "a")].message
    assert "2 infinite values" in found[("infinite", "b")].message
    assert err.data_hash and err.data_hash.startswith("sha256:")


def test_nulls_pass_for_an_estimator_that_handles_them_but_infinities_do_not(tmp_path):
    rng = np.random.default_rng(4)
    a = rng.normal(size=200)
    a[::7] = np.nan
    frame = pd.DataFrame({"a": a, "y": np.where(rng.normal(size=200) > 0, "x", "z")})
    hgb = "sklearn.ensemble.HistGradientBoostingClassifier"
    summary = run_training(_task(_csv(tmp_path, frame), tmp_path / "o", estimator=hgb), {})
    assert summary.test_rows == 50
    frame.loc[5, "a"] = np.inf
    err = _refused(_task(_csv(tmp_path, frame, "inf.csv"), tmp_path / "o2", estimator=hgb))
    assert [(v.check, v.column) for v in err.violations] == [("infinite", "a")]


def test_an_infinite_regression_target_is_refused(tmp_path):
    frame = pd.DataFrame({"a": np.arange(50.0), "y": [1.0, np.inf] * 25})
    err = _refused(_task(_csv(tmp_path, frame), tmp_path / "o", estimator="sklearn.linear_model.Ridge"))
    assert ("infinite", "y") in {(v.check, v.column) for v in err.violations}


@pytest.mark.parametrize(
    "raw",
    [
        bytes(4096),  # zeros: pandas reads one column named by NUL bytes, and no rows
        "a,y\n1,0\n2,1\n".encode("utf-16-le"),  # text in the wrong encoding: NUL between the letters
        b"\x00\x01binary\x00,y\n\x02\x03,1\n",
    ],
)
def test_a_binary_file_is_a_parse_error_not_a_missing_target(tmp_path, raw):
    path = tmp_path / "blob.csv"
    path.write_bytes(raw)
    err = _refused(_task(path, tmp_path / "o"))
    assert err.reason == "DataValidationFailed"
    assert err.message.startswith(f"could not parse file://{path} as csv: ")
    assert "binary" in err.message and "target" not in err.message
    assert [v.check for v in err.violations] == ["format"]


def test_a_parquet_file_read_as_csv_says_so(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"a": [1, 2], "y": [0, 1]}).to_parquet(path)
    err = _refused(_task(path, tmp_path / "o"))
    assert err.message.startswith(f"could not parse file://{path} as csv: ")
    assert "parquet" in err.message.split(": ", 1)[1]


def test_a_missing_target_names_the_columns_found(tmp_path):
    frame = pd.DataFrame({"a": [1, 2], "label": [0, 1]})
    err = _refused(_task(_csv(tmp_path, frame), tmp_path / "o"))
    assert err.violations[0].message == "target column 'y' is missing (columns found: 'a', 'label')"


def test_natural_repeats_of_recurring_values_split_row_by_row():
    # country x plan x label repeats all the time, and live traffic will repeat it too: not a leak
    from kubeloop_trainer.split import row_groups, split_rows
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "country": rng.choice(["de", "fr", "it", "es"], size=600),
            "plan": rng.choice(["basic", "pro"], size=600),
            "y": rng.choice(["stay", "churn"], size=600),
        }
    )
    groups = row_groups(frame, group_column=None)
    assert groups.duplicates == 600 - 16 and groups.repeated == 16 and groups.copies == 0
    y = frame["y"].to_numpy()
    split = split_rows(y, "classification", 0.25, seed=0, groups=groups.codes)
    _, test = train_test_split(np.arange(600), test_size=0.25, random_state=0, stratify=y)
    assert split.test.tolist() == sorted(test.tolist()) and not split.grouped


def test_only_copies_are_kept_together_when_both_kinds_repeat():
    from kubeloop_trainer.split import row_groups

    frame = pd.DataFrame(
        {"a": [0.31, 0.31, 0.31, 1.0, 1.0, 1.0, 2.0, np.nan, np.nan, np.nan], "k": list("xxxyyzyyyz")}
    )
    # (0.31, x) x3: 0.31 is in no other distinct row, so the two repeats are copies of the first.
    # (1.0, y) x2 and (NaN, y) x2: 1.0 and y recur in other rows, a gap is no value: they split freely.
    groups = row_groups(frame, group_column=None)
    assert (groups.duplicates, groups.repeated, groups.copies) == (4, 3, 2)
    assert groups.codes.tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]


def test_a_training_side_with_a_single_class_is_refused():
    from kubeloop_trainer.split import split_rows

    y = np.array(["a"] * 5 + ["b"] * 5)
    with pytest.raises(TrainerError) as err:
        split_rows(y, "classification", 0.5, seed=0, groups=np.repeat([0, 1], 5))
    assert err.value.reason == "DataValidationFailed" and [v.check for v in err.value.violations] == ["split"]
    assert "training side of the split holds only the class" in err.value.message


def test_the_group_column_must_not_be_the_target():
    from kubeloop.api import DataSpec
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="groupColumn must differ from the target"):
        DataSpec.model_validate({"uri": "file:///d.csv", "target": "y", "groupColumn": "y"})
