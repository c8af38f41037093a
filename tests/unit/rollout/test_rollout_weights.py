"""Step weights to replica counts: the documented examples, and the rule checked exhaustively."""

from __future__ import annotations

import math

import pytest
from kubeloop.rollout.weights import full_canary, split


@pytest.mark.parametrize(
    ("weight", "stable_full", "canary", "stable", "share"),
    [
        (10, 2, 1, 2, 33),
        (50, 2, 1, 1, 50),
        (10, 4, 1, 4, 20),
        (25, 4, 1, 3, 25),
        (50, 4, 2, 2, 50),
        (75, 4, 3, 1, 75),
        (90, 4, 4, 1, 80),
        (10, 10, 1, 9, 10),
        (30, 10, 3, 7, 30),
        (1, 1, 1, 1, 50),
        (99, 1, 1, 1, 50),
    ],
)
def test_documented_examples(weight, stable_full, canary, stable, share):
    s = split(weight, stable_full=stable_full, canary_full=3)
    assert (s.canary_replicas, s.stable_replicas, s.effective_weight) == (canary, stable, share)


def test_weight_100_gives_the_canary_everything_at_its_own_count():
    s = split(100, stable_full=4, canary_full=3)
    assert (s.canary_replicas, s.stable_replicas, s.effective_weight) == (3, 0, 100)
    assert full_canary(5) == split(100, stable_full=1, canary_full=5)


@pytest.mark.parametrize("stable_full", range(1, 21))
def test_the_rule_for_every_weight(stable_full):
    for weight in range(1, 100):
        s = split(weight, stable_full=stable_full, canary_full=7)
        c = s.canary_replicas
        assert c == min(stable_full, max(1, math.ceil(weight * stable_full / 100)))
        assert 1 <= s.stable_replicas <= stable_full  # the stable is only ever scaled down, never to zero
        errors = [abs(c / (c + k) - weight / 100) for k in range(1, stable_full + 1)]
        best = min(errors)
        assert abs(c / (c + s.stable_replicas) - weight / 100) == pytest.approx(best)
        # ties go to the larger stable count
        assert s.stable_replicas == max(k for k in range(1, stable_full + 1) if errors[k - 1] <= best + 1e-12)
        assert c + s.stable_replicas >= stable_full  # serving capacity never drops below the stable's
        assert s.effective_weight == math.floor(100 * c / (c + s.stable_replicas) + 0.5)


def test_gateway_api_keeps_the_stable_and_routes_the_exact_weight():
    s = split(10, stable_full=4, canary_full=3, routing="GatewayAPI")
    assert (s.canary_replicas, s.stable_replicas) == (1, 4)
    assert (s.canary_route_weight, s.stable_route_weight, s.effective_weight) == (10, 90, 10)
    s = split(50, stable_full=4, canary_full=3, routing="GatewayAPI")
    assert (s.canary_replicas, s.stable_replicas, s.canary_route_weight) == (2, 4, 50)
    s = split(100, stable_full=4, canary_full=3, routing="GatewayAPI")
    assert (s.canary_replicas, s.stable_replicas, s.stable_route_weight) == (3, 4, 0)


@pytest.mark.parametrize(("weight", "stable_full"), [(0, 2), (101, 2), (50, 0)])
def test_invalid_inputs_are_refused(weight, stable_full):
    with pytest.raises(ValueError):
        split(weight, stable_full=stable_full, canary_full=2)
