"""How a canary step's traffic weight becomes replica counts (and route weights).

Replicas routing (the default, any cluster): one Service selects the pods of every version of the model,
and each ready pod gets about the same share of the traffic, so the canary's share is c / (c + s) for c
canary and s stable pods. With N the stable version's full replica count and w the step's weight:

- w = 100: the canary takes everything: c = R (the canary version's own replica count), s = 0.
- w < 100: c = min(N, max(1, ceil(w * N / 100))) -- never zero, so even a 1% step is served by a pod;
  s is the count in 1..N whose share c / (c + s) is closest to w / 100, the larger s on a tie (more of
  the proven version). So s never exceeds N: the rollout only ever scales the stable down.

Examples with N = 2: 10 -> 1 canary + 2 stable (33%), 50 -> 1 + 1 (50%), 100 -> R + 0.
With N = 4: 10 -> 1 + 4 (20%), 25 -> 1 + 3 (25%), 50 -> 2 + 2, 75 -> 3 + 1, 90 -> 4 + 1 (80%).
With N = 10 every multiple of 10 is exact. The effective share is what the status reports as the weight.

GatewayAPI routing: an HTTPRoute splits by the exact weights (stable 100 - w, canary w), so the stable
keeps all N replicas until promotion and the canary gets c = min(R, max(1, ceil(w * R / 100))).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Routing = Literal["Replicas", "GatewayAPI"]


@dataclass(frozen=True)
class Split:
    """Replica counts of one step, and the share of traffic they give the canary."""

    canary_replicas: int
    stable_replicas: int
    canary_route_weight: int  # the HTTPRoute weight of the canary (GatewayAPI); 0..100
    effective_weight: int  # percent of traffic the canary really gets, rounded half up

    @property
    def stable_route_weight(self) -> int:
        return 100 - self.canary_route_weight


def _half_up(x: float) -> int:
    return math.floor(x + 0.5)


def _share(canary: int, stable: int) -> int:
    total = canary + stable
    return 100 if total == 0 else _half_up(100 * canary / total)


def stable_for(canary: int, weight: int, stable_full: int) -> int:
    """The stable count in 1..stable_full whose split with `canary` pods is closest to `weight` percent."""
    target = weight / 100
    best = stable_full
    best_error = abs(canary / (canary + stable_full) - target)
    for s in range(stable_full - 1, 0, -1):  # downwards, so a tie keeps the larger count
        error = abs(canary / (canary + s) - target)
        if error < best_error - 1e-12:
            best, best_error = s, error
    return best


def split(weight: int, *, stable_full: int, canary_full: int, routing: Routing = "Replicas") -> Split:
    """The replica counts for a step of `weight` percent (see the module docstring for the rule)."""
    if not 1 <= weight <= 100:
        raise ValueError(f"weight must be 1..100, got {weight}")
    if stable_full < 1 or canary_full < 1:
        raise ValueError(f"replica counts must be at least 1, got stable {stable_full}, canary {canary_full}")
    if routing == "GatewayAPI":
        canary = (
            canary_full if weight == 100 else min(canary_full, max(1, math.ceil(weight * canary_full / 100)))
        )
        return Split(canary, stable_full, weight, weight)
    if weight == 100:
        return Split(canary_full, 0, 100, 100)
    canary = min(stable_full, max(1, math.ceil(weight * stable_full / 100)))
    stable = stable_for(canary, weight, stable_full)
    return Split(canary, stable, weight, _share(canary, stable))


def full_canary(canary_full: int) -> Split:
    """A version with no stable to compare with (the model's first production version) takes everything."""
    return Split(canary_full, 0, 100, 100)
