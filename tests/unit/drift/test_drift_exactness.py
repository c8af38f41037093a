"""Every statistic equals scipy's or the textbook formula within 1e-9, on random data."""

import math

import numpy as np
import pytest
from kubeloop.drift import (
    Correction,
    adjust_pvalues,
    chi2_test,
    ecdf_distances,
    js_distance,
    ks_distance,
    ks_pvalue,
    psi,
    stack_counts,
    stack_samples,
)
from scipy import stats
from scipy.spatial.distance import jensenshannon

TOL = 1e-9


def _random_tables(seed: int, n_features: int = 60):
    """Ragged count tables: 2 to 12 bins, some bins empty on one side, some on both."""
    rng = np.random.default_rng(seed)
    refs, curs = [], []
    for _ in range(n_features):
        bins = int(rng.integers(2, 13))
        ref = rng.multinomial(int(rng.integers(50, 5000)), rng.dirichlet(np.ones(bins)))
        cur = rng.multinomial(int(rng.integers(50, 5000)), rng.dirichlet(np.ones(bins)))
        both_empty = rng.random(bins) < 0.1
        ref[both_empty] = 0
        cur[both_empty] = 0
        refs.append(ref)
        curs.append(cur)
    return refs, curs


@pytest.mark.parametrize("correction", [False, True])
def test_chi2_equals_scipy_chi2_contingency(correction):
    refs, curs = _random_tables(seed=1)
    # Two-bin tables exercise Yates' correction, which scipy applies only at one degree of freedom.
    refs.append(np.array([30, 70]))
    curs.append(np.array([45, 55]))
    got = chi2_test(stack_counts(refs), stack_counts(curs), correction=correction)
    for i, (ref, cur) in enumerate(zip(refs, curs, strict=True)):
        keep = (ref + cur) > 0
        want = stats.chi2_contingency(np.array([ref[keep], cur[keep]]), correction=correction)
        assert got.statistic[i] == pytest.approx(want.statistic, rel=TOL, abs=TOL)
        assert got.p_value[i] == pytest.approx(want.pvalue, rel=TOL, abs=TOL)
        assert got.dof[i] == want.dof


@pytest.mark.parametrize("base", [2.0, math.e])
def test_js_distance_equals_scipy_jensenshannon(base):
    refs, curs = _random_tables(seed=2)
    got = js_distance(stack_counts(refs), stack_counts(curs), base=base)
    want = [jensenshannon(r, c, base=base) for r, c in zip(refs, curs, strict=True)]
    np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL)


def test_ks_distance_equals_scipy_ks_2samp_on_the_binned_rows():
    refs, curs = _random_tables(4)
    got = ks_distance(stack_counts(refs), stack_counts(curs))
    for i, (ref, cur) in enumerate(zip(refs, curs, strict=True)):
        bins = np.arange(ref.size)
        want = stats.ks_2samp(np.repeat(bins, ref), np.repeat(bins, cur)).statistic
        assert abs(got[i] - want) < TOL


def test_ks_distance_on_bins_bounds_the_exact_statistic_by_the_largest_bin_share():
    rng = np.random.default_rng(5)
    for shift in (0.0, 0.1, 0.5):
        x, y = rng.normal(size=3000), rng.normal(shift, 1.3, size=2000)
        edges = np.quantile(x, np.arange(1, 10) / 10)
        ref = np.bincount(np.searchsorted(edges, x), minlength=10)
        cur = np.bincount(np.searchsorted(edges, y), minlength=10)
        binned = ks_distance(ref, cur)[0]
        exact = stats.ks_2samp(x, y).statistic
        widest = max(ref.max() / ref.sum(), cur.max() / cur.sum())
        assert binned <= exact + TOL
        assert exact <= binned + widest + TOL


def _psi_by_hand(ref, cur, pseudo_count):
    """PSI = sum (a - e) ln(a / e), written out bin by bin over the bins used by either side."""
    used = [(r + pseudo_count, c + pseudo_count) for r, c in zip(ref, cur, strict=True) if r + c > 0]
    total_r = sum(r for r, _ in used)
    total_c = sum(c for _, c in used)
    out = 0.0
    for r, c in used:
        e, a = r / total_r, c / total_c
        out += (a - e) * math.log(a / e)
    return out


def test_psi_equals_the_textbook_formula_without_smoothing():
    rng = np.random.default_rng(3)
    refs = [rng.multinomial(2000, rng.dirichlet(np.ones(10))) + 1 for _ in range(50)]
    curs = [rng.multinomial(700, rng.dirichlet(np.ones(10))) + 1 for _ in range(50)]
    got = psi(stack_counts(refs), stack_counts(curs), pseudo_count=0.0)
    want = [_psi_by_hand(r, c, 0.0) for r, c in zip(refs, curs, strict=True)]
    np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL)


