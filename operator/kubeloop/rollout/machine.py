"""The canary rollout as a pure state machine: the stored rollout status plus what is observed now give
the next action and the new status.

Phases (``status.rollout.phase``)::

    Idle ──Production requested──> Pending ──> Progressing(step 0) ──pass──> Progressing(step 1) ... ──> Promoted
                                      │            │   ^  │fail / inconclusive too long / canary never Ready
                                      │            v   │  └──────────────────────────────────────> RolledBack
                                      │          Paused (manual approval of the next step)
                                      └─ any active phase ──a newer Production request──> Superseded
                                         any active phase ──Production no longer requested──> Idle (cancelled)

Every decision is level-based: it reads the whole state each time, so the operator can die at any line
and a restart converges to the same place. Side effects are ordered so that traffic is never lost:

- into a step: the canary is scaled up first and must be Ready before the stable is scaled down, and
  the step's interval starts only when both counts are in effect;
- out of a rollout that did not promote (RolledBack, Superseded, cancelled): the stable goes back to its
  full count and must be Ready before the canary is scaled to zero ("unwinding"; ``completionTime`` is set
  when it is done);
- the step's clock starts at the next whole second (status times have whole seconds), so a step never
  runs shorter than its interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from kubeloop.api import CanaryPlan, RolloutStatus, StepAnalysis, format_time
from kubeloop.rollout.analysis import StepVerdict
from kubeloop.rollout.weights import Routing, Split, full_canary, split

ACTIVE = ("Pending", "Progressing", "Paused")
UNWINDING = ("RolledBack", "Superseded", "Idle")  # with completionTime unset: scaling back is under way

# How soon to look again, seconds.
POLL = 1.0
APPROVAL_POLL = 2.0
IDLE_POLL = 30.0
MAX_RECHECK = 10.0


@dataclass(frozen=True)
class Workload:
    """What a Deployment reports."""

    exists: bool = False
    replicas: int = 0  # spec.replicas
    ready: int = 0  # status.readyReplicas
    current: int = 0  # status.replicas: pods that are not terminating
    stuck: str | None = None  # why it stopped progressing (ProgressDeadlineExceeded), if it did


@dataclass(frozen=True)
class StableVersion:
    """The model's production version, which this rollout replaces."""

    name: str
    replicas: int  # its full replica count (spec.serving.replicas)
    workload: Workload


@dataclass(frozen=True)
class Observation:
    now: datetime
    desired_production: bool  # spec.stage == Production
    is_stable: bool  # this version is already the model's production version (status.stage)
    plan: CanaryPlan
    replicas: int  # this version's full replica count
    routing: Routing
    canary: Workload  # this version's Deployment
    stable: StableVersion | None = None
    approved_step: int | None = None
    superseded_by: str | None = None  # a newer Production request of the same model
    waiting_for: str | None = None  # an older rollout of the same model that is still winding down
    verdict: StepVerdict | None = None  # the analysis of the current step, when the caller ran it


@dataclass(frozen=True)
class Scale:
    """Replica counts (None: leave as is) and the canary's route weight (GatewayAPI; None: leave)."""

    canary: int | None = None
    stable: int | None = None
    route_weight: int | None = None


@dataclass(frozen=True)
class Decision:
    rollout: RolloutStatus
    action: str  # Hold, Scale, StartStep, Analyse, Promote, Done
    reason: str  # CamelCase, for the Progressing condition and events
    message: str
    scale: Scale | None = None
    requeue: float = POLL
    event: tuple[str, str] | None = None  # (reason, message) of a lifecycle Event; Warning if RolledBack
    rolled_back: tuple[str, str] | None = None  # (reason, message) when the rollout was rolled back now
    analysis: StepAnalysis | None = None  # a verdict recorded now
    extra: dict = field(default_factory=dict)


def _with(st: RolloutStatus, **changes: object) -> RolloutStatus:
    return st.model_copy(update=changes)


def _ceil_second(t: datetime) -> datetime:
    return t.replace(microsecond=0) + timedelta(seconds=1) if t.microsecond else t


def _target(obs: Observation, step: int) -> Split:
    if obs.stable is None:
        return full_canary(obs.replicas)
    weight = obs.plan.steps[step].weight
    return split(weight, stable_full=obs.stable.replicas, canary_full=obs.replicas, routing=obs.routing)


