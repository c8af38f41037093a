"""The reference drift profile: what the training data looked like, in a form that live traffic can be
compared with cheaply.

A numeric feature keeps quantile bin edges and the reference counts over them; a categorical feature keeps
its categories and their counts; numeric features also keep a bounded random sample for the sample-based
tests (Kolmogorov-Smirnov, Wasserstein). The trainer writes the profile, the server counts live values over
the same bins with :func:`count_numeric` / :func:`count_categorical`, and the operator compares the two.

Conventions (the server and the operator rely on them):

- Numeric bins are right-closed: ``(-inf, e0], (e0, e1], ..., (ek, inf)``. NaN is not binned (it says
  nothing about the distribution of the values that are there); +-inf falls into the outer bins.
- Edges are reference quantiles ``1/B, ..., (B-1)/B`` taken as actual data values (``inverted_cdf``) and
  de-duplicated. A discrete feature therefore gets fewer than ``B`` bins and a value never straddles an edge.
  A constant feature ``c`` gets the edges ``[c-, c]`` (``c-`` is the float just below ``c``), i.e. the
  bins "below c", "exactly c" and "above c", so a move in either direction shows.
- Categorical values are compared as ``str``; ``None`` and float NaN are missing and ignored, like NaN in
  numeric features. The last bucket counts every value that is not one of ``categories`` ("unseen").
- Missing values are kept out of the bins but counted: ``missing[name]`` is how many reference rows had
  none, so ``missing + sum(counts) == n_rows`` for every feature, and a rise of the missing rate is a
  drift signal of its own (see :func:`kubeloop.drift.decision.missing_rate_test`).
  Categories are ordered by descending reference count (ties by name); when there are more than
  ``max_categories`` the rarest ones are folded into that last bucket, so it then also holds reference mass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from math import isnan

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "CategoricalReference",
    "DriftProfile",
    "NumericReference",
    "build_profile",
    "count_categorical",
    "count_numeric",
]


class NumericReference(BaseModel):
    """Reference histogram of one numeric feature."""

    model_config = ConfigDict(frozen=True)

    edges: list[float] = Field(
        description="Interior cut points, strictly increasing; bins are (-inf, e0], (e0, e1], ..., (ek, inf)."
    )
    counts: list[int] = Field(description="Reference counts per bin; len(edges) + 1.")

    @model_validator(mode="after")
    def _check_shape(self) -> NumericReference:
        if len(self.counts) != len(self.edges) + 1:
            raise ValueError(f"counts must have len(edges) + 1 = {len(self.edges) + 1} entries")
        edges = np.asarray(self.edges, dtype=float)
        if not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
            raise ValueError("edges must be finite and strictly increasing")
        if any(c < 0 for c in self.counts):
            raise ValueError("counts must be non-negative")
        return self


class CategoricalReference(BaseModel):
    """Reference frequencies of one categorical feature."""

    model_config = ConfigDict(frozen=True)

    categories: list[str] = Field(description="Reference categories; values are compared as str.")
    counts: list[int] = Field(
        description="Reference counts per category, plus a last bucket for values not in `categories`."
    )

    @model_validator(mode="after")
    def _check_shape(self) -> CategoricalReference:
        if len(self.counts) != len(self.categories) + 1:
            raise ValueError(f"counts must have len(categories) + 1 = {len(self.categories) + 1} entries")
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("categories must be unique")
        if any(c < 0 for c in self.counts):
            raise ValueError("counts must be non-negative")
        return self


class DriftProfile(BaseModel):
    """Everything the drift statistics need to know about the training data."""

    model_config = ConfigDict(frozen=True)

    n_rows: int = Field(ge=0, description="Rows in the reference data.")
    numeric: dict[str, NumericReference] = Field(default_factory=dict, description="Numeric features.")
    categorical: dict[str, CategoricalReference] = Field(
        default_factory=dict, description="Categorical features."
    )
    sample: dict[str, list[float]] = Field(
        default_factory=dict,
        description="Bounded random sample of each numeric feature's finite values, sorted ascending.",
    )
    missing: dict[str, int] = Field(
        default_factory=dict,
        description="Reference rows without a value (NaN, None) per feature; missing + sum(counts) = n_rows.",
    )

    @model_validator(mode="before")
    @classmethod
    def _missing_from_totals(cls, data: object) -> object:
        """A profile written before ``missing`` existed: its counts and ``n_rows`` imply it exactly."""
        if not isinstance(data, dict) or data.get("missing") is not None:
            return data
        n_rows = data.get("n_rows")
        if not isinstance(n_rows, int):
            return data
        missing = {}
        for kind in ("numeric", "categorical"):
            for name, ref in (data.get(kind) or {}).items():
                if isinstance(ref, NumericReference | CategoricalReference):
                    counts = ref.counts
                else:
                    counts = ref.get("counts") if isinstance(ref, dict) else None
                # A hand-made profile whose counts exceed n_rows implies nothing: no missing-rate test.
                if (
                    isinstance(counts, list)
                    and all(isinstance(c, int) for c in counts)
                    and sum(counts) <= n_rows
                ):
                    missing[name] = n_rows - sum(counts)
        return {**data, "missing": missing}

    @model_validator(mode="after")
    def _missing_adds_up(self) -> DriftProfile:
        refs: dict[str, NumericReference | CategoricalReference] = {**self.numeric, **self.categorical}
        for name, n in self.missing.items():
            ref = refs.get(name)
            if ref is None:
                raise ValueError(f"missing count for {name!r}, which is not a feature of the profile")
            if n < 0 or n + sum(ref.counts) != self.n_rows:
                raise ValueError(
                    f"{name}: {n} missing + {sum(ref.counts)} counted values must be n_rows = {self.n_rows}"
                )
        return self

    def missing_rate(self, name: str) -> float:
        """The share of reference rows without a value for ``name`` (0 for an empty profile)."""
        return self.missing[name] / self.n_rows if self.n_rows else 0.0

    @field_validator("sample")
    @classmethod
    def _sorted_sample(cls, sample: dict[str, list[float]]) -> dict[str, list[float]]:
        # KS and Wasserstein skip sorting the reference; a hand-written profile must not break that.
        return {name: sorted(values) for name, values in sample.items()}


def quantile_edges(values: np.ndarray, n_bins: int) -> list[float]:
    """Interior edges at the reference quantiles, de-duplicated (see the module docstring)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    lo, hi = float(finite.min()), float(finite.max())
    if lo == hi:
        return [float(np.nextafter(lo, -np.inf)), lo]
    probs = np.arange(1, n_bins) / n_bins
    edges = np.unique(np.quantile(finite, probs, method="inverted_cdf"))
    return [float(e) for e in edges]


