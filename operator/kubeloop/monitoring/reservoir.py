"""The live sample of one window, cut out of the servers' reservoirs and pooled across replicas.

A server keeps one uniform reservoir (Algorithm R, ``capacity`` rows) of everything it saw since it started,
not per window. Two facts make a window's share of it recoverable, given the previous reservoir of the
same server:

- while the reservoir is not full, slot ``i`` holds row ``i``: the slots past the previous fill are exactly
  the window's rows;
- once full, a row enters only by replacing a slot, so the slots whose row changed hold the window's rows;
  and since the reservoir is a uniform subset of all rows, its intersection with the window is a uniform
  subset of the window's rows.

The two cases are one rule: new slots past the previous fill, plus earlier slots whose row changed. A row
that replaced an identical row goes unnoticed, so rows are compared across every aligned feature at once.
Columns are aligned by slot only when the server dropped no non-finite value from them; other columns of
that pod are left out of the window.

A server that started inside the window gives its whole reservoir. The previous reservoirs are kept in the
operator's memory only (they are large), so after an operator restart a long-running pod gives no sample
for one window; the counts (and every binned method) are unaffected.

Replicas see different traffic volumes and keep different shares of it, so pooling takes from each pod the
same fraction of its window rows: the pooled sample stays a uniform sample of the pooled traffic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from kubeloop.contract import MonitoringSnapshot

__all__ = ["PodSample", "SampleMemory", "pod_window_sample", "pool_samples"]


@dataclass(frozen=True)
class SampleMemory:
    """A pod's reservoir at the last check."""

    server_id: str
    seen: int
    capacity: int
    columns: Mapping[str, np.ndarray]

    @classmethod
    def of(cls, snapshot: MonitoringSnapshot) -> SampleMemory:
        return cls(
            server_id=snapshot.server_id,
            seen=snapshot.sample_seen,
            capacity=snapshot.sample_capacity,
            columns={name: np.asarray(v, dtype=float) for name, v in snapshot.sample.items()},
        )

    @property
    def filled(self) -> int:
        return min(self.seen, self.capacity)

    def aligned(self) -> dict[str, np.ndarray]:
        """Columns that still have one value per slot."""
        return {n: c for n, c in self.columns.items() if c.shape[0] == self.filled}


@dataclass(frozen=True)
class PodSample:
    """One pod's share of the window: a uniform sample per feature, and how many window rows it stands for."""

    rows: int
    columns: Mapping[str, np.ndarray]


def pod_window_sample(
    now: MonitoringSnapshot | SampleMemory, before: SampleMemory | None, *, whole: bool
) -> PodSample | None:
    """The window rows in ``now``'s reservoir; None when they cannot be told apart.

    ``whole``: the server started inside the window (or its counters were reset), so all of it is window.
    """
    current = now if isinstance(now, SampleMemory) else SampleMemory.of(now)
    if whole:
        return PodSample(rows=current.seen, columns=dict(current.columns))
    if before is None or before.server_id != current.server_id or before.seen > current.seen:
        return None
    rows = current.seen - before.seen
    old, new = before.aligned(), current.aligned()
    names = sorted(old.keys() & new.keys())
    if rows == 0:
        return PodSample(rows=0, columns={n: np.empty(0) for n in new})
    if not names:
        return None
    head = before.filled
    changed = np.zeros(current.filled, dtype=bool)
    changed[head:] = True
    for name in names:
        a, b = old[name], new[name][:head]
        changed[:head] |= ~((a == b) | (np.isnan(a) & np.isnan(b)))
    return PodSample(rows=rows, columns={n: new[n][changed] for n in names})


def pool_samples(parts: Sequence[PodSample], *, seed: int) -> dict[str, np.ndarray]:
    """Pool pods' samples per feature, taking the same fraction of every pod's window rows.

    The fraction is the smallest any contributing pod kept, so a pod that kept few of its rows makes the
    pooled sample small rather than lopsided.
    """
    rng = np.random.default_rng(seed)
    names = sorted({n for p in parts for n in p.columns})
    pooled: dict[str, np.ndarray] = {}
    for name in names:
        have = [(p.columns[name], p.rows) for p in parts if name in p.columns and p.rows > 0]
        if not have:
            continue
        fraction = min(min(len(values) / rows, 1.0) for values, rows in have)
        pieces = []
        for values, rows in have:
            take = min(len(values), round(fraction * rows))
            pick = np.sort(rng.choice(len(values), size=take, replace=False)) if take < len(values) else None
            pieces.append(values if pick is None else values[pick])
        pooled[name] = np.concatenate(pieces) if pieces else np.empty(0)
    return pooled
