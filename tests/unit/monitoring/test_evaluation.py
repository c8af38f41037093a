"""A window's verdict from the spec: the minimum-sample gate, the config mapping, and the drift message."""

from __future__ import annotations

import numpy as np
import pytest
from kubeloop.api import DriftMonitorSpec
from kubeloop.drift import Correction, DriftMethod
from kubeloop.monitoring.evaluation import drift_config, judge_window
from kubeloop.monitoring.window import Baselines, aggregate

from .conftest import T0


def _spec(**kw) -> DriftMonitorSpec:
    return DriftMonitorSpec.model_validate({"model": "m", "interval": "10s", **kw})


def _window(server, rows, *, shift=0.0, seed=1):
    s = server(seed=seed)
    _, pods = aggregate({"p": s.snapshot()}, None, window_start=None)
    s.traffic(rows, shift=shift)
    window, _ = aggregate({"p": s.snapshot()}, Baselines(pods=pods, time=T0), window_start=T0)
    return window


def test_spec_maps_onto_the_drift_config():
    config = drift_config(
        _spec(method="PSI", thresholds={"psi": 0.2, "correction": "None", "driftShare": 0.5})
    )
    assert config.method == DriftMethod.PSI and config.threshold == 0.2
    assert config.correction == Correction.NONE and config.min_drifted_share == 0.5
    # A fixed cut of another method does not apply.
    assert drift_config(_spec(method="KS", thresholds={"psi": 0.2})).threshold is None
    fixed_p = drift_config(_spec(thresholds={"pValue": 0.05}))
    assert fixed_p.alpha == 0.05 and fixed_p.correction == Correction.NONE
    assert drift_config(_spec()).alpha == 0.01 and drift_config(_spec()).features is None
    assert drift_config(_spec(features=["x0"])).features == ["x0"]
    # A window's sample is never larger than the reservoir: Wasserstein's per-feature minimum is capped at
    # it. KS works on the counts of every row, so its minimum stays as asked.
    capped = _spec(method="Wasserstein", minSamples=5000)
    assert drift_config(capped, sample_capacity=1000).min_samples == 1000
    assert drift_config(_spec(method="KS", minSamples=5000), sample_capacity=1000).min_samples == 5000
    assert drift_config(_spec(minSamples=5000), sample_capacity=1000).min_samples == 5000


def test_below_min_samples_there_is_no_verdict(server, profile):
    window = _window(server, 150, shift=3.0)  # strongly shifted, but too few rows to say so
    out = judge_window(
        _spec(minSamples=200),
        profile,
        rows=window.rows,
        numeric=window.numeric,
        categorical=window.categorical,
    )
    assert out.verdict == "InsufficientData" and not out.drifted
    assert out.sample_count == 150 and out.features == [] and out.drift_share is None
    assert "150 live rows" in out.message and "minSamples=200" in out.message


def test_a_shifted_feature_is_named_first(server, profile):
    window = _window(server, 2000, shift=0.5)
    out = judge_window(
        _spec(), profile, rows=window.rows, numeric=window.numeric, categorical=window.categorical
    )
    assert out.verdict == "Drift" and out.drifted
    assert [f.name for f in out.top] == ["x0"]
    x0 = next(f for f in out.features if f.name == "x0")
    assert x0.drifted and x0.method == "ChiSquared" and x0.p_value < 1e-10 and x0.score > 50
    assert x0.threshold == pytest.approx(0.01 / 4)  # Bonferroni over four features
    assert not any(f.drifted for f in out.features if f.name != "x0")
    assert out.drift_share == pytest.approx(0.25)
    assert out.message.startswith("drift in 1 of 4 features over 2000 rows: x0 (ChiSquared")
    assert out.scores() == {"x0": x0.score}


def test_traffic_like_training_reads_no_drift(server, profile):
    window = _window(server, 2000, seed=4)
    out = judge_window(
        _spec(), profile, rows=window.rows, numeric=window.numeric, categorical=window.categorical
    )
    assert out.verdict == "NoDrift" and out.top == []
    assert {f.name for f in out.features} == {"x0", "x1", "x2", "colour"}
    assert all(f.p_value is not None and f.p_value > 0.0025 for f in out.features)
    assert out.message.startswith("no drift in 4 features over 2000 rows")


def test_drift_share_gates_the_dataset_verdict(server, profile):
    window = _window(server, 2000, shift=0.5)
    out = judge_window(
        _spec(thresholds={"driftShare": 0.5}),
        profile,
        rows=window.rows,
        numeric=window.numeric,
        categorical=window.categorical,
    )
    assert out.verdict == "NoDrift" and "1 below the driftShare cut" in out.message


def test_wasserstein_uses_the_pooled_sample(server, profile):
    rng = np.random.default_rng(0)
    samples = {"x0": rng.normal(1.0, 1, 300), "x1": rng.normal(0, 1, 300), "x2": rng.normal(0, 1, 300)}
    window = _window(server, 300)
    out = judge_window(
        _spec(method="Wasserstein", minSamples=250),
        profile,
        rows=window.rows,
        numeric=window.numeric,
        categorical=window.categorical,
        samples=samples,
        sample_capacity=1000,
    )
    by_name = {f.name: f for f in out.features}
    assert by_name["x0"].method == "Wasserstein" and by_name["x0"].drifted
    assert by_name["colour"].method == "ChiSquared"  # categorical features stay on counts


def test_features_not_in_the_profile_are_an_error(server, profile):
    window = _window(server, 500)
    with pytest.raises(ValueError, match="not in the reference profile"):
        judge_window(
            _spec(features=["nope"]),
            profile,
            rows=window.rows,
            numeric=window.numeric,
            categorical=window.categorical,
        )
