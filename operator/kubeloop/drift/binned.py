"""Binned drift statistics over many features at once.

Every function takes two count matrices of shape ``(features, bins)``: the reference counts and the live
counts over the same bins. A feature with fewer bins is padded with zeros; a bin that is empty on both
sides carries no information and is ignored everywhere (it adds nothing to a statistic and no degree of
freedom), so padding is harmless. Cost is ``O(features x bins)`` and does not depend on the number of rows.

A row whose reference or live total is zero yields NaN: the caller decides what "no data" means.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import special, stats

__all__ = [
    "ChiSquaredResult",
    "as_counts",
    "chi2_test",
    "js_distance",
    "ks_distance",
    "pool_sparse_bins",
    "psi",
    "stack_counts",
]


def as_counts(counts: np.ndarray) -> np.ndarray:
    """A float64 ``(features, bins)`` view of a count vector or matrix."""
    arr = np.asarray(counts, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"counts must be 1-D or 2-D, got shape {arr.shape}")
    if np.any(arr < 0):
        raise ValueError("counts must be non-negative")
    return arr


def _pair(reference: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, cur = as_counts(reference), as_counts(live)
    if ref.shape != cur.shape:
        raise ValueError(f"reference {ref.shape} and live {cur.shape} counts differ in shape")
    return ref, cur


def stack_counts(rows: list[np.ndarray]) -> np.ndarray:
    """Stack count vectors of different lengths into one zero-padded ``(features, bins)`` matrix."""
    width = max((len(r) for r in rows), default=0)
    out = np.zeros((len(rows), width))
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def _proportions(counts: np.ndarray, active: np.ndarray, pseudo_count: float) -> np.ndarray:
    smoothed = np.where(active, counts + pseudo_count, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return smoothed / smoothed.sum(axis=1, keepdims=True)


def psi(reference: np.ndarray, live: np.ndarray, *, pseudo_count: float = 0.5) -> np.ndarray:
    """Population Stability Index ``sum((l - r) * ln(l / r))`` per feature.

    An empty bin would make PSI infinite, so ``pseudo_count`` is added to every active bin on both sides
    before normalising (additive, Jeffreys-style smoothing; 0.5 by default). ``pseudo_count=0`` gives the
    textbook formula, infinite as soon as one side has an empty bin the other side uses.
    """
    ref, cur = _pair(reference, live)
    active = (ref + cur) > 0
    r = _proportions(ref, active, pseudo_count)
    q = _proportions(cur, active, pseudo_count)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(active, (q - r) * (np.log(q) - np.log(r)), 0.0)
    out = terms.sum(axis=1)
    out[(ref.sum(axis=1) == 0) | (cur.sum(axis=1) == 0)] = np.nan
    return out


def js_distance(reference: np.ndarray, live: np.ndarray, *, base: float = 2.0) -> np.ndarray:
    """Jensen-Shannon distance (the square root of the divergence), as ``scipy.spatial.distance``.

    No smoothing is needed: the mixture is positive wherever either side is, and ``0 ln 0 = 0``. With the
    default base 2 the distance lies in ``[0, 1]``.
    """
    ref, cur = _pair(reference, live)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = ref / ref.sum(axis=1, keepdims=True)
        q = cur / cur.sum(axis=1, keepdims=True)
    m = (p + q) / 2.0
    divergence = (special.rel_entr(p, m) + special.rel_entr(q, m)).sum(axis=1) / 2.0
    if base is not None:
        divergence /= np.log(base)
    # Rounding can leave a tiny negative divergence for identical distributions.
    return np.sqrt(np.maximum(divergence, 0.0))


def ks_distance(reference: np.ndarray, live: np.ndarray) -> np.ndarray:
    """Two-sample Kolmogorov-Smirnov statistic on ordered bins: ``max_k |R_k / n - L_k / m|``.

    ``R_k`` and ``L_k`` are the cumulative counts up to bin ``k``, so this is exactly
    ``scipy.stats.ks_2samp`` applied to the rows with every value replaced by its bin (the empirical CDFs
    read at the bin edges). Against the exact statistic on the raw rows it can only be smaller, by at most
    the largest share of either side in a single bin: on the profile's ten quantile bins a within-bin
    change of shape goes unseen, a shift of location or scale does not. Bins must be ordered (numeric
    features); the order of categories means nothing, so categorical features never use it.
    """
    ref, cur = _pair(reference, live)
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.cumsum(ref, axis=1) / ref.sum(axis=1, keepdims=True)
        gap -= np.cumsum(cur, axis=1) / cur.sum(axis=1, keepdims=True)
    return np.abs(gap).max(axis=1, initial=0.0)


class ChiSquaredResult(NamedTuple):
    statistic: np.ndarray
    p_value: np.ndarray
    dof: np.ndarray


def chi2_test(reference: np.ndarray, live: np.ndarray, *, correction: bool = False) -> ChiSquaredResult:
    """Pearson's chi-squared test of homogeneity on the 2 x bins table of each feature.

    Equals ``scipy.stats.chi2_contingency([ref, live], correction=correction)`` on the active bins. Both
    samples are treated as samples: the reference counts are not taken as the true distribution, so the
    test accounts for the reference's own sampling noise (the ``1/n`` in ``1/n + 1/m``). A feature whose
    rows all fall into one active bin has no degree of freedom: statistic 0, p-value 1.
    """
    ref, cur = _pair(reference, live)
    observed = np.stack([ref, cur], axis=1)  # (features, 2, bins)
    col = observed.sum(axis=1, keepdims=True)
    row = observed.sum(axis=2, keepdims=True)
    total = row.sum(axis=1, keepdims=True)
    active = col > 0
    dof = active.sum(axis=2)[:, 0] - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = row * col / total
        if correction:
            # Yates' continuity correction, applied by scipy only when there is one degree of freedom.
            diff = expected - observed
            shift = np.sign(diff) * np.minimum(0.5, np.abs(diff))
            observed = np.where((dof == 1)[:, None, None], observed + shift, observed)
        terms = np.where(active, (observed - expected) ** 2 / expected, 0.0)
    statistic = terms.sum(axis=(1, 2))
    empty = (row[:, :, 0] == 0).any(axis=1)
    statistic[dof <= 0] = 0.0
    p_value = np.where(dof > 0, stats.chi2.sf(statistic, np.maximum(dof, 1)), 1.0)
    statistic[empty] = np.nan
    p_value[empty] = np.nan
    return ChiSquaredResult(statistic, p_value, np.maximum(dof, 0))


def pool_sparse_bins(
    reference: np.ndarray, live: np.ndarray, *, min_expected: float = 5.0
) -> tuple[np.ndarray, np.ndarray]:
    """Merge bins too sparse for the chi-squared approximation, returning ``(features, bins + 1)`` counts.

    A bin is sparse when its smaller expected count under homogeneity, ``min(n, m) * column / (n + m)``,
    is below ``min_expected`` (Cochran's rule). Sparse bins are summed into one extra bin; if that bin is
    still sparse it is merged into the smallest non-sparse bin. Pooling looks only at the column totals,
    which are ancillary under homogeneity, so the test stays valid. It also turns "an unseen category
    appeared a few times" into evidence weighed against its sample size instead of an infinite ratio.
    """
    ref, cur = _pair(reference, live)
    col = ref + cur
    n, m = ref.sum(axis=1, keepdims=True), cur.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        smaller_expected = np.minimum(n, m) * col / (n + m)
    sparse = (col > 0) & ~(smaller_expected >= min_expected)
    pooled_ref = np.concatenate([np.where(sparse, 0.0, ref), (ref * sparse).sum(1, keepdims=True)], axis=1)
    pooled_cur = np.concatenate([np.where(sparse, 0.0, cur), (cur * sparse).sum(1, keepdims=True)], axis=1)
    pooled_col = pooled_ref + pooled_cur
    with np.errstate(invalid="ignore", divide="ignore"):
        extra_sparse = np.minimum(n, m)[:, 0] * pooled_col[:, -1] / (n + m)[:, 0] < min_expected
    dense = np.where((pooled_col[:, :-1] > 0), pooled_col[:, :-1], np.inf)
    has_dense = np.isfinite(dense).any(axis=1)
    fold = extra_sparse & (pooled_col[:, -1] > 0) & has_dense
    rows = np.flatnonzero(fold)
    target = np.argmin(dense[rows], axis=1)
    for pooled in (pooled_ref, pooled_cur):
        pooled[rows, target] += pooled[rows, -1]
        pooled[rows, -1] = 0.0
    return pooled_ref, pooled_cur
