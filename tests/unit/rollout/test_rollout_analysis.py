"""The step analysis: each metric against scipy/numpy or hand-computed values, and every verdict path."""

from __future__ import annotations

import numpy as np
import pytest
from kubeloop.api import AnalysisSpec
from kubeloop.rollout.analysis import analyse, histogram_quantile, prediction_shift, rebin
from kubeloop.rollout.window import Traffic
from scipy.spatial.distance import jensenshannon

BOUNDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0]


def fast(n: float, errors: float = 0, preds=None, **kw) -> Traffic:
    """n requests, all between 1 and 5 ms."""
    latency = [0, n, 0, 0, 0, 0, 0, 0]
    return Traffic(
        pods=kw.pop("pods", 1),
        requests=n,
        server_errors=errors,
        latency_bounds=BOUNDS,
        latency=latency,
        prediction_kind="class",
        predictions=preds
        if preds is not None
        else {"setosa": n / 3, "versicolor": n / 3, "virginica": n / 3},
        **kw,
    )


SPEC = AnalysisSpec(
    min_requests=50, max_error_rate=0.05, max_p99_latency_milliseconds=50, max_prediction_shift=0.2
)


# -- p99 ------------------------------------------------------------------------------------------------------
def test_quantile_interpolates_inside_the_bucket_as_prometheus_does():
    # 100 observations: 50 in (0, 1], 40 in (1, 2], 10 in (2, 4]
    value, overflow = histogram_quantile(0.99, [1.0, 2.0, 4.0], [50, 40, 10, 0])
    assert not overflow and value == pytest.approx(2.0 + 2.0 * (99 - 90) / 10)
    value, _ = histogram_quantile(0.5, [1.0, 2.0, 4.0], [50, 40, 10, 0])
    assert value == pytest.approx(1.0)
    value, _ = histogram_quantile(0.25, [1.0, 2.0, 4.0], [50, 40, 10, 0])
    assert value == pytest.approx(0.5)  # the first bucket starts at 0


def test_quantile_of_uniform_data_matches_numpy():
    rng = np.random.default_rng(1)
    data = rng.uniform(0, 10, size=200_000)
    bounds = list(np.arange(0.5, 10.5, 0.5))
    counts = np.bincount(np.searchsorted(bounds, data, side="left"), minlength=len(bounds) + 1)
    value, _ = histogram_quantile(0.99, bounds, counts.tolist())
    assert value == pytest.approx(np.quantile(data, 0.99), abs=0.02)


def test_quantile_above_the_largest_bucket_is_flagged():
    assert histogram_quantile(0.99, [1.0, 2.0], [10, 0, 90]) == (2.0, True)
    assert histogram_quantile(0.99, [1.0, 2.0], [0, 0, 0]) == (None, False)


# -- prediction shift ------------------------------------------------------------------------------------------
def test_shift_of_classes_is_scipy_jensen_shannon_with_classes_matched_by_name():
    canary = {"a": 30.0, "b": 60.0, "d": 10.0}
    stable = {"c": 5.0, "b": 40.0, "a": 55.0}
    expected = jensenshannon([30, 60, 0, 10], [55, 40, 5, 0], base=2)
    assert prediction_shift(canary, stable, "class") == pytest.approx(expected)
    assert prediction_shift(canary, canary, "class") == pytest.approx(0.0, abs=1e-9)
    assert prediction_shift({"a": 1.0}, {"b": 1.0}, "class") == pytest.approx(1.0)
    assert prediction_shift({}, stable, "class") is None
    assert prediction_shift(canary, {"a": 0.0}, "class") is None


def test_shift_of_regression_bins_with_the_same_edges_is_exact():
    canary = {"0.0": 1.0, "10.0": 2.0, "+Inf": 1.0}
    stable = {"0.0": 2.0, "10.0": 1.0, "+Inf": 1.0}
    assert prediction_shift(canary, stable, "value") == pytest.approx(
        jensenshannon([1, 2, 1], [2, 1, 1], base=2)
    )


def test_rebin_spreads_a_bin_uniformly_and_keeps_all_mass():
    # bins (-inf,0], (0,10], (10,inf) onto grid 0, 5, 10, 20
    out = rebin([0.0, 10.0], [4.0, 10.0, 6.0], [0.0, 5.0, 10.0, 20.0])
    assert out.tolist() == [4.0, 5.0, 5.0, 6.0, 0.0]
    out = rebin([5.0, 20.0], [3.0, 30.0, 1.0], [0.0, 5.0, 10.0, 20.0])
    assert out.tolist() == [0.0, 3.0, 10.0, 20.0, 1.0]
    assert out.sum() == 34.0


def test_shift_between_regression_versions_with_different_edges():
    canary = {"0.0": 4.0, "10.0": 10.0, "+Inf": 6.0}
    stable = {"5.0": 3.0, "20.0": 30.0, "+Inf": 1.0}
    c = [4.0, 5.0, 5.0, 6.0, 0.0]
    s = [0.0, 3.0, 10.0, 20.0, 1.0]
    assert prediction_shift(canary, stable, "value") == pytest.approx(jensenshannon(s, c, base=2))


# -- verdicts --------------------------------------------------------------------------------------------------
def test_a_healthy_canary_passes_with_every_value_recorded():
    v = analyse(SPEC, fast(300, errors=3), fast(900))
    assert v.verdict == "Pass", v.message
    got = {m.metric: (m.value, m.passed) for m in v.measurements}
    assert got["requests"] == (300, True)
    assert got["errorRate"] == (pytest.approx(0.01), True)
    assert got["p99LatencyMilliseconds"][0] == pytest.approx(1 + 4 * 0.99)  # 99% of the way through (1, 5] ms
    assert got["predictionShift"] == (pytest.approx(0.0, abs=1e-9), True)
    assert "onlineAccuracy" not in got  # not asked for
    assert v.failed is None


