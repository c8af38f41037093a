"""Sample-based drift statistics over many features at once: two-sample Kolmogorov-Smirnov and
Wasserstein-1, both read off the two empirical CDFs.

Samples come as ``(features, rows)`` float matrices. Features with fewer rows are padded with NaN, and NaN
is ignored, so ragged samples and missing values need no special casing (:func:`stack_samples` builds
the padding). Values should otherwise be finite.

How it is fast: each side is sorted once along the rows (NaN sorts last). The two sorted runs are then
merged with a stable argsort, which numpy implements as timsort and therefore merges two runs in linear
time. A running count of reference rows along the merged order gives both CDFs at every point. Ties are
handled by reading the CDFs only at the last of equal values, exactly as ``scipy.stats.ks_2samp``
(``searchsorted(..., side="right")``) does. Work is done in blocks of features to bound memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import special, stats

__all__ = [
    "KS_EXACT_LIMIT",
    "EcdfDistances",
    "ecdf_distances",
    "ks_pvalue",
    "stack_samples",
    "wasserstein_pvalue",
]

# Cells (features x rows) per block: the sorted block and its merge order stay within tens of megabytes.
_BLOCK_CELLS = 1_000_000
# Cells of the merged order processed at once: the temporaries of a chunk fit in the CPU cache.
_CHUNK_CELLS = 1 << 16


class EcdfDistances(NamedTuple):
    ks: np.ndarray  # sup |F - G|
    wasserstein: np.ndarray  # integral |F - G| dt
    n_reference: np.ndarray  # non-NaN rows per feature
    n_live: np.ndarray


def stack_samples(samples: Sequence[Sequence[float] | np.ndarray]) -> np.ndarray:
    """Stack samples of different lengths into one NaN-padded ``(features, rows)`` float matrix."""
    width = max((len(s) for s in samples), default=0)
    out = np.full((len(samples), width), np.nan)
    for i, s in enumerate(samples):
        out[i, : len(s)] = np.asarray(s, dtype=float)
    return out


def _as_samples(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"samples must be 1-D or 2-D, got shape {arr.shape}")
    return arr


def _block(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n_x, n_y = xs.shape[1], ys.shape[1]
    count_x = (~np.isnan(xs)).sum(axis=1)
    count_y = (~np.isnan(ys)).sum(axis=1)
    ragged = bool(np.any(count_x < n_x) or np.any(count_y < n_y))
    pooled = np.concatenate([xs, ys], axis=1)
    order = np.argsort(pooled, axis=1, kind="stable")
    with np.errstate(invalid="ignore", divide="ignore"):
        # F - G after k merged points of which s are reference: s/n - (k - s)/m = s (1/n + 1/m) - k/m.
        per_seen = (1.0 / count_x + 1.0 / count_y)[:, None]
        per_point = (1.0 / count_y)[:, None]
    total = (count_x + count_y)[:, None]
    ks = np.zeros(xs.shape[0])
    wasserstein = np.zeros(xs.shape[0])
    seen_before = np.zeros((xs.shape[0], 1), dtype=np.int64)
    length = n_x + n_y
    chunk = max(256, _CHUNK_CELLS // xs.shape[0])
    # The merged order is walked in column chunks that stay in cache; only the running count crosses chunks.
    for start in range(0, length, chunk):
        stop = min(length, start + chunk)
        ahead = min(length, stop + 1)  # one value past the chunk closes its last tie group
        chunk_order = order[:, start:ahead]
        values = np.take_along_axis(pooled, chunk_order, axis=1)
        seen = np.cumsum(chunk_order[:, : stop - start] < n_x, axis=1)
        seen += seen_before
        seen_before = seen[:, -1:]
        position = np.arange(start + 1, stop + 1)
        gap = seen * per_seen
        gap -= position * per_point
        np.abs(gap, out=gap)
        # Steps to the next value; at the very end there is none, and equal values make no step.
        step = np.zeros_like(gap)
        width = ahead - start - 1
        np.subtract(values[:, 1:], values[:, :width], out=step[:, :width])
        # The CDFs are read only after the last of equal values (a tie-group end); NaN compares unequal,
        # which closes the last valid group of a ragged row.
        ends = step != 0
        if ahead == stop:
            ends[:, -1] = True
        if ragged:
            ends &= position <= total
            step[~(position < total)] = 0.0
        np.maximum(ks, np.max(gap * ends, axis=1), out=ks)
        wasserstein += np.einsum("ij,ij->i", gap, step)
    return ks, wasserstein, count_x, count_y


@np.errstate(invalid="ignore", divide="ignore")  # a side without data gives NaN, reported as NaN
def ecdf_distances(
    reference: np.ndarray, live: np.ndarray, *, reference_sorted: bool = False
) -> EcdfDistances:
    """Kolmogorov-Smirnov statistic and Wasserstein-1 distance per feature (row).

    ``reference_sorted=True`` skips sorting a reference already sorted ascending along rows with NaN last
    (the profile's sample is stored that way), so a check sorts only the live rows. A feature with no data
    on either side yields NaN.
    """
    ref, cur = _as_samples(reference), _as_samples(live)
    if ref.shape[0] != cur.shape[0]:
        raise ValueError(f"reference has {ref.shape[0]} features, live has {cur.shape[0]}")
    n_features = ref.shape[0]
    out = EcdfDistances(
        np.full(n_features, np.nan),
        np.full(n_features, np.nan),
        np.zeros(n_features, dtype=np.int64),
        np.zeros(n_features, dtype=np.int64),
    )
    rows_per_block = max(1, _BLOCK_CELLS // max(1, ref.shape[1] + cur.shape[1]))
    for start in range(0, n_features, rows_per_block):
        part = slice(start, start + rows_per_block)
        xs = ref[part] if reference_sorted else np.sort(ref[part], axis=1)
        ys = np.sort(cur[part], axis=1)
        ks, w1, n_x, n_y = _block(xs, ys)
        out.ks[part], out.wasserstein[part] = ks, w1
        out.n_reference[part], out.n_live[part] = n_x, n_y
    empty = (out.n_reference == 0) | (out.n_live == 0)
    out.ks[empty] = np.nan
    out.wasserstein[empty] = np.nan
    return out


# Above this effective size the KS p-value switches from scipy's finite-n distribution (whose cost grows
# linearly with n: about 7 ms per value at 10,000 and 150 ms at 200,000) to Stephens' formula.
KS_EXACT_LIMIT = 1_000


def ks_pvalue(statistic: np.ndarray, n_reference: np.ndarray, n_live: np.ndarray) -> np.ndarray:
    """Two-sided KS p-value with the effective size ``en = n m / (n + m)``.

    Up to ``en = 1,000`` it is ``kstwo.sf(D, round(en))``, exactly ``ks_2samp(method="asymp")``. Above,
    it is Stephens' approximation ``Q_KS((sqrt(en) + 0.12 + 0.11 / sqrt(en)) D)`` with ``Q_KS`` the
    Kolmogorov distribution: vectorised and O(1), and within 2.1% (relative) of scipy's value for every
    p-value down to 1e-4 at ``en > 1,000`` (1% above ``en = 10,000``). The effective size is what makes the
    test account for the reference being a bounded sample. With ties (discrete data) the test is
    conservative.
    """
    n = np.asarray(n_reference, dtype=float)
    m = np.asarray(n_live, dtype=float)
    d = np.asarray(statistic, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        effective = np.round(n * m / (n + m))
    d, effective = np.broadcast_arrays(d, effective)
    p = np.full(d.shape, np.nan)
    small = (effective >= 1) & (effective <= KS_EXACT_LIMIT) & ~np.isnan(d)
    p[small] = stats.kstwo.sf(d[small], effective[small])
    large = (effective > KS_EXACT_LIMIT) & ~np.isnan(d)
    root = np.sqrt(effective[large])
    p[large] = special.kolmogorov((root + 0.12 + 0.11 / root) * d[large])
    return p


def wasserstein_pvalue(
    statistic: np.ndarray, reference: np.ndarray, live: np.ndarray, *, grid: int = 256
) -> np.ndarray:
    """Approximate p-value of the Wasserstein-1 distance under "same distribution".

    For samples of sizes ``n`` and ``m`` from one distribution ``H``, ``sqrt(nm/(n+m)) * W1`` tends to
    ``Z = integral |B(H(t))| dt`` with ``B`` a Brownian bridge. ``H`` is estimated by the pooled sample,
    the integral is discretised on ``grid`` pooled quantiles, the exact mean and variance of ``Z`` follow
    from the bivariate-normal absolute moments, and a log-normal distribution with those two moments gives
    the tail. It is an approximation (checked by simulation in the unit tests), fit for a decision rule, not
    an exact test.
    """
    ref, cur = _as_samples(reference), _as_samples(live)
    stat = np.asarray(statistic, dtype=float)
    out = np.full(ref.shape[0], np.nan)
    probs = (np.arange(grid) + 0.5) / grid
    for i in range(ref.shape[0]):
        x, y = ref[i][~np.isnan(ref[i])], cur[i][~np.isnan(cur[i])]
        if x.size == 0 or y.size == 0 or np.isnan(stat[i]):
            continue
        pooled = np.concatenate([x, y])
        # Riemann sum of |B(s)| over the pooled quantile function: B at the mid-quantile of each cell,
        # times the width of the cell in feature units.
        cuts = np.quantile(pooled, np.linspace(0.0, 1.0, grid + 1))
        width = np.diff(cuts)
        if not np.any(width > 0):
            out[i] = 1.0 if stat[i] == 0 else 0.0
            continue
        s = probs
        sd = np.sqrt(s * (1 - s))
        mean = np.sqrt(2 / np.pi) * (width * sd).sum()
        cov_b = np.minimum.outer(s, s) - np.outer(s, s)
        rho = np.clip(cov_b / np.outer(sd, sd), -1.0, 1.0)
        abs_cov = (2 / np.pi) * np.outer(sd, sd) * (np.sqrt(1 - rho**2) + rho * np.arcsin(rho) - 1)
        var = width @ abs_cov @ width
        scaled = stat[i] * np.sqrt(x.size * y.size / (x.size + y.size))
        # A log-normal with these two moments: its right tail follows the simulated null down to 1e-4,
        # where a gamma fit is too light (it gives about a quarter of the true p-value at 1e-3).
        log_var = np.log1p(var / mean**2)
        log_mean = np.log(mean) - log_var / 2
        out[i] = stats.norm.sf((np.log(scaled) - log_mean) / np.sqrt(log_var)) if scaled > 0 else 1.0
    return out
