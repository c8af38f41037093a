"""The DriftMonitor-facing API: routing, the minimum-sample gate, corrections, and the dataset verdict."""

import numpy as np
import pytest
from kubeloop.drift import (
    Correction,
    DriftConfig,
    DriftMethod,
    DriftReport,
    Verdict,
    build_profile,
    count_categorical,
    count_numeric,
    evaluate,
)
from scipy import stats


@pytest.fixture(scope="module")
def profile():
    rng = np.random.default_rng(0)
    n = 20_000
    return build_profile(
        {f"x{i}": rng.normal(size=n) for i in range(4)},
        {"colour": rng.choice(["red", "green", "blue"], p=[0.5, 0.3, 0.2], size=n)},
        sample_size=1000,
    )


def _window(profile, m: int, *, shift: float = 0.0, seed: int = 1, new_colour: bool = False):
    rng = np.random.default_rng(seed)
    rows = {name: rng.normal(shift if name == "x0" else 0.0, size=m) for name in profile.numeric}
    numeric = {name: count_numeric(profile.numeric[name], v) for name, v in rows.items()}
    colours, p = (
        (["red", "purple"], [0.5, 0.5]) if new_colour else (["red", "green", "blue"], [0.5, 0.3, 0.2])
    )
    colour = rng.choice(colours, p=p, size=m)
    categorical = {"colour": count_categorical(profile.categorical["colour"], colour)}
    return numeric, categorical, rows


def test_default_rule_finds_a_shift_and_only_there(profile):
    numeric, categorical, samples = _window(profile, 3000, shift=0.3)
    report = evaluate(profile, numeric, categorical, samples)
    assert report.verdict == Verdict.DRIFT
    assert [f.name for f in report.features if f.verdict == Verdict.DRIFT] == ["x0"]
    x0 = report.feature("x0")
    assert x0.method == DriftMethod.CHI_SQUARED
    assert x0.p_value < 1e-6
    assert x0.adjusted_p_value == pytest.approx(min(1.0, x0.p_value * 5))
    assert (x0.n_reference, x0.n_live) == (20_000, 3000)
    assert report.n_tested == 5 and report.n_drifted == 1 and report.drifted_share == pytest.approx(0.2)


def test_no_drift_window_is_no_drift(profile):
    numeric, categorical, samples = _window(profile, 3000, seed=2)
    report = evaluate(profile, numeric, categorical, samples)
    assert report.verdict == Verdict.NO_DRIFT
    assert all(f.verdict == Verdict.NO_DRIFT for f in report.features)


def test_small_window_is_insufficient_never_no_drift(profile):
    numeric, categorical, samples = _window(profile, 99)
    report = evaluate(profile, numeric, categorical, samples)
    assert report.verdict == Verdict.INSUFFICIENT
    assert report.n_tested == 0 and report.n_insufficient == 5
    assert {f.verdict for f in report.features} == {Verdict.INSUFFICIENT}
    assert "99 live rows" in report.feature("x1").message
    # Even an obvious shift is not called on too few rows.
    numeric, categorical, samples = _window(profile, 50, shift=3.0)
    assert evaluate(profile, numeric, categorical, samples).verdict == Verdict.INSUFFICIENT


def test_missing_features_are_insufficient_and_the_rest_decide(profile):
    numeric, categorical, _ = _window(profile, 2000, shift=0.5)
    del numeric["x3"]
    report = evaluate(profile, numeric, categorical)
    assert report.feature("x3").verdict == Verdict.INSUFFICIENT
    assert report.feature("x3").message == "no live counts"
    assert report.n_tested == 4 and report.verdict == Verdict.DRIFT
    # Bonferroni counts only the tested features.
    x0 = report.feature("x0")
    assert x0.adjusted_p_value == pytest.approx(min(1.0, x0.p_value * 4))


