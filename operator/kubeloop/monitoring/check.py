"""One check of a DriftMonitor, end to end and pure: what the servers reported in, a plan out.

The service gathers the inputs (the monitor, the production version's reference profile, a snapshot from
every server pod, the stored baselines, the TrainingRuns of the model), calls :func:`check`, creates the
retraining run if the plan says so, stores the new baselines, and writes :func:`status_after`.

A check judges a window only when it has usable baselines: taken from the same model version, and not
older than the status's last window. Otherwise (first check, new production version, lost baselines) it
only takes baselines, and the next check judges the first window. With Wasserstein the previous
reservoirs are part of the baselines; they live in memory only, so after an operator restart the first
check takes baselines again. The counters in the status are untouched by a check that only takes baselines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from kubeloop.api import DriftMonitorSpec, DriftMonitorStatus, PerformanceObservation, RetrainRecord, Trigger
from kubeloop.contract import MonitoringSnapshot
from kubeloop.drift import SAMPLE_ONLY_METHODS, DriftMethod, DriftProfile
from kubeloop.monitoring.evaluation import WindowOutcome, judge_window
from kubeloop.monitoring.performance import observe_performance
from kubeloop.monitoring.policy import DAY, RetrainDecision, decide_retrain, merge_history, next_consecutive
from kubeloop.monitoring.reservoir import SampleMemory, pod_window_sample, pool_samples
from kubeloop.monitoring.status import baseline_status, judged_status
from kubeloop.monitoring.window import Baselines, aggregate

__all__ = ["CheckInputs", "CheckPlan", "check", "next_check_at", "record_of", "status_after", "trigger_of"]


@dataclass(frozen=True)
class CheckInputs:
    spec: DriftMonitorSpec
    status: DriftMonitorStatus
    generation: int | None
    created: datetime  # the monitor's creation: the schedule never fires for times before it
    model_version: str
    profile: DriftProfile
    snapshots: Mapping[str, MonitoringSnapshot]  # by pod name, every one serving model_version
    baselines: Baselines | None
    samples: Mapping[str, SampleMemory]  # the previous reservoirs, kept in memory
    running: str | None  # an unfinished TrainingRun of the model, if any
    found: Sequence[RetrainRecord]  # retrains this monitor labelled, read from the cluster
    now: datetime


@dataclass(frozen=True)
class CheckPlan:
    window: int | None  # index of the judged window; None when only baselines were taken
    baselines: Baselines
    samples: dict[str, SampleMemory]
    outcome: WindowOutcome | None = None
    performance: PerformanceObservation | None = None
    consecutive: int = 0
    decision: RetrainDecision = field(default_factory=RetrainDecision)
    history: list[RetrainRecord] = field(default_factory=list)
    window_start: datetime | None = None


def _usable(inputs: CheckInputs, keep_samples: bool) -> Baselines | None:
    b = inputs.baselines
    if b is None or b.time is None or b.model_version != inputs.model_version:
        return None
    if b.window < inputs.status.window and inputs.status.model_version == inputs.model_version:
        return None  # older than the last judged window: its delta would span several windows
    if keep_samples and not inputs.samples and b.pods:
        # Wasserstein needs the previous reservoirs, which live in memory only: after an operator
        # restart, take them again rather than judge a window whose numeric features cannot be tested.
        return None
    return b


def _samples(
    inputs: CheckInputs, current: Mapping[str, SampleMemory], whole: set[str], window: int
) -> tuple[dict, int | None]:
    parts = []
    for pod, memory in current.items():
        part = pod_window_sample(memory, inputs.samples.get(pod), whole=pod in whole)
        if part is not None:
            parts.append(part)
    capacity = min((s.sample_capacity for s in inputs.snapshots.values()), default=None)
    return pool_samples(parts, seed=window), capacity


def check(inputs: CheckInputs) -> CheckPlan:
    """Plan one check: judge the window (if there is one), and decide about retraining.

    Raises ValueError when the spec cannot work with the profile (features it does not have).
    """
    spec, now = inputs.spec, inputs.now
    keep_samples = DriftMethod(spec.method) in SAMPLE_ONLY_METHODS
    memory = {p: SampleMemory.of(s) for p, s in inputs.snapshots.items()} if keep_samples else {}
    policy = spec.retrain
    history = merge_history(
        inputs.status.retrain_history, inputs.found, now=now, keep=policy.cooldown if policy else DAY
    )
    baselines = _usable(inputs, keep_samples)
    start = baselines.time if baselines is not None else None
    counts, pods = aggregate(inputs.snapshots, baselines, window_start=start)
    schedule_since = inputs.status.last_schedule_time or inputs.created
    if baselines is None:
        stored = Baselines(
            model_version=inputs.model_version, window=inputs.status.window, time=now, pods=pods
        )
        decision = decide_retrain(
            spec,
            window=inputs.status.window,
            outcome=None,
            performance=None,
            consecutive=inputs.status.consecutive_drifted_windows,
            history=history,
            schedule_since=schedule_since,
            running=inputs.running,
            now=now,
        )
        return CheckPlan(window=None, baselines=stored, samples=memory, decision=decision, history=history)
    window = inputs.status.window + 1
    samples, capacity = _samples(inputs, memory, counts.whole, window) if keep_samples else ({}, None)
    outcome = judge_window(
        spec,
        inputs.profile,
        rows=counts.rows,
        numeric=counts.numeric,
        categorical=counts.categorical,
        samples=samples,
        sample_capacity=capacity,
        missing=counts.missing,
    )
    performance = observe_performance(spec.performance_floor, counts.feedback)
    previous = (
        inputs.status.consecutive_drifted_windows
        if inputs.status.model_version == inputs.model_version
        else 0
    )
    consecutive = next_consecutive(previous, outcome.verdict)
    decision = decide_retrain(
        spec,
        window=window,
        outcome=outcome,
        performance=performance,
        consecutive=consecutive,
        history=history,
        schedule_since=schedule_since,
        running=inputs.running,
        now=now,
    )
    stored = Baselines(model_version=inputs.model_version, window=window, time=now, pods=pods)
    return CheckPlan(
        window=window,
        baselines=stored,
        samples=memory,
        outcome=outcome,
        performance=performance,
        consecutive=consecutive,
        decision=decision,
        history=history,
        window_start=start,
    )


def status_after(inputs: CheckInputs, plan: CheckPlan, started: RetrainRecord | None) -> DriftMonitorStatus:
    """The status to write once the plan was carried out (``started``: the retrain created, if any)."""
    if plan.outcome is None or plan.window is None:
        status = baseline_status(
            inputs.status,
            model_version=inputs.model_version,
            pods=len(inputs.snapshots),
            generation=inputs.generation,
            now=inputs.now,
        )
        update: dict = {"retrain_history": plan.history}
        if plan.decision.message:
            update["message"] = f"{status.message}; {plan.decision.message}"
        if started is not None:
            update.update(last_retrain=started, retrain_history=[*plan.history, started])
            if plan.decision.schedule_fire is not None:
                update["last_schedule_time"] = plan.decision.schedule_fire
        return status.model_copy(update=update)
    return judged_status(
        inputs.status,
        model_version=inputs.model_version,
        window=plan.window,
        window_start=plan.window_start,
        outcome=plan.outcome,
        performance=plan.performance,
        consecutive=plan.consecutive,
        decision=plan.decision,
        started=started,
        history=plan.history,
        generation=inputs.generation,
        now=inputs.now,
    )


def trigger_of(plan: CheckPlan, monitor: str) -> Trigger | None:
    """The trigger of the retrain the plan starts, as the run's annotation and the version's lineage say it."""
    due = plan.decision.due
    if not plan.decision.start or due is None:
        return None
    return Trigger(
        reason=due.reason, monitor=monitor, window=due.window, scores=due.scores, message=due.message[:4096]
    )


def record_of(trigger: Trigger, name: str, now: datetime) -> RetrainRecord:
    """The status record of a retrain just created."""
    return RetrainRecord(
        training_run=name,
        reason=trigger.reason,
        window=trigger.window,
        time=now,
        scores=trigger.scores,
        message=trigger.message,
    )


def next_check_at(spec: DriftMonitorSpec, status: DriftMonitorStatus | None) -> datetime | None:
    """When the next check is due: one interval after the last; None means now (never checked)."""
    last = status.last_check_time if status is not None else None
    return None if last is None else last + spec.interval