def _label(obs: Observation, step: int) -> str:
    return f"step {step + 1}/{len(obs.plan.steps)} (weight {obs.plan.steps[step].weight}%)"


def _approved(obs: Observation, step: int) -> bool:
    return not obs.plan.steps[step].manual_approval or (
        obs.approved_step is not None and obs.approved_step >= step
    )


def decide(state: RolloutStatus | None, obs: Observation) -> Decision:
    """The next action for this version's rollout, and its rollout status afterwards."""
    st = state or RolloutStatus()
    if st.phase in UNWINDING and st.start_time is not None and st.completion_time is None:
        return _unwind(st, obs)
    if st.phase in ACTIVE and obs.is_stable:
        # The registry already made this version the production one (a promotion that was interrupted
        # after the registry update, or a manual edit): the rollout is over.
        done = _with(st, phase="Promoted", weight=100, completion_time=obs.now, inconclusive_since=None)
        return Decision(done, "Done", "Promoted", "this version is the production version", requeue=IDLE_POLL)
    if st.phase in ACTIVE and not obs.desired_production:
        return _begin_unwind(st, obs, "Idle", "RolloutCancelled", "stage Production is no longer requested")
    if st.phase in ACTIVE and obs.superseded_by:
        return _begin_unwind(
            st,
            obs,
            "Superseded",
            "Superseded",
            f"superseded by {obs.superseded_by}, a newer Production request",
        )
    if st.phase == "Pending":
        return _pending(st, obs)
    if st.phase == "Paused":
        return _paused(st, obs)
    if st.phase == "Progressing":
        return _progressing(st, obs)
    return _settled(st, obs)


def start(state: RolloutStatus | None, obs: Observation) -> Decision | None:
    """A Production request arrived (`spec.stage` was set to Production): the rollout starts, Pending.

    Called once per request, by the handler of `spec.stage`, never from the periodic reconcile: a version
    whose old request already ended (promoted and later archived, rolled back, superseded) must not take
    production back on its own. None when there is nothing to start: the version is already the
    production one, or its rollout is under way.
    """
    st = state or RolloutStatus()
    if obs.is_stable or st.phase in ACTIVE:
        return None
    started = RolloutStatus(
        phase="Pending", start_time=obs.now, stable_version=obs.stable.name if obs.stable else None
    )
    target = "the first production version" if obs.stable is None else f"canary next to {obs.stable.name}"
    return Decision(
        started,
        "Hold",
        "Pending",
        f"rollout requested: {target}",
        requeue=0.0,
        event=("RolloutStarted", f"stage Production requested: rollout as {target}"),
    )


def stable_weight(before: RolloutStatus | None, after: RolloutStatus) -> int | None:
    """The stable version's share of traffic once this decision is applied (its `status.rollout.weight`), or
    None when this rollout does not speak for the stable.

    The canary's weight is the share it really gets, so the stable serves the rest: 100 - w during a step
    (0 at the 100% step and on promotion), 100 again once a rollback, supersession or cancel has handed the
    traffic back (the canary's weight is then 0). Only a rollout that was past Pending and not yet finished
    when the tick began speaks: a Pending one has moved nothing (an older rollout may still be handing the
    traffic back), and a finished one has let go (a newer rollout may be moving the stable now). The tick
    that finishes an unwinding still speaks, so the stable is back at 100 before the canary stops looking.
    """
    st = before or RolloutStatus()
    moving = st.phase in ("Progressing", "Paused")
    unwinding = st.phase in UNWINDING and st.start_time is not None and st.completion_time is None
    if not (moving or unwinding) or after.stable_version is None:
        return None
    return 100 - after.weight


