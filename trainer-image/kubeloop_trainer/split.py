"""The train/test split, drawn over groups of rows so that nothing the model memorised is in the test set.

A held-out row is only held out if the model has not seen it. Two things break that silently:

- **Copied rows.** A row repeated ten times (a join fan-out, an append that ran twice, oversampling
  before the split) lands on both sides of a row-wise split, and a memorising model looks up its own
  answer: a 1-nearest-neighbour regressor "scores" r2 = 1.0. Copies of one row therefore form one group
  and stay on one side. They are not dropped: the model still learns from every row it learned from
  before, so only the leak goes.

  Not every repeat is a copy. Rows made only of recurring values (a category, a small integer, a flag,
  a gap) can coincide as genuinely new observations: a table of country, plan and device repeats rows
  all the time, and live traffic will repeat them too. Holding such rows apart would hide whole
  combinations from the model and make the split lumpy. So identical rows count as copies only when they
  carry a value that no other distinct row has (a measurement such as 0.3172…, an id): such a value does
  not recur by chance. Every duplicate is counted and reported either way.
- **Entities with several rows** (a customer's months, a patient's visits). Rows of one entity share
  traits, so a model evaluated on other rows of the same entities looks better than it will on new
  ones. ``spec.data.groupColumn`` names the entity; its groups then stay whole (copies share a group
  there too, since the group id is one of their columns).

Without copies and without a group column every row is its own group, and the split is exactly
scikit-learn's row split (stratified for classification), as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from kubeloop.contract import TaskKind, Violation
from sklearn.model_selection import train_test_split

from kubeloop_trainer.errors import TrainerError
from kubeloop_trainer.progress import progress


def _refuse(message: str) -> TrainerError:
    return TrainerError("DataValidationFailed", message, [Violation(check="split", message=message)])


@dataclass(frozen=True)
class RowGroups:
    """The units of the split: a group code per row (0..n_groups-1, in order of first appearance)."""

    codes: np.ndarray
    n_groups: int
    duplicates: int  # rows identical to an earlier row (every column)
    repeated: int  # distinct rows that occur more than once
    copies: int  # duplicates kept together with their original (they carry a value no other row has)
    column: str | None  # the group column, or None when groups are copies


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    test: np.ndarray
    stratified: bool
    grouped: bool  # some group held more than one row


def _distinct_rows(frame: pd.DataFrame) -> tuple[np.ndarray, int]:
    """An id per row that equal rows share (missing values equal each other, as in ``duplicated``)."""
    if len(frame.columns) == 0:
        return np.zeros(len(frame), dtype=np.intp), min(len(frame), 1)
    grouper = frame.groupby(list(frame.columns), dropna=False, sort=False)
    return grouper.ngroup().to_numpy(dtype=np.intp), int(grouper.ngroups)


def _carries_own_value(frame: pd.DataFrame, first: np.ndarray) -> np.ndarray:
    """Per distinct row (given by its first row): whether one of its values occurs in no other distinct row."""
    distinct = frame.iloc[first]
    own = np.zeros(len(first), dtype=bool)
    for i in range(distinct.shape[1]):
        column = distinct.iloc[:, i]
        rows_with_value = column.map(column.value_counts(dropna=True))  # NaN for missing values
        own |= (rows_with_value == 1).to_numpy()
    return own


def row_groups(frame: pd.DataFrame, group_column: str | None) -> RowGroups:
    """The groups the split keeps whole: the group column's values, or else copies of one row.

    The group column must have no missing values; the data gate refuses it otherwise.
    """
    pattern, n_patterns = _distinct_rows(frame)
    sizes = np.bincount(pattern, minlength=n_patterns)
    duplicates, repeated = len(frame) - n_patterns, int(np.count_nonzero(sizes > 1))
    if group_column is not None:
        codes, uniques = pd.factorize(frame[group_column], sort=False)
        return RowGroups(codes.astype(np.intp), len(uniques), duplicates, repeated, duplicates, group_column)
    copies = 0
    key = n_patterns + np.arange(len(frame))  # every row its own group, unless it is a copy
    if duplicates:
        _, first = np.unique(pattern, return_index=True)  # the first row of every distinct row
        copied = (sizes > 1) & _carries_own_value(frame, first)
        copies = int((sizes[copied] - 1).sum())
        key = np.where(copied[pattern], pattern, key)
    codes, uniques = pd.factorize(key, sort=False)
    return RowGroups(codes.astype(np.intp), len(uniques), duplicates, repeated, copies, None)


def _group_labels(y: np.ndarray, codes: np.ndarray) -> np.ndarray | None:
    """Each group's class, when every group holds a single class (else stratifying groups means nothing)."""
    _, first = np.unique(codes, return_index=True)  # the first row of every group (codes are 0..n-1)
    labels = y[first]
    return labels if bool(np.all(labels[codes] == y)) else None


def split_rows(
    y: np.ndarray, task: TaskKind, test_size: float, seed: int, groups: np.ndarray | None = None
) -> Split:
    """Row indices of the train and test split; whole groups, stratified for classification when possible.

    ``groups`` is a group code per row (``RowGroups.codes``); None means every row is its own group.
    With real groups, ``test_size`` is the share of groups held out.
    """
    n = len(y)
    codes = np.arange(n) if groups is None else np.asarray(groups)
    n_groups = int(codes.max()) + 1 if n else 0
    grouped = n_groups < n
    units = np.arange(n_groups)
    stratify = None
    if task == "classification":
        stratify = _group_labels(y, codes) if grouped else y
    stratified = False
    train_units = test_units = None
    if stratify is not None:
        try:
            train_units, test_units = train_test_split(
                units, test_size=test_size, random_state=seed, stratify=stratify
            )
            stratified = True
        except ValueError as e:  # a class with a single row (group), or fewer test rows than classes
            progress(f"cannot stratify the split ({e}); splitting at random")
    if train_units is None or test_units is None:
        try:
            train_units, test_units = train_test_split(units, test_size=test_size, random_state=seed)
        except ValueError as e:
            what = f"{n_groups} groups of rows" if grouped else f"{n} rows"
            raise _refuse(f"cannot split {what}: {e}") from e
    if grouped:
        in_test = np.zeros(n_groups, dtype=bool)
        in_test[test_units] = True
        rows = np.arange(n)
        split = Split(rows[~in_test[codes]], rows[in_test[codes]], stratified, grouped)
    else:
        split = Split(np.sort(train_units), np.sort(test_units), stratified, grouped)
    if task == "classification" and len(np.unique(y[split.train])) < 2:
        raise _refuse(
            f"the training side of the split holds only the class {y[split.train][0]!r}; "
            "a classifier needs at least two classes to learn from (more rows or groups per class help)"
        )
    return split
