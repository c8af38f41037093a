"""The retrain policy: what is due after a window, and whether it may start now.

Level-based: every input that spans windows (the count of drifted windows in a row, the retrains started,
when the schedule last fired) comes from the DriftMonitor's status or from the TrainingRuns the monitor
labelled, so an operator restart neither forgets a count nor triggers twice.

- Due: the performance floor was breached; or this window drifted and it is the ``consecutiveWindows``-th
  drifted window in a row; or the schedule fired since it last did. If several are due, a performance
  breach wins over drift, and drift over the schedule.
- Allowed: there is a retrain policy; no TrainingRun of the model is unfinished (never two retrains of one
  model at once); the cooldown since this monitor's last retrain has passed; and fewer than ``maxPerDay``
  retrains started in the last 24 hours.
- A window with too little data neither extends nor breaks the run of drifted windows: it says nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kubeloop.api import DriftMonitorSpec, PerformanceObservation, RetrainRecord, TriggerReason
from kubeloop.drift import Verdict
from kubeloop.monitoring.cron import parse_cron
from kubeloop.monitoring.evaluation import WindowOutcome

__all__ = [
    "DAY",
    "RetrainDecision",
    "RetrainTrigger",
    "decide_retrain",
    "merge_history",
    "next_consecutive",
]

DAY = timedelta(hours=24)
# Features named in a trigger: the evidence, not an inventory of every feature.
MAX_TRIGGER_SCORES = 10


@dataclass(frozen=True)
class RetrainTrigger:
    """Why a retrain is due: the reason, the window and the evidence."""

    reason: TriggerReason
    window: int
    message: str
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RetrainDecision:
    """What the policy says after one check."""

    due: RetrainTrigger | None = None
    start: bool = False
    blocked: str | None = None  # NoRetrainPolicy, RetrainRunning, Cooldown or DailyCap
    message: str = ""
    schedule_fire: datetime | None = None  # the schedule fire time this check saw, if any


def next_consecutive(previous: int, verdict: str | None) -> int:
    """Drifted windows in a row after a window with ``verdict``."""
    if verdict == Verdict.DRIFT:
        return previous + 1
    if verdict == Verdict.NO_DRIFT:
        return 0
    return previous


def merge_history(
    stored: Iterable[RetrainRecord], found: Iterable[RetrainRecord], *, now: datetime, keep: timedelta = DAY
) -> list[RetrainRecord]:
    """Retrains of the last ``keep`` (at least 24 hours), oldest first, from the status and the TrainingRuns.

    The TrainingRuns this monitor labelled are the ground truth: a run created just before a crash that
    lost the status write still counts for the cooldown and the daily cap. ``keep`` should cover the
    cooldown, so that the last retrain is never forgotten before its cooldown ends.
    """
    by_name = {r.training_run: r for r in stored}
    for r in found:
        by_name.setdefault(r.training_run, r)
    recent = [r for r in by_name.values() if r.time > now - max(keep, DAY)]
    return sorted(recent, key=lambda r: (r.time, r.training_run))


def _drift_trigger(
    spec: DriftMonitorSpec, window: int, outcome: WindowOutcome, consecutive: int
) -> RetrainTrigger:
    scores = outcome.scores(outcome.top[:MAX_TRIGGER_SCORES])
    message = f"{consecutive} drifted windows in a row (consecutiveWindows={spec.consecutive_windows}); {outcome.message}"
    return RetrainTrigger(reason="Drift", window=window, message=message, scores=scores)


def _performance_trigger(spec: DriftMonitorSpec, window: int, perf: PerformanceObservation) -> RetrainTrigger:
    floor = spec.performance_floor
    assert floor is not None and perf.value is not None
    bound = f"below the floor {floor.min}" if perf.metric == "accuracy" else f"above the ceiling {floor.max}"
    message = f"online {perf.metric} {perf.value:.4g} over {perf.labels} feedback labels is {bound}"
    return RetrainTrigger(
        reason="PerformanceBreach", window=window, message=message, scores={perf.metric: perf.value}
    )


def _schedule_fire(spec: DriftMonitorSpec, since: datetime, now: datetime) -> datetime | None:
    if spec.retrain is None or not spec.retrain.schedule:
        return None
    return parse_cron(spec.retrain.schedule).fired_since(since, now)


def decide_retrain(
    spec: DriftMonitorSpec,
    *,
    window: int,
    outcome: WindowOutcome | None,
    performance: PerformanceObservation | None,
    consecutive: int,
    history: Sequence[RetrainRecord],
    schedule_since: datetime,
    running: str | None,
    now: datetime,
) -> RetrainDecision:
    """Decide after one check. ``outcome`` is None when no window was judged (e.g. only baselines were taken).

    ``history`` is :func:`merge_history`'s; ``schedule_since`` the last schedule fire handled (or when the
    monitor was created); ``running`` names an unfinished TrainingRun of the model, if there is one.
    """
    policy = spec.retrain
    fire = _schedule_fire(spec, schedule_since, now)
    due: RetrainTrigger | None = None
    if performance is not None and performance.breached and (policy is None or policy.on_performance):
        due = _performance_trigger(spec, window, performance)
    elif (
        outcome is not None
        and outcome.drifted
        and consecutive >= spec.consecutive_windows
        and (policy is None or policy.on_drift)
    ):
        due = _drift_trigger(spec, window, outcome, consecutive)
    elif fire is not None:
        due = RetrainTrigger(
            reason="Schedule",
            window=window,
            message=f"schedule {policy.schedule!r} fired at {fire:%Y-%m-%dT%H:%MZ}" if policy else "",
        )
    if due is None:
        return RetrainDecision(schedule_fire=fire)
    if policy is None:
        return RetrainDecision(
            due=due,
            blocked="NoRetrainPolicy",
            message=f"would retrain, but spec.retrain is unset: {due.message}",
        )
    if running is not None:
        return RetrainDecision(
            due=due,
            blocked="RetrainRunning",
            message=f"retrain due ({due.reason}) but TrainingRun {running} of model {spec.model} is still running",
            schedule_fire=fire,
        )
    last = history[-1] if history else None
    if last is not None and now < last.time + policy.cooldown:
        return RetrainDecision(
            due=due,
            blocked="Cooldown",
            message=f"retrain due ({due.reason}) but in cooldown until {last.time + policy.cooldown:%Y-%m-%dT%H:%M:%SZ}",
            schedule_fire=fire,
        )
    today = [r for r in history if r.time > now - DAY]
    if len(today) >= policy.max_per_day:
        return RetrainDecision(
            due=due,
            blocked="DailyCap",
            message=f"retrain due ({due.reason}) but {len(today)} retrains started in 24h (maxPerDay={policy.max_per_day})",
            schedule_fire=fire,
        )
    return RetrainDecision(
        due=due, start=True, message=f"retrain started ({due.reason}): {due.message}", schedule_fire=fire
    )