def test_wasserstein_uses_samples_and_categorical_falls_back_to_chi_squared(profile):
    numeric, categorical, samples = _window(profile, 1500, shift=0.4)
    report = evaluate(profile, numeric, categorical, samples, DriftConfig(method=DriftMethod.WASSERSTEIN))
    assert report.feature("x0").method == DriftMethod.WASSERSTEIN
    assert report.feature("x0").verdict == Verdict.DRIFT
    assert report.feature("x0").n_reference == 1000  # the bounded reference sample, not the 20,000 rows
    assert report.feature("x0").n_live == 1500
    assert report.feature("colour").method == DriftMethod.CHI_SQUARED
    assert report.method == DriftMethod.WASSERSTEIN


def test_ks_uses_the_counts_of_every_row_and_equals_ks_on_the_binned_rows(profile):
    numeric, categorical, samples = _window(profile, 1500, shift=0.4)
    report = evaluate(profile, numeric, categorical, samples, DriftConfig(method=DriftMethod.KS))
    x0 = report.feature("x0")
    assert (x0.method, x0.verdict) == (DriftMethod.KS, Verdict.DRIFT)
    assert (x0.n_reference, x0.n_live) == (20_000, 1500)  # all reference rows, not the 1,000-row sample
    assert report.feature("colour").method == DriftMethod.CHI_SQUARED  # categories have no order
    assert report.feature("x1").verdict == Verdict.NO_DRIFT
    # The statistic is scipy's KS on the rows with each value replaced by its bin.
    ref = np.asarray(profile.numeric["x0"].counts)
    live = numeric["x0"]
    bins = np.arange(ref.size)
    expected = stats.ks_2samp(np.repeat(bins, ref), np.repeat(bins, live), method="asymp")
    assert x0.score == pytest.approx(expected.statistic, abs=1e-12)
    assert x0.p_value == pytest.approx(expected.pvalue, rel=0.021)  # Stephens above nm/(n+m) = 1,000


def test_ks_falls_back_to_the_sample_for_a_feature_without_counts(profile):
    numeric, categorical, samples = _window(profile, 1500, shift=0.4)
    del numeric["x0"]
    report = evaluate(profile, numeric, categorical, samples, DriftConfig(method=DriftMethod.KS))
    x0, x1 = report.feature("x0"), report.feature("x1")
    assert (x0.method, x0.verdict, x0.n_reference) == (DriftMethod.KS, Verdict.DRIFT, 1000)
    assert (x1.method, x1.n_reference) == (DriftMethod.KS, 20_000)
    # One Bonferroni family across both sources.
    assert x1.adjusted_p_value == pytest.approx(min(1.0, x1.p_value * 5))


@pytest.mark.parametrize("method", [DriftMethod.PSI, DriftMethod.JENSEN_SHANNON, DriftMethod.CHI_SQUARED])
def test_binned_methods_cover_both_kinds(profile, method):
    numeric, categorical, _ = _window(profile, 1500, shift=0.4, new_colour=True)
    report = evaluate(profile, numeric, categorical, config=DriftConfig(method=method))
    assert report.feature("x0").method == report.feature("colour").method == method
    assert report.feature("x0").verdict == report.feature("colour").verdict == Verdict.DRIFT
    assert report.feature("x1").verdict == Verdict.NO_DRIFT


def test_auto_uses_ks_when_a_numeric_feature_has_only_a_sample(profile):
    numeric, categorical, samples = _window(profile, 500)
    del numeric["x2"]
    report = evaluate(profile, numeric, categorical, samples)
    assert report.feature("x2").method == DriftMethod.KS
    assert report.feature("x1").method == DriftMethod.CHI_SQUARED


def test_fixed_threshold_and_min_score(profile):
    numeric, categorical, _ = _window(profile, 100_000, shift=0.03, seed=4)
    significant = evaluate(profile, numeric, categorical, config=DriftConfig(method=DriftMethod.PSI))
    x0 = significant.feature("x0")
    assert x0.verdict == Verdict.DRIFT and x0.score < 0.01  # real, but tiny
    floor = DriftConfig(method=DriftMethod.PSI, min_score=0.01)
    assert evaluate(profile, numeric, categorical, config=floor).feature("x0").verdict == Verdict.NO_DRIFT
    fixed = DriftConfig(method=DriftMethod.PSI, threshold=x0.score / 2)
    assert evaluate(profile, numeric, categorical, config=fixed).feature("x0").verdict == Verdict.DRIFT