def test_psi_with_smoothing_equals_the_formula_on_smoothed_counts():
    refs, curs = _random_tables(seed=4)
    got = psi(stack_counts(refs), stack_counts(curs))
    want = [_psi_by_hand(r, c, 0.5) for r, c in zip(refs, curs, strict=True)]
    np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL)


def _random_samples(seed: int):
    """Ragged samples: continuous ones, heavily tied integer ones, and some NaN."""
    rng = np.random.default_rng(seed)
    refs, curs = [], []
    for i in range(40):
        n, m = int(rng.integers(5, 400)), int(rng.integers(5, 400))
        if i % 2:
            ref, cur = rng.integers(0, 6, n).astype(float), rng.integers(0, 7, m).astype(float)
        else:
            ref, cur = rng.normal(size=n), rng.normal(rng.normal(0, 0.3), rng.uniform(0.5, 2), size=m)
        ref[rng.random(n) < 0.05] = np.nan
        refs.append(ref)
        curs.append(cur)
    return refs, curs


def test_ks_and_wasserstein_equal_scipy_on_ragged_tied_samples_with_nan():
    refs, curs = _random_samples(seed=5)
    got = ecdf_distances(stack_samples(refs), stack_samples(curs))
    p = ks_pvalue(got.ks, got.n_reference, got.n_live)
    for i, (ref, cur) in enumerate(zip(refs, curs, strict=True)):
        ref = ref[~np.isnan(ref)]
        assert got.n_reference[i] == ref.size and got.n_live[i] == cur.size
        assert got.ks[i] == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=TOL)
        assert p[i] == pytest.approx(stats.ks_2samp(ref, cur, method="asymp").pvalue, rel=TOL, abs=TOL)
        assert got.wasserstein[i] == pytest.approx(stats.wasserstein_distance(ref, cur), rel=TOL, abs=TOL)


def test_ecdf_distances_are_exact_across_blocks_and_chunks(monkeypatch):
    # Shrink the block and chunk sizes so the merge is walked in many pieces with ties on the seams.
    from kubeloop.drift import samples

    monkeypatch.setattr(samples, "_BLOCK_CELLS", 500)
    monkeypatch.setattr(samples, "_CHUNK_CELLS", 7)
    refs, curs = _random_samples(seed=6)
    got = ecdf_distances(stack_samples(refs), stack_samples(curs))
    for i, (ref, cur) in enumerate(zip(refs, curs, strict=True)):
        ref = ref[~np.isnan(ref)]
        assert got.ks[i] == pytest.approx(stats.ks_2samp(ref, cur).statistic, abs=TOL)
        assert got.wasserstein[i] == pytest.approx(stats.wasserstein_distance(ref, cur), rel=TOL, abs=TOL)


def test_benjamini_hochberg_equals_scipy_and_bonferroni_multiplies():
    rng = np.random.default_rng(7)
    p = rng.uniform(size=(20, 15)) ** 3
    p[3, [2, 5]] = np.nan  # untested features are left out of the family
    bh = adjust_pvalues(p, Correction.BENJAMINI_HOCHBERG)
    bonf = adjust_pvalues(p, Correction.BONFERRONI)
    for row in range(p.shape[0]):
        tested = ~np.isnan(p[row])
        want = stats.false_discovery_control(p[row, tested], method="bh")
        np.testing.assert_allclose(bh[row, tested], want, rtol=TOL, atol=TOL)
        np.testing.assert_allclose(bonf[row, tested], np.minimum(p[row, tested] * tested.sum(), 1.0))
        assert np.isnan(bh[row, ~tested]).all()
    np.testing.assert_array_equal(adjust_pvalues(p, Correction.NONE), p)


@pytest.mark.parametrize(("n", "m"), [(2002, 2002), (1500, 5000), (10_000, 10_000), (200_000, 200_000)])
def test_ks_pvalue_above_the_exact_limit_stays_within_2_percent_of_scipy(n, m):
    effective = round(n * m / (n + m))
    for p in (0.5, 0.05, 0.01, 1e-3, 1e-4):
        d = stats.kstwo.isf(p, effective)  # the statistic at which scipy's p-value is p
        assert ks_pvalue(np.array([d]), n, m)[0] == pytest.approx(p, rel=0.022)


@pytest.mark.parametrize("correction", list(Correction))
def test_critical_pvalue_is_the_raw_cut_of_the_adjusted_rule(correction):
    from kubeloop.drift import critical_pvalue

    rng = np.random.default_rng(8)
    p = rng.uniform(size=(200, 12)) ** 4
    p[::7, 3] = np.nan
    cut = critical_pvalue(p, 0.05, correction)
    adjusted = adjust_pvalues(p, correction)
    tested = ~np.isnan(p)
    np.testing.assert_array_equal((p <= cut[:, None])[tested], (adjusted <= 0.05)[tested])
