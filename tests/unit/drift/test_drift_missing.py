"""Missing values as a drift signal: the reference missing counts, the one-sided test, and the verdicts."""

import numpy as np
import pytest
from kubeloop.drift import (
    DriftConfig,
    DriftProfile,
    DriftReport,
    Verdict,
    build_profile,
    count_categorical,
    count_numeric,
    evaluate,
)
from scipy import stats


def missing_rate_test(*args):
    from kubeloop.drift import missing_rate_test

    return missing_rate_test(*args)


@pytest.fixture(scope="module")
def profile():
    rng = np.random.default_rng(0)
    n = 20_000
    gappy = rng.normal(size=n)
    gappy[rng.random(n) < 0.05] = np.nan  # 5% missing in training
    return build_profile(
        {"x0": rng.normal(size=n), "x1": rng.normal(size=n), "gappy": gappy},
        {"colour": rng.choice(["red", "green", "blue"], p=[0.5, 0.3, 0.2], size=n)},
    )


def _window(profile, m: int, *, seed: int, nan_share: dict[str, float] | None = None):
    """Live counts and missing counts of ``m`` rows drawn like the reference, some features gappier."""
    rng = np.random.default_rng(seed)
    share = {"gappy": 0.05, **(nan_share or {})}
    numeric, missing = {}, {}
    for name, ref in profile.numeric.items():
        values = rng.normal(size=m)
        values[rng.random(m) < share.get(name, 0.0)] = np.nan
        numeric[name] = count_numeric(ref, values)
        missing[name] = int(np.isnan(values).sum())
    colour = rng.choice(
        np.array(["red", "green", "blue", None], dtype=object), p=[0.5, 0.3, 0.2, 0.0], size=m
    )
    if share.get("colour"):
        colour[rng.random(m) < share["colour"]] = None
    categorical = {"colour": count_categorical(profile.categorical["colour"], colour)}
    missing["colour"] = sum(v is None for v in colour)
    return numeric, categorical, missing


def test_the_profile_stores_each_features_missing_count():
    x = np.array([1.0, np.nan, 3.0, np.nan, 5.0])
    k = np.array(["a", None, "b", float("nan"), "a"], dtype=object)
    profile = build_profile({"x": x}, {"k": k}, n_bins=2)
    assert profile.missing == {"x": 2, "k": 2}
    assert profile.missing_rate("x") == pytest.approx(0.4)
    again = DriftProfile.model_validate_json(profile.model_dump_json())
    assert again == profile


def test_a_profile_written_before_missing_counts_gets_them_from_its_totals():
    profile = build_profile({"x": np.array([1.0, np.nan, 3.0, 4.0])}, {"k": np.array(["a", None, "a", "b"])})
    old = profile.model_dump(exclude={"missing"})
    assert DriftProfile.model_validate(old).missing == {"x": 1, "k": 1}
    broken = {**old, "missing": {"x": 3}}  # 3 missing + 3 counted values in 4 rows
    with pytest.raises(ValueError, match="x: 3 missing"):
        DriftProfile.model_validate(broken)


def test_an_all_missing_live_feature_is_drift_with_a_missing_data_reason(profile):
    numeric, categorical, missing = _window(profile, 2000, seed=1, nan_share={"x1": 1.0})
    assert numeric["x1"].sum() == 0 and missing["x1"] == 2000
    report = evaluate(profile, numeric, categorical, live_missing=missing)
    assert report.verdict == Verdict.DRIFT
    x1 = report.feature("x1")
    assert x1.verdict == Verdict.DRIFT
    assert x1.missing is not None and x1.missing.drifted
    assert (x1.missing.live_missing, x1.missing.live_rows) == (2000, 2000)
    assert x1.missing.live_rate == 1.0 and x1.missing.reference_rate == 0.0
    assert x1.missing.p_value < 1e-300 or x1.missing.p_value == 0.0
    assert "missing values rose from 0.0%" in x1.message and "to 100.0%" in x1.message
    assert [f.name for f in report.features if f.verdict == Verdict.DRIFT] == ["x1"]
    assert report.n_live == 2000
    # the same window without missing counts is what the review saw: the feature is only "insufficient"
    blind = evaluate(profile, numeric, categorical)
    assert blind.verdict == Verdict.NO_DRIFT and blind.feature("x1").verdict == Verdict.INSUFFICIENT


