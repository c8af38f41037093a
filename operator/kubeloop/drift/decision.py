"""Scores and p-values under "no drift", and the multiple-testing control, vectorised over features.

Why p-values: under no drift PSI is about ``(1/n + 1/m) * chi2(B - 1)`` (its second-order expansion is
Pearson's statistic divided by ``nm / (n + m)``), so any fixed cut alarms on small windows and ignores real
drift on large ones. Every method is therefore turned into a p-value whose null distribution does not depend
on the window size, and a window alarms at a fixed rate ``alpha``:

- ChiSquared: Pearson's test of homogeneity on the 2 x bins table (sparse bins pooled first).
- PSI: ``PSI / (1/n + 1/m)`` against ``chi2(B - 1)``, i.e. drift when PSI exceeds the sample-size-aware
  critical value ``(1/n + 1/m) * chi2_{1-a}(B - 1)``.
- JensenShannon: the same for ``8 ln2 * JSD^2`` (base-2 distance), whose expansion is the same quadratic form.
- KS: Smirnov's distribution with the effective size ``nm / (n + m)``, on the counts (numeric bins are
  ordered, so the empirical CDFs can be read at the bin edges) or on samples.
- Wasserstein: a moment-matched approximation of its asymptotic null (see :mod:`kubeloop.drift.samples`).

Missing values get a test of their own, :func:`missing_rate_test`: whether the share of rows without a value
rose from the reference to the live window (Fisher's exact test, one-sided).

The reference enters every test as a sample of its own size (``n``), never as the truth; for the tests on
samples (KS without counts, Wasserstein) that size is the profile's bounded sample, not the training set.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from kubeloop.drift.binned import as_counts, chi2_test, js_distance, ks_distance, pool_sparse_bins, psi
from kubeloop.drift.report import Correction, DriftMethod
from kubeloop.drift.samples import ecdf_distances, ks_pvalue, wasserstein_pvalue

__all__ = [
    "BINNED_METHODS",
    "CATEGORICAL_METHODS",
    "SAMPLE_METHODS",
    "SAMPLE_ONLY_METHODS",
    "adjust_pvalues",
    "binned_test",
    "critical_pvalue",
    "missing_rate_test",
    "sample_test",
]

# Methods that work on counts; of those, KS needs ordered bins and so is for numeric features only.
BINNED_METHODS = frozenset(
    {DriftMethod.CHI_SQUARED, DriftMethod.PSI, DriftMethod.JENSEN_SHANNON, DriftMethod.KS}
)
CATEGORICAL_METHODS = BINNED_METHODS - {DriftMethod.KS}
SAMPLE_METHODS = frozenset({DriftMethod.KS, DriftMethod.WASSERSTEIN})
# Methods that need the live values themselves (a reservoir), because counts cannot give them.
SAMPLE_ONLY_METHODS = SAMPLE_METHODS - BINNED_METHODS


def _chi2_sf(statistic: np.ndarray, dof: np.ndarray) -> np.ndarray:
    return np.where(dof > 0, stats.chi2.sf(statistic, np.maximum(dof, 1)), 1.0)


def binned_test(
    reference: np.ndarray,
    live: np.ndarray,
    method: DriftMethod,
    *,
    min_expected: float = 5.0,
    pseudo_count: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Score and p-value per feature from ``(features, bins)`` reference and live counts.

    For the chi-squared family, bins too sparse for the approximation are pooled first
    (:func:`pool_sparse_bins`), and the score is computed on the pooled bins, so score and p-value describe
    the same table. KS keeps the bins as they are: pooling would break their order, and Smirnov's
    distribution needs no minimum count per bin (with ties it is conservative).
    """
    if method not in BINNED_METHODS:
        raise ValueError(f"{method} is not a binned method")
    if method == DriftMethod.KS:
        distance = ks_distance(reference, live)
        return distance, ks_pvalue(distance, as_counts(reference).sum(axis=1), as_counts(live).sum(axis=1))
    ref, cur = pool_sparse_bins(reference, live, min_expected=min_expected)
    chi = chi2_test(ref, cur)
    if method == DriftMethod.CHI_SQUARED:
        return chi.statistic, chi.p_value
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = 1.0 / ref.sum(axis=1) + 1.0 / cur.sum(axis=1)
    if method == DriftMethod.PSI:
        score = psi(ref, cur, pseudo_count=pseudo_count)
        quadratic = score
    else:
        score = js_distance(ref, cur, base=2.0)
        quadratic = 8.0 * np.log(2.0) * score**2
    with np.errstate(invalid="ignore", divide="ignore"):
        p_value = _chi2_sf(quadratic / scale, chi.dof)
    p_value[np.isnan(score)] = np.nan
    return score, p_value


