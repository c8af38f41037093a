"""The default rule's false-alarm rate stays near alpha at any window size; a fixed PSI cut does not.

Run with ``-s`` to see the rates; ``bench/drift/calibration.py`` prints the same table with more windows.
"""

import numpy as np
import pytest
from kubeloop.drift import (
    Correction,
    DriftConfig,
    DriftMethod,
    Verdict,
    adjust_pvalues,
    binned_test,
    build_profile,
    count_numeric,
    ecdf_distances,
    evaluate,
    ks_pvalue,
    wasserstein_pvalue,
)


@pytest.mark.parametrize("window", [100, 1_000, 100_000])
def test_default_rule_false_alarm_rate_is_near_one_percent_at_any_window(drift_simulation, window):
    rates = drift_simulation.simulate(window, windows=8000, seed=window)
    print(f"\nno drift, window {window}: {rates}")
    assert 0.005 <= rates.default_alarm <= 0.02
    if window == 100:
        assert rates.psi_feature_alarm > 0.2  # a fixed PSI > 0.1 cut alarms on noise in small windows
    else:
        assert rates.psi_feature_alarm < 0.001


@pytest.mark.parametrize(("window", "low", "high"), [(100, 0.0, 0.2), (1_000, 0.8, 1.0), (100_000, 1.0, 1.0)])
def test_power_for_a_fifth_of_a_standard_deviation(drift_simulation, window, low, high):
    rates = drift_simulation.simulate(window, windows=2000, shift_sd=0.2, seed=7 + window)
    print(f"\n0.2 SD shift, window {window}: {rates}")
    assert low <= rates.default_alarm <= high
    if window >= 1_000:
        # PSI > 0.1 is deaf to this shift once the window is large enough for noise to vanish.
        assert rates.psi_alarm < 0.05


@pytest.mark.parametrize("window", [1_000, 100_000])
def test_ks_on_counts_never_alarms_more_than_alpha_and_keeps_its_power(drift_simulation, window):
    """KS on ten bins is conservative (ties), so it may alarm less than alpha, never more."""
    null = drift_simulation.simulate(window, windows=4000, seed=window, method=DriftMethod.KS)
    shifted = drift_simulation.simulate(window, windows=1000, shift_sd=0.2, seed=9, method=DriftMethod.KS)
    print(f"\nKS on counts, window {window}: no drift {null}, 0.2 SD shift {shifted}")
    assert null.default_alarm <= 0.01
    assert shifted.default_alarm >= 0.8


def test_simulated_reference_counts_are_the_profiles(drift_simulation):
    """The simulation's shortcut (order-statistic ranks) gives build_profile's counts on continuous data."""
    for n in (999, 10_000, 100_003):
        x = np.random.default_rng(n).normal(size=n)
        ranks = drift_simulation.reference_ranks(n)
        assert build_profile({"x": x}, {}).numeric["x"].counts == np.diff(np.r_[0, ranks, n]).tolist()


def test_simulation_mirrors_evaluate():
    """The simulation's vectorised path and evaluate() give the same verdicts on the same windows."""
    rng = np.random.default_rng(11)
    profile = build_profile({f"x{i}": rng.normal(size=5000) for i in range(3)}, {})
    for _ in range(30):
        shift = rng.choice([0.0, 0.15])
        rows = {name: rng.normal(shift if name == "x0" else 0, size=400) for name in profile.numeric}
        counts = {name: count_numeric(profile.numeric[name], v) for name, v in rows.items()}
        report = evaluate(profile, counts)
        refs = np.array([profile.numeric[n].counts for n in profile.numeric], dtype=float)
        _, p = binned_test(refs, np.array(list(counts.values()), dtype=float), DriftMethod.CHI_SQUARED)
        drifted = adjust_pvalues(p, Correction.BONFERRONI) <= 0.01
        assert [f.verdict == Verdict.DRIFT for f in report.features] == drifted.tolist()


def test_sample_tests_false_alarm_rates_at_five_percent():
    """KS (exact null) and Wasserstein (approximate null) alarm at about alpha with a bounded reference."""
    rng = np.random.default_rng(12)
    reps, alpha = 1000, 0.05
    reference, live = rng.normal(size=(reps, 1000)), rng.normal(size=(reps, 300))
    dist = ecdf_distances(reference, live)
    ks_rate = np.mean(ks_pvalue(dist.ks, dist.n_reference, dist.n_live) <= alpha)
    w_rate = np.mean(wasserstein_pvalue(dist.wasserstein, reference, live) <= alpha)
    print(f"\nKS rate {ks_rate:.3f}, Wasserstein rate {w_rate:.3f} at alpha {alpha}")
    assert 0.03 <= ks_rate <= 0.07
    assert 0.03 <= w_rate <= 0.075


def test_default_config_is_sample_size_aware():
    config = DriftConfig()
    assert (config.method, config.alpha, config.correction) == (DriftMethod.AUTO, 0.01, Correction.BONFERRONI)
    assert config.threshold is None and config.min_samples == 100