# -- at rest -------------------------------------------------------------------------------------------------
def _settled(st: RolloutStatus, obs: Observation) -> Decision:
    """No rollout under way (a new one only starts through `start`): keep the Deployment as it should be."""
    if obs.is_stable:
        # The production version serves at its full count; its replicas are otherwise left alone, because a
        # rollout of a newer version scales them.
        if not obs.canary.exists:
            return Decision(
                st,
                "Scale",
                "Serving",
                f"creating the production Deployment ({obs.replicas} replicas)",
                scale=Scale(canary=obs.replicas),
            )
        return Decision(st, "Done", "Serving", "this is the production version", requeue=IDLE_POLL)
    if not obs.desired_production and st.phase != "Idle":
        # The request was withdrawn after the rollout ended: a new Production request starts afresh.
        return Decision(_with(st, phase="Idle"), "Hold", "Idle", "no rollout requested", requeue=0.0)
    if obs.canary.replicas > 0:
        # Neither production nor rolling out (rolled back, superseded, archived): nothing should serve it.
        return Decision(st, "Scale", "ScaledDown", "scaling an idle version to zero", scale=Scale(canary=0))
    reason = {"Promoted": "Promoted", "RolledBack": "RolledBack", "Superseded": "Superseded"}.get(
        st.phase, "Idle"
    )
    return Decision(st, "Done", reason, f"rollout {st.phase.lower()}", requeue=IDLE_POLL)


# -- Pending -------------------------------------------------------------------------------------------------
def _pending(st: RolloutStatus, obs: Observation) -> Decision:
    if obs.waiting_for:
        return Decision(
            st,
            "Hold",
            "WaitingForRollout",
            f"waiting for the rollout of {obs.waiting_for} to wind down",
            requeue=POLL,
        )
    stable_name = obs.stable.name if obs.stable else None
    if obs.stable is None:
        last = len(obs.plan.steps) - 1
        moving = _with(st, phase="Progressing", step=last, stable_version=None, step_start_time=None)
        return _progressing(moving, obs)
    moving = _with(st, stable_version=stable_name, step=0, step_start_time=None, inconclusive_since=None)
    if not _approved(obs, 0):
        paused = _with(moving, phase="Paused")
        return _paused(paused, obs, event=True)
    return _progressing(_with(moving, phase="Progressing"), obs)


# -- Paused --------------------------------------------------------------------------------------------------
def _paused(st: RolloutStatus, obs: Observation, event: bool = False) -> Decision:
    step = min(st.step, len(obs.plan.steps) - 1)
    if _approved(obs, step):
        return _progressing(_with(st, phase="Progressing", step_start_time=None), obs)
    message = (
        f"{_label(obs, step)} waits for approval: set spec.approvedStep to {step} or annotate "
        f"kubeloop.dev/approved-step={step}"
    )
    return Decision(
        st,
        "Hold",
        "AwaitingApproval",
        message,
        requeue=APPROVAL_POLL,
        event=("AwaitingApproval", message) if event else None,
    )


# -- Progressing ---------------------------------------------------------------------------------------------
def _progressing(st: RolloutStatus, obs: Observation) -> Decision:
    step = min(st.step, len(obs.plan.steps) - 1)
    target = _target(obs, step)
    first_version = obs.stable is None
    st = _with(st, step=step, canary_replicas=target.canary_replicas, stable_replicas=target.stable_replicas)
    if st.step_start_time is None:
        return _scale_into_step(st, obs, target, first_version)
    scale = _drift(obs, target)
    if scale is not None:  # someone changed the replica counts under us: put them back, keep the clock
        return Decision(
            st, "Scale", "StepProgressing", f"{_label(obs, step)}: restoring replica counts", scale=scale
        )
    interval = obs.plan.steps[step].interval
    due = st.step_start_time + interval
    if obs.now < due:
        left = (due - obs.now).total_seconds()
        return Decision(
            st,
            "Hold",
            "StepProgressing",
            # an absolute time, so that the status does not change (and is not rewritten) on every look
            f"{_label(obs, step)}: analysis at {format_time(due)}",
            requeue=max(left, 0.05),
        )
    if obs.verdict is None:
        return Decision(st, "Analyse", "Analysing", f"{_label(obs, step)}: analysing", requeue=0.0)
    return _judge(st, obs, step, obs.verdict, due)


