"""One window of live traffic: what every pod counted since the last check, summed across replicas.

A model server reports cumulative counts since it started, under a random ``server_id`` that changes on
every start. The monitor keeps each pod's last-seen cumulative counts (its *baseline*) and takes the
difference at the next check. Per pod:

- same ``server_id`` and no counter went down: the window is ``now - baseline``;
- a new ``server_id`` (the container restarted), or a counter that went down (a reset): everything the new
  server counted belongs to the window, so the new cumulative is the delta;
- no baseline (a new pod, or the monitor lost its baselines): the cumulative is the delta only if the server
  started inside the window; a server that is older than the window start also counted traffic of earlier
  windows, so it only sets its baseline and contributes nothing this time;
- a pod that was not scraped loses its baseline (its traffic since then is not attributable to a window).

The first check of a monitor has no window start: every pod only sets its baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from kubeloop.contract import MonitoringSnapshot

__all__ = [
    "Baselines",
    "Contribution",
    "FeedbackTotals",
    "PodBaseline",
    "WindowCounts",
    "aggregate",
]


class _Stored(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class FeedbackTotals(_Stored):
    """Feedback labels joined to predictions: cumulative for a baseline, a difference for a window."""

    task: Literal["classification", "regression"] | None = None  # None until a server says
    joined: int = 0
    correct: int = 0
    abs_error_sum: float = 0.0
    squared_error_sum: float = 0.0

    @classmethod
    def of(cls, snapshot: MonitoringSnapshot) -> FeedbackTotals:
        fb = snapshot.feedback
        task = None
        if fb.correct is not None:
            task = "classification"
        elif fb.abs_error_sum is not None:
            task = "regression"
        return cls(
            task=task,
            joined=fb.joined,
            correct=fb.correct or 0,
            abs_error_sum=fb.abs_error_sum or 0.0,
            squared_error_sum=fb.squared_error_sum or 0.0,
        )

    def minus(self, other: FeedbackTotals) -> FeedbackTotals:
        return FeedbackTotals(
            task=self.task or other.task,
            joined=self.joined - other.joined,
            correct=self.correct - other.correct,
            abs_error_sum=self.abs_error_sum - other.abs_error_sum,
            squared_error_sum=self.squared_error_sum - other.squared_error_sum,
        )

    def plus(self, other: FeedbackTotals) -> FeedbackTotals:
        return FeedbackTotals(
            task=self.task or other.task,
            joined=self.joined + other.joined,
            correct=self.correct + other.correct,
            abs_error_sum=self.abs_error_sum + other.abs_error_sum,
            squared_error_sum=self.squared_error_sum + other.squared_error_sum,
        )


class PodBaseline(_Stored):
    """The cumulative counts one server reported at the end of the last window."""

    server_id: str
    started_at: datetime
    rows: int
    numeric: dict[str, list[int]] = Field(default_factory=dict)
    categorical: dict[str, list[int]] = Field(default_factory=dict)
    feedback: FeedbackTotals = Field(default_factory=FeedbackTotals)
    sample_seen: int = 0
    # None in baselines stored before missing counts were kept: the next delta of those is unknown.
    missing: dict[str, int] | None = None

    @classmethod
    def of(cls, snapshot: MonitoringSnapshot) -> PodBaseline:
        return cls(
            server_id=snapshot.server_id,
            started_at=snapshot.started_at,
            rows=snapshot.rows,
            numeric=snapshot.numeric,
            categorical=snapshot.categorical,
            missing=snapshot.missing,
            feedback=FeedbackTotals.of(snapshot),
            sample_seen=snapshot.sample_seen,
        )


class Baselines(_Stored):
    """Every pod's baseline at the end of one window; what the next window is measured from."""

    model_version: str | None = Field(default=None, description="The ModelVersion these pods serve.")
    window: int = Field(default=0, description="Index of the window these baselines close.")
    time: datetime | None = Field(default=None, description="When they were taken.")
    pods: dict[str, PodBaseline] = Field(default_factory=dict, description="Keyed by pod name.")


class Contribution(StrEnum):
    """How one pod's counts entered the window."""

    DELTA = "Delta"  # same server as at the last check: now - baseline
    RESTARTED = "Restarted"  # new server id, or a counter went down: the whole cumulative
    NEW = "New"  # no baseline, server started inside the window: the whole cumulative
    BASELINED = "Baselined"  # no usable baseline: only sets one, contributes nothing