def sample_test(
    reference: np.ndarray, live: np.ndarray, method: DriftMethod, *, reference_sorted: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Score, p-value, reference size and live size per feature from NaN-padded samples."""
    if method not in SAMPLE_METHODS:
        raise ValueError(f"{method} is not a sample method")
    dist = ecdf_distances(reference, live, reference_sorted=reference_sorted)
    if method == DriftMethod.KS:
        return dist.ks, ks_pvalue(dist.ks, dist.n_reference, dist.n_live), dist.n_reference, dist.n_live
    p_value = wasserstein_pvalue(dist.wasserstein, reference, live)
    return dist.wasserstein, p_value, dist.n_reference, dist.n_live


def missing_rate_test(
    reference_missing: np.ndarray,
    reference_rows: np.ndarray,
    live_missing: np.ndarray,
    live_rows: np.ndarray,
) -> np.ndarray:
    """One-sided p-value per feature that the live missing rate is no higher than the reference one.

    This is Fisher's exact test on the 2 x 2 table (missing, present) x (live, reference), alternative
    "greater": given the total number of missing values ``K`` among ``M`` rows, the live window's count
    under "no change" is hypergeometric, ``X ~ H(M, K, live_rows)``, and ``p = P(X >= live_missing)``.
    Exact at every size, so a single missing value in a small window is weighed by how likely it was
    (not divided by a near-zero expectation, as the normal approximation would), and conservative,
    never liberal. One-sided because fewer gaps than in training is not a reason to retrain.
    ``K = 0`` (no missing value on either side) gives exactly 1.
    """
    ref_missing = np.asarray(reference_missing, dtype=np.int64)
    ref_rows = np.asarray(reference_rows, dtype=np.int64)
    cur_missing = np.asarray(live_missing, dtype=np.int64)
    cur_rows = np.asarray(live_rows, dtype=np.int64)
    if np.any(ref_missing < 0) or np.any(cur_missing < 0):
        raise ValueError("missing counts must be non-negative")
    if np.any(ref_missing > ref_rows) or np.any(cur_missing > cur_rows):
        raise ValueError("missing counts must not exceed the rows")
    p = stats.hypergeom.sf(cur_missing - 1, ref_rows + cur_rows, ref_missing + cur_missing, cur_rows)
    return np.clip(p, 0.0, 1.0)


def adjust_pvalues(p_values: np.ndarray, correction: Correction) -> np.ndarray:
    """Adjusted p-values along the last axis (features); NaN marks an untested feature and is kept.

    Bonferroni multiplies by the number of tested features; Benjamini-Hochberg gives the step-up adjusted
    values ``min_{j >= i} p_(j) k / j``. A feature drifts when its adjusted p-value is at most alpha.
    """
    p = np.asarray(p_values, dtype=float)
    tested = (~np.isnan(p)).sum(axis=-1, keepdims=True)
    if correction == Correction.NONE:
        return p.copy()
    if correction == Correction.BONFERRONI:
        return np.minimum(p * tested, 1.0)
    order = np.argsort(p, axis=-1)  # NaN sorts last, so ranks 1..k are the tested features
    ranked = np.take_along_axis(p, order, axis=-1)
    rank = np.arange(1, p.shape[-1] + 1)
    scaled = np.where(np.isnan(ranked), np.inf, ranked * tested / rank)
    stepped = np.minimum.accumulate(scaled[..., ::-1], axis=-1)[..., ::-1]
    stepped = np.where(np.isnan(ranked), np.nan, np.minimum(stepped, 1.0))
    out = np.empty_like(p)
    np.put_along_axis(out, order, stepped, axis=-1)
    return out


def critical_pvalue(p_values: np.ndarray, alpha: float, correction: Correction) -> np.ndarray:
    """The raw p-value cut per row (window) that the correction amounts to; NaN marks untested features.

    ``p <= cut`` exactly when the adjusted p-value is ``<= alpha``: ``alpha`` without correction,
    ``alpha / k`` for Bonferroni, and ``r * alpha / k`` for Benjamini-Hochberg, ``r`` being the number of
    rejections (``alpha / k`` when there are none, the cut the smallest p-value missed).
    """
    p = np.asarray(p_values, dtype=float)
    tested = (~np.isnan(p)).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if correction == Correction.NONE:
            return np.where(tested > 0, alpha, np.nan)
        per_test = alpha / tested
        if correction == Correction.BONFERRONI:
            return per_test
        rejected = (adjust_pvalues(p, correction) <= alpha).sum(axis=-1)
        return per_test * np.maximum(rejected, 1)