def _scale_into_step(st: RolloutStatus, obs: Observation, target: Split, first_version: bool) -> Decision:
    step = st.step
    label = "first production version" if first_version else _label(obs, step)
    canary = obs.canary
    if canary.stuck:
        return _fail(
            st, obs, "CanaryNotReady", f"canary pods did not become Ready at {label}: {canary.stuck}"
        )
    if not canary.exists or canary.replicas != target.canary_replicas:
        return Decision(
            st,
            "Scale",
            "ScalingCanary",
            f"{label}: scaling the canary to {target.canary_replicas}",
            scale=Scale(canary=target.canary_replicas),
        )
    if canary.ready < target.canary_replicas:
        return Decision(
            st,
            "Hold",
            "ScalingCanary",
            f"{label}: {canary.ready}/{target.canary_replicas} canary pods Ready",
            requeue=POLL,
        )
    if first_version:
        return _promote(st, obs, "no production version to compare with; the canary is Ready")
    stable = obs.stable
    assert stable is not None
    route = target.canary_route_weight if obs.routing == "GatewayAPI" else None
    if stable.workload.replicas != target.stable_replicas or (route is not None and st.weight != route):
        # The stable shrinks only now that the canary is Ready, so serving capacity never drops.
        moved = _with(st, weight=target.effective_weight)
        return Decision(
            moved,
            "Scale",
            "ScalingStable",
            f"{label}: scaling the stable to {target.stable_replicas}",
            scale=Scale(stable=target.stable_replicas, route_weight=route),
        )
    if stable.workload.current > target.stable_replicas:
        return Decision(
            st,
            "Hold",
            "ScalingStable",
            f"{label}: waiting for {stable.workload.current - target.stable_replicas} stable pods to stop",
            requeue=POLL,
        )
    started = _with(
        st, step_start_time=_ceil_second(obs.now), inconclusive_since=None, weight=target.effective_weight
    )
    return Decision(
        started,
        "StartStep",
        "StepProgressing",
        f"{label}: {target.canary_replicas} canary and {target.stable_replicas} stable replicas "
        f"({target.effective_weight}% of traffic)",
        requeue=obs.plan.steps[step].interval.total_seconds(),
        event=(
            "StepStarted",
            f"{label} started: {target.canary_replicas} canary and "
            f"{target.stable_replicas} stable replicas, {target.effective_weight}% of traffic",
        ),
    )


def _drift(obs: Observation, target: Split) -> Scale | None:
    canary = target.canary_replicas if obs.canary.replicas != target.canary_replicas else None
    stable = None
    if obs.stable is not None and obs.stable.workload.replicas != target.stable_replicas:
        stable = target.stable_replicas
    if canary is None and stable is None:
        return None
    return Scale(canary=canary, stable=stable)


def _record(
    st: RolloutStatus, obs: Observation, step: int, verdict: StepVerdict, label: str | None = None
) -> tuple[RolloutStatus, StepAnalysis]:
    entry = StepAnalysis(
        step=step,
        weight=st.weight,
        verdict=label or verdict.verdict,  # type: ignore[arg-type]
        measurements=verdict.measurements,
        time=obs.now,
        message=verdict.message,
    )
    analyses = list(st.analyses)
    if analyses and analyses[-1].step == step and analyses[-1].verdict == "Inconclusive":
        analyses[-1] = entry  # a re-check of the same step replaces the previous inconclusive one
    else:
        analyses.append(entry)
    return _with(st, analyses=analyses), entry


def _judge(st: RolloutStatus, obs: Observation, step: int, verdict: StepVerdict, due: datetime) -> Decision:
    label = _label(obs, step)
    if verdict.verdict == "Pass":
        st, entry = _record(st, obs, step, verdict)
        if step == len(obs.plan.steps) - 1:
            decision = _promote(st, obs, f"{label} passed: {verdict.message}")
            return replace(decision, analysis=entry)
        nxt = _with(st, step=step + 1, step_start_time=None, inconclusive_since=None)
        event = ("StepPassed", f"{label} passed: {verdict.message}")
        if not _approved(obs, step + 1):
            paused = _paused(_with(nxt, phase="Paused"), obs, event=True)
            return replace(paused, analysis=entry, event=event)
        moving = _progressing(_with(nxt, phase="Progressing"), obs)
        return replace(moving, analysis=entry, event=event)
    if verdict.verdict == "Fail":
        st, entry = _record(st, obs, step, verdict)
        metric = verdict.failed.metric if verdict.failed else "analysis"
        decision = _fail(st, obs, "AnalysisFailed", f"{label} failed: {verdict.message}", metric=metric)
        return replace(decision, analysis=entry)
    # Inconclusive: wait for data up to the deadline, then fail -- never pass on missing data.
    deadline = due + obs.plan.analysis.inconclusive_timeout
    if obs.now >= deadline:
        timeout = obs.plan.analysis.inconclusive_timeout
        failed = StepVerdict(
            "Fail",
            verdict.measurements,
            f"inconclusive for {int(timeout.total_seconds())}s past the interval: {verdict.message}",
        )
        st, entry = _record(st, obs, step, failed, label="Fail")
        decision = _fail(st, obs, "AnalysisInconclusive", f"{label} failed: {failed.message}")
        return replace(decision, analysis=entry)
    st, entry = _record(st, obs, step, verdict)
    st = _with(st, inconclusive_since=st.inconclusive_since or obs.now)
    interval = obs.plan.steps[step].interval.total_seconds()
    recheck = min(MAX_RECHECK, max(POLL, interval / 2), (deadline - obs.now).total_seconds())
    return Decision(
        st,
        "Hold",
        "AnalysisInconclusive",
        f"{label} inconclusive: {verdict.message}",
        requeue=max(recheck, 0.05),
        analysis=entry,
    )