@dataclass
class WindowCounts:
    """The live counts of one window, summed over the pods that contributed."""

    rows: int = 0
    numeric: dict[str, np.ndarray] = field(default_factory=dict)
    categorical: dict[str, np.ndarray] = field(default_factory=dict)
    feedback: FeedbackTotals = field(default_factory=FeedbackTotals)
    missing: dict[str, int] | None = field(default_factory=dict)  # None: a pod's delta is unknown
    pods: dict[str, Contribution] = field(default_factory=dict)
    whole: set[str] = field(default_factory=set)  # pods whose whole cumulative is this window's

    @property
    def contributing(self) -> int:
        return sum(c != Contribution.BASELINED for c in self.pods.values())


def _went_down(now: Mapping[str, list[int]], before: Mapping[str, list[int]]) -> bool:
    for name, counts in now.items():
        old = before.get(name)
        if old is None or len(old) != len(counts) or (np.asarray(counts) < np.asarray(old)).any():
            return True
    return False


def _reset(snapshot: MonitoringSnapshot, base: PodBaseline) -> bool:
    if snapshot.server_id != base.server_id:
        return True
    fb = FeedbackTotals.of(snapshot)
    return (
        snapshot.rows < base.rows
        or snapshot.sample_seen < base.sample_seen
        or fb.joined < base.feedback.joined
        or _went_down(snapshot.numeric, base.numeric)
        or _went_down(snapshot.categorical, base.categorical)
    )


def _contribution(
    snapshot: MonitoringSnapshot, base: PodBaseline | None, window_start: datetime | None
) -> Contribution:
    if base is not None and window_start is not None:
        return Contribution.RESTARTED if _reset(snapshot, base) else Contribution.DELTA
    if window_start is not None and snapshot.started_at >= window_start:
        return Contribution.NEW
    return Contribution.BASELINED


def _add(
    total: dict[str, np.ndarray], counts: Mapping[str, list[int]], minus: Mapping[str, list[int]]
) -> None:
    for name, values in counts.items():
        delta = np.asarray(values, dtype=np.int64)
        if name in minus:
            delta = delta - np.asarray(minus[name], dtype=np.int64)
        if name in total:
            if total[name].shape != delta.shape:
                raise ValueError(f"{name}: pods report {total[name].shape[0]} and {delta.shape[0]} bins")
            total[name] = total[name] + delta
        else:
            total[name] = delta


def aggregate(
    snapshots: Mapping[str, MonitoringSnapshot],
    before: Baselines | None,
    *,
    window_start: datetime | None,
) -> tuple[WindowCounts, dict[str, PodBaseline]]:
    """Sum the window's counts over the pods, and return the baselines the next window starts from.

    ``snapshots`` are keyed by pod name and must all serve one artifact (the same reference bins).
    ``window_start`` is the end of the previous window (None on the first check, when nothing is summed).
    """
    pods = before.pods if before is not None else {}
    window = WindowCounts()
    for pod in sorted(snapshots):
        snapshot, base = snapshots[pod], pods.get(pod)
        how = _contribution(snapshot, base, window_start)
        window.pods[pod] = how
        if how == Contribution.BASELINED:
            continue
        whole = how != Contribution.DELTA
        if whole:
            window.whole.add(pod)
        base_numeric = {} if whole or base is None else base.numeric
        base_categorical = {} if whole or base is None else base.categorical
        _add(window.numeric, snapshot.numeric, base_numeric)
        _add(window.categorical, snapshot.categorical, base_categorical)
        base_missing = {} if whole or base is None else base.missing
        if window.missing is not None and base_missing is not None:
            for name, n in snapshot.missing.items():
                window.missing[name] = window.missing.get(name, 0) + n - base_missing.get(name, 0)
        else:
            window.missing = None
        fb = FeedbackTotals.of(snapshot)
        if not whole and base is not None:
            window.rows += snapshot.rows - base.rows
            fb = fb.minus(base.feedback)
        else:
            window.rows += snapshot.rows
        window.feedback = window.feedback.plus(fb)
    return window, {pod: PodBaseline.of(s) for pod, s in snapshots.items()}