def test_errors_fail_the_step_and_name_the_metric():
    v = analyse(SPEC, fast(100, errors=31), fast(900))
    assert v.verdict == "Fail"
    assert v.failed is not None and v.failed.metric == "errorRate" and v.failed.value == pytest.approx(0.31)
    assert v.message == "errorRate 0.31 > 0.05"


def test_slow_canary_fails_on_p99():
    slow = fast(100)
    slow.latency = [0, 90, 0, 0, 10, 0, 0, 0]  # 10% between 50 and 100 ms
    v = analyse(SPEC, slow, fast(900))
    assert v.verdict == "Fail" and v.failed.metric == "p99LatencyMilliseconds"
    assert v.failed.value == pytest.approx(50 + 50 * 0.9)


def test_p99_above_every_bucket_never_passes_even_under_a_huge_bound():
    slow = fast(100)
    slow.latency = [0, 90, 0, 0, 0, 0, 0, 10]
    v = analyse(SPEC.model_copy(update={"max_p99_latency_milliseconds": 600_000}), slow, fast(900))
    assert v.verdict == "Fail" and v.failed.metric == "p99LatencyMilliseconds"
    assert "above the largest latency bucket" in v.message


def test_shifted_predictions_fail():
    shifted = fast(120, preds={"setosa": 120.0})
    v = analyse(SPEC, shifted, fast(900))
    assert v.verdict == "Fail" and v.failed.metric == "predictionShift"
    assert v.failed.value == pytest.approx(jensenshannon([1, 0, 0], [1, 1, 1], base=2))


def test_too_few_requests_is_inconclusive_even_with_errors():
    v = analyse(SPEC, fast(49, errors=49), fast(900))
    assert v.verdict == "Inconclusive" and "requests 49 < 50" in v.message


def test_no_canary_metrics_is_inconclusive():
    v = analyse(SPEC, Traffic(), fast(900))
    assert v.verdict == "Inconclusive" and "no metrics from any canary pod" in v.message
    assert {m.metric: m.value for m in v.measurements}["requests"] is None


def test_no_stable_predictions_is_inconclusive_unless_a_reference_stands_in():
    v = analyse(SPEC, fast(300), Traffic())
    assert v.verdict == "Inconclusive" and v.message == "no data for predictionShift"
    reference = {"setosa": 50.0, "versicolor": 50.0, "virginica": 50.0}
    assert analyse(SPEC, fast(300), Traffic(), stable_reference=reference).verdict == "Pass"


def test_online_accuracy_is_judged_only_with_enough_labels():
    spec = SPEC.model_copy(update={"min_online_accuracy": 0.9})
    few = analyse(spec, fast(300, feedback_joined=20, feedback_correct=2), fast(900))
    assert few.verdict == "Pass" and "onlineAccuracy not judged yet" in few.message
    assert {m.metric: m.passed for m in few.measurements}["onlineAccuracy"] is None
    bad = analyse(spec, fast(300, feedback_joined=100, feedback_correct=70), fast(900))
    assert bad.verdict == "Fail" and bad.message == "onlineAccuracy 0.7 < 0.9"
    good = analyse(spec, fast(300, feedback_joined=100, feedback_correct=95), fast(900))
    assert good.verdict == "Pass"


def test_a_canary_that_refuses_every_request_says_so():
    refusing = fast(60, preds={"setosa": 0.0, "versicolor": 0.0, "virginica": 0.0}, client_errors=60)
    v = analyse(SPEC, refusing, fast(120, client_errors=1))
    assert v.verdict == "Inconclusive"  # 4xx are not server errors; with no predictions there is no shift
    assert v.message == (
        "no data for predictionShift (the canary answered 60 of 60 requests with a client error; the stable 1 of 120)"
    )


def test_a_shift_above_the_bound_from_few_predictions_is_not_yet_evidence():
    # 70/30 against 30/70 is a JS distance of about 0.29, above 0.2; from 60 vs 120 rows it is significant,
    # from 6 vs 12 rows it is not.
    few = analyse(
        SPEC.model_copy(update={"min_requests": 5}),
        fast(6, preds={"a": 4.2, "b": 1.8}),
        fast(12, preds={"a": 3.6, "b": 8.4}),
    )
    shift = {m.metric: m for m in few.measurements}["predictionShift"]
    assert shift.value == pytest.approx(jensenshannon([0.7, 0.3], [0.3, 0.7], base=2)) and shift.value > 0.2
    assert few.verdict == "Inconclusive" and shift.passed is None
    assert "not significant yet (p=" in few.message and "waiting for more predictions" in few.message
    many = analyse(SPEC, fast(60, preds={"a": 42.0, "b": 18.0}), fast(120, preds={"a": 36.0, "b": 84.0}))
    assert many.verdict == "Fail" and many.failed.metric == "predictionShift"


def test_shift_pvalue_is_the_asymptotic_js_test():
    from kubeloop.rollout.analysis import shift_pvalue
    from scipy.stats import chi2

    canary, stable = {"a": 60.0, "b": 25.0, "c": 15.0}, {"a": 100.0, "b": 70.0, "c": 30.0}
    js = jensenshannon([100, 70, 30], [60, 25, 15], base=2)
    statistic = 8 * np.log(2) * js**2 / (1 / 200 + 1 / 100)
    assert shift_pvalue(canary, stable, "class") == pytest.approx(chi2.sf(statistic, 2), rel=1e-9)
    assert shift_pvalue({}, stable, "class") is None
