"""Monte Carlo of the drift decision rule, shared by the unit test and ``bench/drift/calibration.py``.

Every window gets a fresh reference and a fresh live window, drawn as counts rather than rows, which is
exact here:

- Numeric features (8, N(0, 1)): the profile's edges are the order statistics ``X_(r_k)`` with
  ``r_k = ceil(k n / B)`` (``inverted_cdf`` quantiles), so the reference counts are exactly
  ``r_k - r_(k-1)`` and the true probability of each bin is a uniform spacing ``U_(r_k) - U_(r_(k-1))``,
  drawn as normalised gamma variates. Live counts are then multinomial over those true probabilities.
  A shift moves the live distribution over the same edges, ``Phi^-1(U_(r_k))``.
- Categorical features (2, 30 Zipf-distributed categories): reference counts are multinomial; categories
  the reference never saw are not in the profile, so live rows of them land in its last bucket.

Both rules see the same windows:
- the default rule: the p-values of :func:`kubeloop.drift.binned_test` (chi-squared, sparse bins pooled),
  Bonferroni across the 10 features at alpha = 1%; the window alarms when any feature drifts;
- the fixed rule: PSI (pseudo-count 0.5) above 0.1 on any feature's profile bins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from kubeloop.drift import Correction, DriftMethod, adjust_pvalues, binned_test, psi
from kubeloop.drift.decision import CATEGORICAL_METHODS
from scipy import stats

N_NUMERIC, N_CATEGORICAL, N_CATEGORIES, N_BINS = 8, 2, 30, 10
ZIPF = 1.0 / np.arange(1, N_CATEGORIES + 1) ** 1.5
ZIPF /= ZIPF.sum()


@dataclass
class Rates:
    window: int
    windows: int
    default_alarm: float  # share of windows where the default rule alarms
    psi_alarm: float  # share of windows where PSI > 0.1 on some feature
    psi_feature_alarm: float  # share of (window, numeric feature) pairs with PSI > 0.1


def reference_ranks(n_reference: int, n_bins: int = N_BINS) -> np.ndarray:
    """1-based ranks of the order statistics that ``build_profile`` takes as edges."""
    return np.ceil(n_reference * np.arange(1, n_bins) / n_bins).astype(int)


def _numeric(rng, windows, n_reference, window, shift_sd):
    ranks = reference_ranks(n_reference)
    ref = np.diff(np.r_[0, ranks, n_reference]).astype(float)
    spacings = rng.gamma(np.diff(np.r_[0, ranks, n_reference + 1]), size=(windows, N_NUMERIC, N_BINS))
    coverage = np.cumsum(spacings, axis=-1)[..., :-1] / spacings.sum(axis=-1, keepdims=True)
    edges = stats.norm.ppf(coverage)
    shift = np.zeros(N_NUMERIC)
    shift[0] = shift_sd
    cdf = stats.norm.cdf(edges - shift[:, None])
    ones = np.ones((*cdf.shape[:-1], 1))
    probs = np.diff(np.concatenate([0 * ones, cdf, ones], axis=-1), axis=-1)
    live = rng.multinomial(window, probs)
    return np.broadcast_to(ref, live.shape).astype(float), live.astype(float)


def _categorical(rng, windows, n_reference, window):
    ref = rng.multinomial(n_reference, ZIPF, size=(windows, N_CATEGORICAL)).astype(float)
    live = rng.multinomial(window, ZIPF, size=(windows, N_CATEGORICAL)).astype(float)
    unseen = ref == 0
    live_unseen = (live * unseen).sum(axis=-1, keepdims=True)
    ref = np.concatenate([ref, np.zeros_like(live_unseen)], axis=-1)
    live = np.concatenate([np.where(unseen, 0.0, live), live_unseen], axis=-1)
    return ref, live


def simulate(
    window: int,
    *,
    windows: int,
    n_reference: int = 100_000,
    shift_sd: float = 0.0,
    alpha: float = 0.01,
    seed: int = 0,
    batch: int = 2_000,
    method: DriftMethod = DriftMethod.CHI_SQUARED,
) -> Rates:
    """Alarm rates over ``windows`` independent windows; ``shift_sd`` moves feature x0's mean.

    ``method`` picks the sample-size-aware rule under test (ChiSquared is what Auto uses on counts; KS runs
    on the numeric features' bins, with chi-squared for the categorical ones).
    """
    rng = np.random.default_rng(seed)
    default, psi_any, psi_numeric = 0, 0, 0
    for start in range(0, windows, batch):
        size = min(batch, windows - start)
        num_ref, num_live = _numeric(rng, size, n_reference, window, shift_sd)
        cat_ref, cat_live = _categorical(rng, size, n_reference, window)
        width = cat_ref.shape[-1]
        pad = ((0, 0), (0, 0), (0, width - N_BINS))
        ref = np.concatenate([np.pad(num_ref, pad), cat_ref], axis=1)  # (windows, features, bins)
        live = np.concatenate([np.pad(num_live, pad), cat_live], axis=1)
        flat_ref, flat_live = ref.reshape(-1, width), live.reshape(-1, width)
        # As evaluate() routes them: KS needs ordered bins, so categorical features use chi-squared.
        categorical_method = method if method in CATEGORICAL_METHODS else DriftMethod.CHI_SQUARED
        _, p_numeric = binned_test(num_ref.reshape(-1, N_BINS), num_live.reshape(-1, N_BINS), method)
        _, p_categorical = binned_test(
            cat_ref.reshape(-1, width), cat_live.reshape(-1, width), categorical_method
        )
        p = np.concatenate(
            [p_numeric.reshape(size, N_NUMERIC), p_categorical.reshape(size, N_CATEGORICAL)], axis=1
        )
        adjusted = adjust_pvalues(p, Correction.BONFERRONI)
        default += int((adjusted <= alpha).any(axis=1).sum())
        over = (psi(flat_ref, flat_live) > 0.1).reshape(ref.shape[:2])
        psi_any += int(over.any(axis=1).sum())
        psi_numeric += int(over[:, :N_NUMERIC].sum())
    return Rates(window, windows, default / windows, psi_any / windows, psi_numeric / (windows * N_NUMERIC))
