"""The window's share of the servers' reservoirs: exact before they fill, uniform after, pooled fairly."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from kubeloop.monitoring.reservoir import PodSample, SampleMemory, pod_window_sample, pool_samples
from scipy import stats

from .conftest import T0


def test_before_the_reservoir_fills_the_window_sample_is_exactly_the_window_rows(server):
    a = server(reservoir=500)
    a.traffic(120)
    before = SampleMemory.of(a.snapshot())
    rows = a.traffic(200)
    got = pod_window_sample(a.snapshot(), before, whole=False)
    assert got is not None and got.rows == 200
    for j, name in enumerate(("x0", "x1", "x2")):
        np.testing.assert_array_equal(got.columns[name], rows[:, j].astype(float))


def test_a_full_reservoir_gives_a_uniform_sample_of_the_window_only(server):
    a = server(reservoir=400, seed=3)
    a.traffic(4000)  # history: x0 ~ N(0, 1)
    before = SampleMemory.of(a.snapshot())
    a.traffic(4000, shift=3.0)  # the window: x0 ~ N(3, 1), a distribution the history never had
    got = pod_window_sample(a.snapshot(), before, whole=False)
    assert got is not None and got.rows == 4000
    x0 = got.columns["x0"]
    # About capacity * window / seen = 400 * 4000 / 8000 of the slots hold window rows.
    assert 150 < len(x0) < 250
    # ...and they are all window rows, from the window's distribution.
    assert stats.kstest(x0, stats.norm(3.0, 1.0).cdf).pvalue > 1e-3
    assert x0.min() > -1.0


def test_a_server_that_started_in_the_window_gives_its_whole_reservoir(server):
    a = server(started_at=T0 + timedelta(seconds=3), reservoir=100)
    a.traffic(300)
    got = pod_window_sample(a.snapshot(), None, whole=True)
    assert got is not None and got.rows == 300 and len(got.columns["x1"]) == 100


def test_without_the_previous_reservoir_a_running_server_gives_no_sample(server):
    a = server()
    a.traffic(50)
    assert pod_window_sample(a.snapshot(), None, whole=False) is None
    other = server(seed=5)
    other.traffic(10)
    assert pod_window_sample(a.snapshot(), SampleMemory.of(other.snapshot()), whole=False) is None


def test_an_idle_window_gives_an_empty_sample(server):
    a = server()
    a.traffic(50)
    snap = a.snapshot()
    got = pod_window_sample(a.snapshot(), SampleMemory.of(snap), whole=False)
    assert got is not None and got.rows == 0 and all(len(c) == 0 for c in got.columns.values())


def test_pooling_takes_the_same_fraction_of_every_pod():
    busy = PodSample(rows=10_000, columns={"x": np.zeros(1000)})  # kept 10% of its rows
    quiet = PodSample(rows=500, columns={"x": np.ones(500)})  # kept all of them
    pooled = pool_samples([busy, quiet], seed=0)["x"]
    # 10% of each: 1000 zeros and 50 ones, so the pooled sample mirrors the 20:1 traffic.
    assert len(pooled) == 1050
    assert int(pooled.sum()) == 50


def test_pooling_skips_pods_without_the_feature_and_idle_pods():
    a = PodSample(rows=100, columns={"x": np.arange(100.0), "y": np.arange(100.0)})
    b = PodSample(rows=100, columns={"x": np.arange(50.0)})
    idle = PodSample(rows=0, columns={"x": np.empty(0), "y": np.empty(0)})
    pooled = pool_samples([a, b, idle], seed=1)
    assert len(pooled["x"]) == 100  # half of each
    assert len(pooled["y"]) == 100