def count_numeric(ref: NumericReference, values: np.ndarray) -> np.ndarray:
    """Counts of ``values`` on the reference bins (int64, ``len(edges) + 1``); NaN is ignored."""
    arr = np.asarray(values, dtype=float).ravel()
    edges = np.asarray(ref.edges, dtype=float)
    missing = np.count_nonzero(np.isnan(arr))
    if len(edges) <= _FEW_EDGES:
        # One vectorised pass per edge (NaN compares false) beats a binary search per value: about 14x
        # for 10 bins. Bin k holds (e_k-1, e_k], i.e. #(v <= e_k) - #(v <= e_k-1).
        at_most = [np.count_nonzero(arr <= e) for e in edges]
        return np.diff(np.array([0, *at_most, arr.size - missing], dtype=np.int64))
    # side="left" gives the first edge >= v, the index of the right-closed bin holding v; NaN sorts last.
    counts = np.bincount(np.searchsorted(edges, arr, side="left"), minlength=len(edges) + 1)
    counts[-1] -= missing
    return counts.astype(np.int64)


# Up to this many edges, count_numeric compares instead of searching.
_FEW_EDGES = 64
# Integer categories spanning up to this many values are counted with bincount instead of a sort.
_DENSE_INT_RANGE = 1 << 20


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float | np.floating) and isnan(value))


