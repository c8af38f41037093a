"""Empty bins, constant features, missing data, unseen categories and padding."""

import numpy as np
from kubeloop.drift import (
    DriftMethod,
    binned_test,
    chi2_test,
    ecdf_distances,
    js_distance,
    pool_sparse_bins,
    psi,
    stack_samples,
)


def test_psi_is_infinite_without_smoothing_and_finite_with_it():
    ref, cur = np.array([50, 50, 0]), np.array([40, 40, 20])
    assert np.isinf(psi(ref, cur, pseudo_count=0.0)[0])
    # With 0.5 added per bin: ref (50.5, 50.5, 0.5)/101.5, live (40.5, 40.5, 20.5)/101.5.
    r = np.array([50.5, 50.5, 0.5]) / 101.5
    q = np.array([40.5, 40.5, 20.5]) / 101.5
    assert psi(ref, cur)[0] == np.sum((q - r) * np.log(q / r))
    # JS needs no smoothing: it stays finite and below 1 (base 2) even with disjoint supports.
    assert 0 < js_distance(ref, cur)[0] < 1
    assert js_distance([1, 0], [0, 1])[0] == 1.0


def test_bins_empty_on_both_sides_change_nothing():
    ref, cur = np.array([[30, 20, 50]]), np.array([[10, 25, 40]])
    padded_ref, padded_cur = np.array([[30, 0, 20, 50, 0]]), np.array([[10, 0, 25, 40, 0]])
    # Equal up to the order of summation.
    np.testing.assert_allclose(psi(ref, cur), psi(padded_ref, padded_cur), rtol=1e-14)
    np.testing.assert_allclose(js_distance(ref, cur), js_distance(padded_ref, padded_cur), rtol=1e-14)
    a, b = chi2_test(ref, cur), chi2_test(padded_ref, padded_cur)
    np.testing.assert_allclose([a.statistic, a.p_value], [b.statistic, b.p_value], rtol=1e-14)
    assert a.dof[0] == b.dof[0] == 2


def test_constant_feature_in_the_same_bin_is_no_drift():
    ref, cur = np.array([0, 1000, 0]), np.array([0, 37, 0])
    result = chi2_test(ref, cur)
    assert (result.statistic[0], result.p_value[0], result.dof[0]) == (0.0, 1.0, 0)
    assert psi(ref, cur)[0] == 0.0
    assert js_distance(ref, cur)[0] == 0.0
    d = ecdf_distances(np.full(50, 2.0), np.full(80, 2.0))
    assert (d.ks[0], d.wasserstein[0]) == (0.0, 0.0)


def test_constant_feature_that_moves_is_drift():
    _, p = binned_test(np.array([0, 1000, 0]), np.array([0, 150, 50]), DriftMethod.CHI_SQUARED)
    assert p[0] < 1e-10
    d = ecdf_distances(np.full(50, 2.0), np.full(80, 2.5))
    assert (d.ks[0], d.wasserstein[0]) == (1.0, 0.5)


def test_empty_side_gives_nan_not_a_verdict():
    ref, cur = np.array([[10, 20], [5, 5]]), np.array([[0, 0], [3, 4]])
    for values in (psi(ref, cur), js_distance(ref, cur), chi2_test(ref, cur).p_value):
        assert np.isnan(values[0]) and not np.isnan(values[1])
    d = ecdf_distances(stack_samples([[1.0, 2.0], [1.0]]), stack_samples([[np.nan], [2.0]]))
    assert np.isnan(d.ks[0]) and d.n_live[0] == 0 and d.ks[1] == 1.0


def test_a_few_unseen_values_are_weighed_not_alarmed():
    # A huge reference without the category, then one unseen value in a window of 500.
    ref = np.array([60_000, 30_000, 10_000, 0])
    one_unseen = np.array([300, 149, 50, 1])
    raw = chi2_test(ref, one_unseen)
    _, p = binned_test(ref, one_unseen, DriftMethod.CHI_SQUARED)
    assert raw.statistic[0] > 150  # the raw table treats the lone value as an enormous surprise
    assert p[0] > 0.05  # pooled, it is one value among a sparse bin
    # Unseen values making up 10% of the window are drift.
    _, p = binned_test(ref, np.array([270, 135, 45, 50]), DriftMethod.CHI_SQUARED)
    assert p[0] < 1e-8


def test_pooling_merges_sparse_bins_and_keeps_totals():
    ref = np.array([[500, 300, 150, 40, 8, 2, 0]])
    cur = np.array([[50, 30, 15, 4, 1, 0, 0]])
    pooled_ref, pooled_cur = pool_sparse_bins(ref, cur, min_expected=5.0)
    # min(n, m) = 100 live rows; expected live counts 50, 30, 15, 4, 0.8, 0.2: the last three are pooled
    # (4.0 + 0.8 + 0.2 = 5.0 expected, enough on its own).
    assert pooled_ref.tolist() == [[500, 300, 150, 0, 0, 0, 0, 50]]
    assert pooled_cur.tolist() == [[50, 30, 15, 0, 0, 0, 0, 5]]
    # When the pooled bin is still sparse, it joins the smallest dense bin.
    pooled_ref, pooled_cur = pool_sparse_bins(np.array([[600, 390, 10]]), np.array([[60, 39, 1]]))
    assert pooled_ref.tolist() == [[600, 400, 0, 0]]
    assert pooled_cur.tolist() == [[60, 40, 0, 0]]
