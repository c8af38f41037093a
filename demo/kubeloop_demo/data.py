"""The demo's data: scikit-learn's bundled iris measurements, and the same world after one feature moved.

Live traffic is drawn from a dataset by resampling its rows (exact values, no jitter): iris is measured to
0.1 cm and the reference profile's bins end on data values, so jittered values would straddle bin edges and
look like drift that is not there.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from kubeloop.api import ColumnType, DataValidation, ValueRange

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
TARGET = "species"


@dataclass(frozen=True)
class Dataset:
    """Feature rows (in FEATURES order) and their labels; `label` says which world they come from."""

    features: np.ndarray  # (rows, len(FEATURES)) float64
    labels: np.ndarray  # (rows,) int64: 0 setosa, 1 versicolor, 2 virginica
    label: str = "iris"

    def shifted(self, feature: str, delta: float) -> Dataset:
        """The same rows with `feature` moved by `delta`: the world after a change upstream."""
        moved = self.features.copy()
        moved[:, FEATURES.index(feature)] += delta
        return Dataset(np.round(moved, 6), self.labels, f"{self.label}, {feature} {delta:+g}")

    def sample(self, rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """`rows` rows drawn with replacement: traffic from this dataset's distribution."""
        index = rng.integers(0, len(self.labels), rows)
        return self.features[index], self.labels[index]

    def to_csv(self) -> bytes:
        out = io.StringIO()
        out.write(",".join((*FEATURES, TARGET)) + "\n")
        for row, label in zip(self.features, self.labels, strict=True):
            out.write(",".join(f"{v:g}" for v in row) + f",{int(label)}\n")
        return out.getvalue().encode()


def iris() -> Dataset:
    from sklearn.datasets import load_iris  # bundled with scikit-learn: no download

    bunch = load_iris()
    return Dataset(np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64))


def data_gate(min_rows: int = 100) -> DataValidation:
    """The data gate of the demo's TrainingRuns: every column typed, lengths within 0-20 cm, no gaps."""
    columns: dict[str, ColumnType] = {name: "float" for name in FEATURES}
    columns[TARGET] = "int"
    return DataValidation(
        expected_columns=columns,
        ranges={name: ValueRange(min=0.0, max=20.0) for name in FEATURES},
        max_null_fraction=0.0,
        min_rows=min_rows,
    )