def test_a_significant_rise_of_the_missing_rate_is_drift_and_the_same_rate_is_not(profile):
    numeric, categorical, missing = _window(profile, 5000, seed=2, nan_share={"gappy": 0.09, "colour": 0.04})
    report = evaluate(profile, numeric, categorical, live_missing=missing)
    gappy, colour = report.feature("gappy"), report.feature("colour")
    assert gappy.verdict == Verdict.DRIFT and gappy.missing.drifted
    assert gappy.missing.reference_rate == pytest.approx(0.05, abs=0.005)
    assert colour.verdict == Verdict.DRIFT and colour.kind == "categorical"
    assert report.feature("x0").verdict == Verdict.NO_DRIFT
    # the training rate again: no alarm, though the test ran (both sides have missing values)
    numeric, categorical, missing = _window(profile, 5000, seed=3)
    report = evaluate(profile, numeric, categorical, live_missing=missing)
    assert report.verdict == Verdict.NO_DRIFT
    assert report.feature("gappy").missing.p_value is not None
    assert not report.feature("gappy").missing.drifted


def test_one_stray_missing_value_is_not_drift_and_fewer_missing_values_are_not_either(profile):
    numeric, categorical, missing = _window(profile, 300, seed=4)
    missing["x0"] = 1  # one NaN among 301 live rows, none in 20,000 reference rows: exact p = 301/20,301
    report = evaluate(profile, numeric, categorical, live_missing=missing)
    assert report.feature("x0").missing.p_value == pytest.approx(301 / 20_301, rel=1e-9)
    assert report.verdict == Verdict.NO_DRIFT
    numeric, categorical, missing = _window(profile, 5000, seed=5, nan_share={"gappy": 0.0})
    report = evaluate(profile, numeric, categorical, live_missing=missing)
    assert report.feature("gappy").missing.p_value == pytest.approx(1.0)  # one-sided: a drop is no alarm
    assert report.verdict == Verdict.NO_DRIFT


def test_the_missing_test_has_the_minimum_sample_gate(profile):
    numeric, categorical, missing = _window(profile, 50, seed=6, nan_share={"x1": 1.0})
    report = evaluate(
        profile, numeric, categorical, live_missing=missing, config=DriftConfig(min_samples=100)
    )
    x1 = report.feature("x1")
    assert x1.verdict == Verdict.INSUFFICIENT and x1.missing.p_value is None
    assert report.verdict == Verdict.INSUFFICIENT


def test_missing_tests_join_the_multiple_testing_family(profile):
    numeric, categorical, missing = _window(profile, 3000, seed=7)
    report = evaluate(profile, numeric, categorical, live_missing=missing)
    # four distribution tests, and one missing-rate test (gappy: the only feature with missing values)
    gappy = report.feature("gappy").missing
    assert gappy.adjusted_p_value == pytest.approx(min(1.0, gappy.p_value * 5))
    assert report.feature("x0").missing.p_value is None  # no missing value on either side: no test
    assert report.feature("x0").threshold == pytest.approx(0.01 / 5)
    again = DriftReport.model_validate_json(report.model_dump_json())
    assert again == report


def test_missing_rate_test_is_fishers_one_sided_exact_test():
    rng = np.random.default_rng(8)
    ref_rows = rng.integers(1, 3000, size=200)
    live_rows = rng.integers(1, 3000, size=200)
    ref_missing = rng.binomial(ref_rows, rng.uniform(0, 0.3, size=200))
    live_missing = rng.binomial(live_rows, rng.uniform(0, 0.3, size=200))
    live_missing[:5] = live_rows[:5]  # all missing
    ref_missing[5:10] = 0
    p = missing_rate_test(ref_missing, ref_rows, live_missing, live_rows)
    for i in range(200):
        table = [
            [live_missing[i], live_rows[i] - live_missing[i]],
            [ref_missing[i], ref_rows[i] - ref_missing[i]],
        ]
        expected = stats.fisher_exact(table, alternative="greater").pvalue
        assert p[i] == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_missing_rate_test_holds_alpha_under_no_change():
    # 40,000 windows where reference and live share one missing rate: the false-alarm rate stays <= alpha.
    rng = np.random.default_rng(9)
    windows = 40_000
    rate = rng.choice([0.001, 0.01, 0.05, 0.3], size=windows)
    ref_rows = np.full(windows, 20_000)
    live_rows = rng.choice([100, 1000, 10_000], size=windows)
    p = missing_rate_test(rng.binomial(ref_rows, rate), ref_rows, rng.binomial(live_rows, rate), live_rows)
    for alpha in (0.01, 0.05):
        assert np.mean(p <= alpha) <= alpha * 1.1
    # and it has power: 5% -> 7% missing over 5,000 live rows is found nearly always at alpha = 1%
    live = np.full(2000, 5000)
    ref = np.full(2000, 20_000)
    p = missing_rate_test(rng.binomial(ref, 0.05), ref, rng.binomial(live, 0.07), live)
    assert np.mean(p <= 0.01) > 0.95