def test_drifted_share_gates_the_dataset_verdict(profile):
    numeric, categorical, _ = _window(profile, 3000, shift=0.5)
    assert evaluate(profile, numeric, categorical).verdict == Verdict.DRIFT
    report = evaluate(profile, numeric, categorical, config=DriftConfig(min_drifted_share=0.5))
    assert report.n_drifted == 1 and report.verdict == Verdict.NO_DRIFT


def test_benjamini_hochberg_is_selectable(profile):
    numeric, categorical, _ = _window(profile, 3000, shift=0.5)
    report = evaluate(
        profile, numeric, categorical, config=DriftConfig(correction=Correction.BENJAMINI_HOCHBERG)
    )
    assert report.correction == Correction.BENJAMINI_HOCHBERG
    assert report.feature("x0").verdict == Verdict.DRIFT


def test_feature_selection_and_input_errors(profile):
    numeric, categorical, _ = _window(profile, 500)
    report = evaluate(profile, numeric, categorical, config=DriftConfig(features=["x1", "colour"]))
    assert [f.name for f in report.features] == ["x1", "colour"]
    with pytest.raises(ValueError, match="not in the reference profile"):
        evaluate(profile, numeric, categorical, config=DriftConfig(features=["nope"]))
    with pytest.raises(ValueError, match="live bins"):
        evaluate(profile, {**numeric, "x1": [1, 2, 3]}, categorical)


def test_report_round_trips_through_json(profile):
    numeric, categorical, samples = _window(profile, 500)
    report = evaluate(profile, numeric, categorical, samples)
    again = DriftReport.model_validate_json(report.model_dump_json())
    assert again == report
    assert again.features[0].verdict == "NoDrift"
    assert Verdict.INSUFFICIENT == "InsufficientData"  # the DriftMonitor status vocabulary


def test_ks_in_evaluate_compares_the_profile_sample_with_the_live_sample(profile):
    from scipy import stats

    _, _, samples = _window(profile, 700, shift=0.1, seed=9)
    samples["x1"][:20] = np.nan  # missing live values are ignored
    report = evaluate(profile, live_samples=samples, config=DriftConfig(method=DriftMethod.KS))
    for name in ("x0", "x1"):
        live = samples[name][~np.isnan(samples[name])]
        want = stats.ks_2samp(profile.sample[name], live, method="asymp")
        assert report.feature(name).score == pytest.approx(want.statistic, abs=1e-12)
        assert report.feature(name).p_value == pytest.approx(want.pvalue, rel=1e-9)
    assert report.feature("x1").n_live == 680


def test_threshold_reports_the_cut_each_verdict_used(profile):
    numeric, categorical, _ = _window(profile, 3000, shift=0.3)
    report = evaluate(profile, numeric, categorical)
    for f in report.features:
        assert (f.threshold, f.threshold_on) == (pytest.approx(0.01 / 5), "p_value")
        assert (f.p_value <= f.threshold) == (f.verdict == Verdict.DRIFT)
    fixed = evaluate(
        profile, numeric, categorical, config=DriftConfig(method=DriftMethod.PSI, threshold=0.05)
    )
    assert {(f.threshold, f.threshold_on) for f in fixed.features} == {(0.05, "score")}
    small = evaluate(profile, *_window(profile, 10)[:2])
    assert all(f.threshold is None for f in small.features)


def test_wasserstein_score_is_in_reference_standard_deviations(profile):
    from scipy import stats

    _, _, samples = _window(profile, 800, shift=0.5)
    samples["x0"] = samples["x0"] * 10.0  # units do not matter to the p-value; the score scales with them
    report = evaluate(profile, live_samples=samples, config=DriftConfig(method=DriftMethod.WASSERSTEIN))
    ref = np.asarray(profile.sample["x0"])
    want = stats.wasserstein_distance(ref, samples["x0"]) / ref.std()
    assert report.feature("x0").score == pytest.approx(want, rel=1e-9)