# -- endings -------------------------------------------------------------------------------------------------
def _promote(st: RolloutStatus, obs: Observation, why: str) -> Decision:
    done = _with(
        st,
        phase="Promoted",
        weight=100,
        completion_time=obs.now,
        inconclusive_since=None,
        canary_replicas=obs.replicas,
        stable_replicas=0,
    )
    message = f"promoted: {why}"
    return Decision(done, "Promote", "Promoted", message, requeue=IDLE_POLL, event=("Promoted", message))


def _fail(
    st: RolloutStatus, obs: Observation, reason: str, message: str, metric: str | None = None
) -> Decision:
    decision = _begin_unwind(st, obs, "RolledBack", reason, message)
    return replace(
        decision,
        rolled_back=(reason, message),
        event=("RolledBack", message),
        extra={"metric": metric} if metric else {},
    )


def _begin_unwind(st: RolloutStatus, obs: Observation, phase: str, reason: str, message: str) -> Decision:
    ending = _with(
        st,
        phase=phase,
        inconclusive_since=None,
        completion_time=None,  # type: ignore[arg-type]
        start_time=st.start_time or obs.now,
    )
    decision = _unwind(ending, obs)
    return replace(decision, reason=reason, message=f"{message}; {decision.message}", event=(reason, message))


def _unwind(st: RolloutStatus, obs: Observation) -> Decision:
    """Give the traffic back: the stable to its full count and Ready first, then the canary to zero."""
    stable = obs.stable
    if stable is not None and stable.name == st.stable_version and obs.canary.replicas > 0:
        if stable.workload.replicas != stable.replicas:
            return Decision(
                _with(st, stable_replicas=stable.replicas),
                "Scale",
                st.phase,
                f"restoring {stable.name} to {stable.replicas} replicas",
                scale=Scale(stable=stable.replicas),
            )
        if stable.workload.ready < stable.replicas:
            return Decision(
                st,
                "Hold",
                st.phase,
                f"waiting for {stable.name}: {stable.workload.ready}/{stable.replicas} Ready",
                requeue=POLL,
            )
        finished = _with(
            st, canary_replicas=0, stable_replicas=stable.replicas, weight=0, completion_time=obs.now
        )
        route = 0 if obs.routing == "GatewayAPI" else None  # the route first, then the canary's pods
        return Decision(
            finished,
            "Scale",
            st.phase,
            f"{stable.name} serves all traffic again",
            scale=Scale(canary=0, route_weight=route),
            requeue=IDLE_POLL,
        )
    # No canary pods (left, or ever): nothing to hand back. A stable left below its full count (the
    # operator died between the two scalings) is restored without waiting.
    restore = None
    if (
        stable is not None
        and stable.name == st.stable_version
        and stable.workload.replicas != stable.replicas
    ):
        restore = stable.replicas
    finished = _with(st, canary_replicas=0, weight=0, completion_time=obs.now)
    return Decision(
        finished,
        "Scale",
        st.phase,
        "canary scaled to zero",
        scale=Scale(canary=0, stable=restore, route_weight=0 if obs.routing == "GatewayAPI" else None),
        requeue=IDLE_POLL,
    )