def _category_counts(values: Sequence | np.ndarray) -> Counter[str]:
    if isinstance(values, np.ndarray) and values.dtype.kind in "biufUS":
        # Typed arrays are counted in C; str() of a numpy scalar equals str() of the Python value.
        arr = values.ravel()
        if arr.dtype.kind == "f":
            arr = arr[~np.isnan(arr)]
        if arr.dtype.kind in "iu" and arr.size and int(arr.max()) - int(arr.min()) < _DENSE_INT_RANGE:
            low = int(arr.min())
            dense = np.bincount((arr - low).astype(np.intp))
            seen = np.flatnonzero(dense)
            return Counter({str(low + int(k)): int(dense[k]) for k in seen})
        keys, counts = np.unique(arr, return_counts=True)
        return Counter({str(k): int(n) for k, n in zip(keys, counts, strict=True)})
    return Counter(str(v) for v in values if not _is_missing(v))


def count_categorical(ref: CategoricalReference, values: Sequence | np.ndarray) -> np.ndarray:
    """Counts per reference category plus a last "unseen" bucket (int64); None/NaN are ignored."""
    index = {c: i for i, c in enumerate(ref.categories)}
    out = np.zeros(len(ref.categories) + 1, dtype=np.int64)
    unseen = len(ref.categories)
    for key, n in _category_counts(values).items():
        out[index.get(key, unseen)] += n
    return out


def _categorical_reference(values: np.ndarray, max_categories: int) -> CategoricalReference:
    counted = sorted(_category_counts(values).items(), key=lambda kv: (-kv[1], kv[0]))
    kept, folded = counted[:max_categories], counted[max_categories:]
    return CategoricalReference(
        categories=[k for k, _ in kept],
        counts=[n for _, n in kept] + [sum(n for _, n in folded)],
    )


def _sample(values: np.ndarray, size: int, rng: np.random.Generator) -> list[float]:
    finite = values[np.isfinite(values)]
    if finite.size > size:
        finite = rng.choice(finite, size=size, replace=False)
    return [float(v) for v in np.sort(finite)]


def build_profile(
    numeric: Mapping[str, np.ndarray],
    categorical: Mapping[str, np.ndarray],
    *,
    n_bins: int = 10,
    sample_size: int = 1000,
    seed: int = 0,
    max_categories: int = 100,
) -> DriftProfile:
    """Profile the reference data: quantile bins and counts, category counts, and a bounded sample.

    All columns must have the same number of rows. ``seed`` makes the sample reproducible.
    """
    if n_bins < 2:
        raise ValueError("n_bins must be at least 2")
    if sample_size < 0 or max_categories < 0:
        raise ValueError("sample_size and max_categories must be non-negative")
    lengths = {len(v) for v in (*numeric.values(), *categorical.values())}
    if len(lengths) > 1:
        raise ValueError(f"all columns must have the same length, got {sorted(lengths)}")
    overlap = set(numeric) & set(categorical)
    if overlap:
        raise ValueError(f"features both numeric and categorical: {sorted(overlap)}")
    rng = np.random.default_rng(seed)
    numeric_refs: dict[str, NumericReference] = {}
    samples: dict[str, list[float]] = {}
    missing: dict[str, int] = {}
    for name, column in numeric.items():
        arr = np.asarray(column, dtype=float).ravel()
        edges = quantile_edges(arr, n_bins)
        counts = count_numeric(NumericReference(edges=edges, counts=[0] * (len(edges) + 1)), arr)
        numeric_refs[name] = NumericReference(edges=edges, counts=counts.tolist())
        samples[name] = _sample(arr, sample_size, rng)
        missing[name] = int(np.count_nonzero(np.isnan(arr)))
    categorical_refs = {}
    for name, column in categorical.items():
        values = np.asarray(column).ravel()
        categorical_refs[name] = _categorical_reference(values, max_categories)
        missing[name] = values.size - sum(categorical_refs[name].counts)
    return DriftProfile(
        n_rows=lengths.pop() if lengths else 0,
        numeric=numeric_refs,
        categorical=categorical_refs,
        sample=samples,
        missing=missing,
    )
