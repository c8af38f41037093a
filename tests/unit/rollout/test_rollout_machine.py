"""Every transition of the rollout state machine, and whole rollouts driven against a simulated cluster."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from kubeloop.api import CanaryPlan, CanaryStep, Measurement, RolloutStatus
from kubeloop.rollout.analysis import StepVerdict
from kubeloop.rollout.machine import (
    Observation,
    Scale,
    StableVersion,
    Workload,
    decide,
    stable_weight,
    start,
)

T0 = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)
PLAN = CanaryPlan(steps=[CanaryStep(weight=w, interval="30s") for w in (10, 50, 100)])
PASS = StepVerdict("Pass", [Measurement(metric="requests", value=80, threshold=50, passed=True)], "fine")
FAIL = StepVerdict(
    "Fail",
    [Measurement(metric="errorRate", value=0.4, threshold=0.01, passed=False)],
    "errorRate 0.4 > 0.01",
    Measurement(metric="errorRate", value=0.4, threshold=0.01, passed=False),
)
UNSURE = StepVerdict("Inconclusive", [], "requests 3 < 50 in the step: too few to judge")


def ready(n: int) -> Workload:
    return Workload(exists=True, replicas=n, ready=n, current=n)


def stable(n: int = 2, full: int = 2, ready_: int | None = None) -> StableVersion:
    w = Workload(exists=True, replicas=n, ready=n if ready_ is None else ready_, current=n)
    return StableVersion(name="iris-v1", replicas=full, workload=w)


def obs(**kw) -> Observation:
    base = dict(
        now=T0,
        desired_production=True,
        is_stable=False,
        plan=PLAN,
        replicas=2,
        routing="Replicas",
        canary=Workload(),
        stable=stable(),
    )
    base.update(kw)
    return Observation(**base)


def progressing(step: int, started: datetime | None = None, **kw) -> RolloutStatus:
    return RolloutStatus(
        phase="Progressing",
        step=step,
        start_time=T0 - timedelta(minutes=5),
        step_start_time=started,
        stable_version="iris-v1",
        **kw,
    )


# -- starting ---------------------------------------------------------------------------------------------
def test_a_production_request_starts_a_pending_rollout_against_the_stable():
    d = start(None, obs())
    assert d.rollout.phase == "Pending" and d.rollout.start_time == T0
    assert d.rollout.stable_version == "iris-v1" and d.rollout.analyses == []
    assert d.action == "Hold" and d.requeue == 0 and d.event[0] == "RolloutStarted"
    assert "canary next to iris-v1" in d.message
    assert start(None, obs(stable=None)).rollout.stable_version is None


@pytest.mark.parametrize("phase", ["Pending", "Progressing", "Paused"])
def test_a_request_during_a_rollout_changes_nothing(phase):
    assert start(RolloutStatus(phase=phase, start_time=T0), obs()) is None


def test_a_request_for_the_production_version_changes_nothing():
    assert start(None, obs(is_stable=True)) is None


@pytest.mark.parametrize("phase", ["RolledBack", "Superseded", "Promoted", "Idle"])
def test_a_new_request_after_an_ended_rollout_starts_afresh(phase):
    old = RolloutStatus(phase=phase, start_time=T0, completion_time=T0, analyses=[], weight=0)
    d = start(old, obs(now=T0 + timedelta(hours=1)))
    assert d.rollout.phase == "Pending" and d.rollout.start_time == T0 + timedelta(hours=1)


def test_the_periodic_reconcile_never_starts_a_rollout_by_itself():
    # e.g. a version promoted long ago and archived since, whose spec still says Production
    for state in (None, RolloutStatus(phase="Promoted", start_time=T0, completion_time=T0)):
        d = decide(state, obs())
        assert d.action == "Done" and d.rollout.phase in ("Idle", "Promoted")


def test_no_request_no_rollout():
    d = decide(None, obs(desired_production=False))
    assert d.action == "Done" and d.rollout.phase == "Idle"


def test_pending_enters_step_zero_by_scaling_the_canary_first():
    d = decide(RolloutStatus(phase="Pending", start_time=T0), obs())
    assert d.rollout.phase == "Progressing" and d.rollout.step == 0
    assert d.action == "Scale" and d.scale == Scale(canary=1)  # 10% of 2 -> 1 canary
    assert (d.rollout.canary_replicas, d.rollout.stable_replicas) == (1, 2)


def test_pending_waits_for_an_older_rollout_to_wind_down():
    d = decide(RolloutStatus(phase="Pending", start_time=T0), obs(waiting_for="iris-v2"))
    assert d.action == "Hold" and d.rollout.phase == "Pending" and "iris-v2" in d.message


def test_pending_pauses_when_step_zero_needs_approval():
    plan = CanaryPlan(steps=[CanaryStep(weight=20, manual_approval=True), CanaryStep(weight=100)])
    d = decide(RolloutStatus(phase="Pending", start_time=T0), obs(plan=plan))
    assert d.rollout.phase == "Paused" and d.rollout.step == 0 and d.action == "Hold"
    assert d.reason == "AwaitingApproval" and "approvedStep to 0" in d.message and d.event is not None


def test_first_version_takes_everything_and_is_promoted_once_ready_without_analysis():
    d = decide(RolloutStatus(phase="Pending", start_time=T0), obs(stable=None))
    assert d.action == "Scale" and d.scale == Scale(canary=2) and d.rollout.step == 2
    d = decide(d.rollout, obs(stable=None, canary=Workload(exists=True, replicas=2, ready=1, current=2)))
    assert d.action == "Hold" and "1/2 canary pods Ready" in d.message
    d = decide(d.rollout, obs(stable=None, canary=ready(2)))
    assert d.action == "Promote" and d.rollout.phase == "Promoted" and d.rollout.completion_time == T0
    assert d.rollout.analyses == [] and "no production version to compare with" in d.message


# -- scaling into a step --------------------------------------------------------------------------------------
def test_the_stable_shrinks_only_after_the_canary_is_ready():
    st = progressing(1)  # step 2: 50% of 2 -> 1 canary + 1 stable
    d = decide(st, obs(canary=Workload(exists=True, replicas=1, ready=0, current=1)))
    assert d.action == "Hold" and d.scale is None
    d = decide(st, obs(canary=ready(1)))
    assert d.action == "Scale" and d.scale == Scale(stable=1) and d.rollout.weight == 50


def test_the_step_clock_starts_when_the_split_is_in_effect_at_the_next_whole_second():
    st = progressing(1)
    now = T0 + timedelta(milliseconds=300)
    d = decide(st, obs(now=now, canary=ready(1), stable=stable(n=1)))
    assert d.action == "StartStep" and d.rollout.step_start_time == T0 + timedelta(seconds=1)
    assert d.requeue == 30 and d.rollout.weight == 50 and d.event[0] == "StepStarted"


def test_waits_for_stable_pods_to_stop():
    st = progressing(1)
    lingering = StableVersion("iris-v1", 2, Workload(exists=True, replicas=1, ready=1, current=2))
    d = decide(st, obs(canary=ready(1), stable=lingering))
    assert d.action == "Hold" and "1 stable pods to stop" in d.message


def test_a_canary_that_never_gets_ready_is_rolled_back():
    stuck = Workload(exists=True, replicas=1, ready=0, current=1, stuck="ProgressDeadlineExceeded: ...")
    d = decide(progressing(0), obs(canary=stuck))
    assert d.rollout.phase == "RolledBack" and d.rolled_back[0] == "CanaryNotReady"
    assert d.action == "Scale" and d.scale == Scale(canary=0)  # the stable was never shrunk


# -- during a step --------------------------------------------------------------------------------------------
def test_holds_until_the_interval_is_over():
    st = progressing(0, started=T0)
    d = decide(st, obs(now=T0 + timedelta(seconds=10), canary=ready(1)))
    assert d.action == "Hold" and d.requeue == pytest.approx(20)
    assert d.message.endswith("analysis at 2025-03-01T10:00:30Z")


def test_replica_counts_changed_by_someone_else_are_restored_without_restarting_the_step():
    st = progressing(0, started=T0)
    d = decide(st, obs(now=T0 + timedelta(seconds=10), canary=ready(3)))
    assert d.action == "Scale" and d.scale == Scale(canary=1) and d.rollout.step_start_time == T0


def test_asks_for_analysis_when_due():
    d = decide(progressing(0, started=T0), obs(now=T0 + timedelta(seconds=30), canary=ready(1)))
    assert d.action == "Analyse"


def test_a_pass_records_the_verdict_and_moves_to_the_next_step():
    st = progressing(0, started=T0, weight=33)
    d = decide(st, obs(now=T0 + timedelta(seconds=31), canary=ready(1), verdict=PASS))
    assert d.rollout.step == 1 and d.rollout.step_start_time is None
    # step 2 is 50%: the canary (1) is already Ready, so the stable goes from 2 to 1 at once
    assert d.action == "Scale" and d.scale == Scale(stable=1) and d.rollout.phase == "Progressing"
    [entry] = d.rollout.analyses
    assert (entry.step, entry.weight, entry.verdict, entry.message) == (0, 33, "Pass", "fine")
    assert d.analysis == entry and d.event[0] == "StepPassed"


def test_a_pass_before_a_manual_step_pauses():
    plan = CanaryPlan(
        steps=[CanaryStep(weight=10), CanaryStep(weight=50, manual_approval=True), CanaryStep(weight=100)]
    )
    st = progressing(0, started=T0)
    d = decide(st, obs(plan=plan, now=T0 + timedelta(minutes=2), canary=ready(1), verdict=PASS))
    assert d.rollout.phase == "Paused" and d.rollout.step == 1 and d.action == "Hold"
    assert d.event[0] == "StepPassed"


@pytest.mark.parametrize(
    ("approved", "phase"), [(None, "Paused"), (0, "Paused"), (1, "Progressing"), (2, "Progressing")]
)
def test_approval_of_a_step_or_a_later_one_resumes(approved, phase):
    plan = CanaryPlan(
        steps=[CanaryStep(weight=10), CanaryStep(weight=50, manual_approval=True), CanaryStep(weight=100)]
    )
    st = RolloutStatus(phase="Paused", step=1, start_time=T0, stable_version="iris-v1")
    d = decide(st, obs(plan=plan, approved_step=approved, canary=ready(1)))
    assert d.rollout.phase == phase


def test_the_last_pass_promotes():
    st = progressing(2, started=T0, weight=100)
    d = decide(st, obs(now=T0 + timedelta(seconds=45), canary=ready(2), stable=stable(n=0), verdict=PASS))
    assert d.action == "Promote" and d.rollout.phase == "Promoted"
    assert d.rollout.completion_time == T0 + timedelta(seconds=45) and d.rollout.weight == 100
    assert d.event[0] == "Promoted" and d.rollout.analyses[-1].verdict == "Pass"


def test_a_fail_rolls_back_naming_the_metric_and_value():
    st = progressing(1, started=T0, weight=50)
    d = decide(st, obs(now=T0 + timedelta(seconds=31), canary=ready(1), stable=stable(n=1), verdict=FAIL))
    assert d.rollout.phase == "RolledBack" and d.rollout.completion_time is None
    reason, message = d.rolled_back
    assert reason == "AnalysisFailed" and "errorRate 0.4 > 0.01" in message and "step 2/3" in message
    assert d.extra["metric"] == "errorRate" and d.event[0] == "RolledBack"
    # unwinding: the stable back to full first
    assert d.action == "Scale" and d.scale == Scale(stable=2)
    assert d.rollout.analyses[-1].verdict == "Fail"


def test_inconclusive_waits_and_is_replaced_by_later_checks():
    st = progressing(0, started=T0)
    d = decide(st, obs(now=T0 + timedelta(seconds=30), canary=ready(1), verdict=UNSURE))
    assert d.action == "Hold" and d.rollout.phase == "Progressing"
    assert d.rollout.inconclusive_since == T0 + timedelta(seconds=30) and d.requeue == 10
    assert [a.verdict for a in d.rollout.analyses] == ["Inconclusive"]
    d2 = decide(d.rollout, obs(now=T0 + timedelta(seconds=40), canary=ready(1), verdict=UNSURE))
    assert len(d2.rollout.analyses) == 1 and d2.rollout.analyses[0].time == T0 + timedelta(seconds=40)
    assert d2.rollout.inconclusive_since == T0 + timedelta(seconds=30)  # the first time is kept
    d3 = decide(d2.rollout, obs(now=T0 + timedelta(seconds=50), canary=ready(1), verdict=PASS))
    assert [a.verdict for a in d3.rollout.analyses] == ["Pass"] and d3.rollout.step == 1


def test_inconclusive_past_the_deadline_fails():
    # interval 30s + inconclusiveTimeout 10m
    st = progressing(0, started=T0, inconclusive_since=T0 + timedelta(seconds=30))
    d = decide(st, obs(now=T0 + timedelta(seconds=30 + 600), canary=ready(1), verdict=UNSURE))
    assert d.rollout.phase == "RolledBack" and d.rolled_back[0] == "AnalysisInconclusive"
    assert "inconclusive for 600s past the interval: requests 3 < 50" in d.rolled_back[1]
    assert [a.verdict for a in d.rollout.analyses] == ["Fail"]


def test_recheck_never_sleeps_past_the_deadline():
    st = progressing(0, started=T0)
    d = decide(st, obs(now=T0 + timedelta(seconds=30 + 597), canary=ready(1), verdict=UNSURE))
    assert d.requeue == pytest.approx(3)


# -- superseding and cancelling ---------------------------------------------------------------------------------
@pytest.mark.parametrize("phase", ["Pending", "Progressing", "Paused"])
def test_a_newer_request_supersedes_any_active_phase(phase):
    st = RolloutStatus(phase=phase, step=1, start_time=T0, stable_version="iris-v1", step_start_time=T0)
    d = decide(st, obs(superseded_by="iris-v3", canary=ready(1), stable=stable(n=1)))
    assert d.rollout.phase == "Superseded" and d.reason == "Superseded" and "iris-v3" in d.message
    assert d.rolled_back is None and d.event[0] == "Superseded"
    assert d.scale == Scale(stable=2)  # the stable is restored before the canary goes


def test_withdrawing_the_request_cancels():
    st = progressing(0, started=T0)
    d = decide(st, obs(desired_production=False, canary=ready(1)))
    assert d.rollout.phase == "Idle" and d.reason == "RolloutCancelled"
    assert d.rollout.completion_time == T0 and d.scale == Scale(canary=0, stable=None, route_weight=None)


def test_unwinding_waits_for_the_stable_then_drops_the_canary():
    st = RolloutStatus(phase="RolledBack", start_time=T0, stable_version="iris-v1", weight=50)
    d = decide(st, obs(canary=ready(1), stable=stable(n=2, ready_=1)))
    assert d.action == "Hold" and "1/2 Ready" in d.message and d.rollout.completion_time is None
    d = decide(st, obs(canary=ready(1), stable=stable(n=2)))
    assert d.scale == Scale(canary=0) and d.rollout.completion_time == T0 and d.rollout.weight == 0


def test_unwinding_with_the_stable_gone_just_drops_the_canary():
    st = RolloutStatus(phase="Superseded", start_time=T0, stable_version="iris-v1")
    d = decide(st, obs(canary=ready(1), stable=None))
    assert d.scale == Scale(canary=0) and d.rollout.completion_time == T0


def test_an_interrupted_promotion_is_finished_from_the_registry():
    d = decide(progressing(2, started=T0), obs(is_stable=True, canary=ready(2)))
    assert d.rollout.phase == "Promoted" and d.action == "Done"


# -- at rest ------------------------------------------------------------------------------------------------------
def test_the_production_version_gets_a_deployment_if_it_has_none():
    d = decide(None, obs(is_stable=True, stable=None))
    assert d.action == "Scale" and d.scale == Scale(canary=2)
    d = decide(None, obs(is_stable=True, stable=None, canary=ready(1)))
    assert d.action == "Done"  # never rescaled: rollouts of newer versions own its count


@pytest.mark.parametrize("phase", ["RolledBack", "Superseded"])
def test_a_finished_failed_rollout_stays_and_keeps_its_canary_at_zero(phase):
    st = RolloutStatus(phase=phase, start_time=T0, completion_time=T0)
    assert decide(st, obs()).action == "Done"
    d = decide(st, obs(canary=ready(1)))
    assert d.action == "Scale" and d.scale == Scale(canary=0)


def test_retry_after_a_rollback_needs_the_request_withdrawn_first():
    st = RolloutStatus(phase="RolledBack", start_time=T0, completion_time=T0)
    d = decide(st, obs(desired_production=False))
    assert d.rollout.phase == "Idle"
    d = start(d.rollout, obs(now=T0 + timedelta(minutes=1)))
    assert d.rollout.phase == "Pending" and d.rollout.start_time == T0 + timedelta(minutes=1)
    assert d.rollout.analyses == []


def test_an_archived_version_is_scaled_to_zero():
    st = RolloutStatus(phase="Promoted", start_time=T0, completion_time=T0)
    d = decide(st, obs(canary=ready(2)))  # no longer stable: a newer version was promoted
    assert d.action == "Scale" and d.scale == Scale(canary=0)


# -- whole rollouts against a simulated cluster ------------------------------------------------------------------
@dataclass
class World:
    """Deployments that scale instantly and pods that are Ready at once; a clock that jumps to each requeue."""

    canary: int = 0
    stable: int = 2
    now: datetime = T0
    route: int | None = None
    history: list[tuple[int, int]] | None = None

    def observe(self, plan=PLAN, verdict=None, routing="Replicas", **kw) -> Observation:
        return obs(
            now=self.now,
            plan=plan,
            routing=routing,
            canary=ready(self.canary) if self.canary else Workload(exists=self.canary is not None),
            stable=stable(n=self.stable),
            verdict=verdict,
            **kw,
        )

    def apply(self, scale: Scale | None) -> None:
        if scale is None:
            return
        if scale.canary is not None:
            self.canary = scale.canary
        if scale.stable is not None:
            self.stable = scale.stable
        if scale.route_weight is not None:
            self.route = scale.route_weight
        self.history = [*(self.history or []), (self.canary, self.stable)]


def drive(world: World, verdicts, routing="Replicas", limit=100, **kw):
    """Run decide until the rollout ends; `verdicts` answers each Analyse. Returns the decisions."""
    state, seen, answers = start(None, world.observe(routing=routing, **kw)).rollout, [], iter(verdicts)
    for _ in range(limit):
        d = decide(state, world.observe(routing=routing, **kw))
        if d.action == "Analyse":
            d = decide(state if state else None, world.observe(routing=routing, verdict=next(answers), **kw))
            d = decide(d.rollout, world.observe(routing=routing, **kw)) if d.action == "Analyse" else d
        seen.append(d)
        world.apply(d.scale)
        state = d.rollout
        if state.phase in ("Promoted", "RolledBack", "Superseded") and state.completion_time is not None:
            return seen
        world.now += timedelta(seconds=max(d.requeue, 0.5))
    raise AssertionError(f"no end after {limit} decisions: {[x.message for x in seen[-5:]]}")


def test_a_good_version_walks_every_step_and_is_promoted():
    world = World()
    seen = drive(world, [PASS, PASS, PASS])
    splits = [(d.rollout.step, d.rollout.weight) for d in seen if d.action == "StartStep"]
    assert splits == [(0, 33), (1, 50), (2, 100)]  # effective shares with 2 stable replicas
    assert seen[-1].action == "Promote" and [a.verdict for a in seen[-1].rollout.analyses] == ["Pass"] * 3
    assert (world.canary, world.stable) == (2, 0)
    # serving capacity never dropped below the stable's 2 pods at any point
    assert world.history == [(1, 2), (1, 1), (2, 1), (2, 0)]
    # each step ran at least its interval
    starts = [d.rollout.step_start_time for d in seen if d.action == "StartStep"]
    analyses = [a.time for a in seen[-1].rollout.analyses]
    assert all(a - s >= timedelta(seconds=30) for s, a in zip(starts, analyses, strict=True))


def test_a_bad_version_is_rolled_back_and_the_stable_restored():
    world = World()
    seen = drive(world, [PASS, FAIL])
    final = seen[-1].rollout
    assert final.phase == "RolledBack" and final.weight == 0
    assert (world.canary, world.stable) == (0, 2)
    assert [a.verdict for a in final.analyses] == ["Pass", "Fail"]


def test_a_failure_at_100_percent_brings_the_stable_back_before_the_canary_leaves():
    world = World()
    seen = drive(world, [PASS, PASS, FAIL])
    order = [(d.scale.canary, d.scale.stable) for d in seen if d.scale and d.rollout.phase == "RolledBack"]
    assert order == [(None, 2), (0, None)]
    assert (world.canary, world.stable) == (0, 2)


def test_gateway_api_rollout_keeps_the_stable_and_moves_the_route():
    world = World()
    seen = drive(world, [PASS, PASS, PASS], routing="GatewayAPI")
    routes = [d.scale.route_weight for d in seen if d.scale and d.scale.route_weight is not None]
    assert routes == [10, 50, 100]
    assert all(d.rollout.stable_replicas == 2 for d in seen if d.rollout.phase == "Progressing")


def test_manual_approval_walk():
    plan = CanaryPlan(
        steps=[
            CanaryStep(weight=10, interval="5s"),
            CanaryStep(weight=100, interval="5s", manual_approval=True),
        ]
    )
    world = World()
    state = start(None, world.observe(plan=plan)).rollout
    for _ in range(20):
        d = decide(state, world.observe(plan=plan))
        if d.action == "Analyse":
            d = decide(state, world.observe(plan=plan, verdict=PASS))
        world.apply(d.scale)
        state = d.rollout
        world.now += timedelta(seconds=max(d.requeue, 0.5))
    assert state.phase == "Paused" and state.step == 1 and (world.canary, world.stable) == (1, 2)
    world.now += timedelta(hours=1)  # however long it waits, nothing moves until approval
    d = decide(state, world.observe(plan=plan))
    assert d.rollout.phase == "Paused" and d.scale is None
    d = decide(state, world.observe(plan=plan, approved_step=1))
    assert d.rollout.phase == "Progressing" and d.rollout.step == 1 and d.scale == Scale(canary=2)


# -- the stable's weight -----------------------------------------------------------------------------------
def stable_weights(world: World, verdicts) -> list[int]:
    """The stable's weight after each tick of a whole simulated rollout, repeats collapsed."""
    before = start(None, world.observe()).rollout
    seen: list[int] = []
    for d in drive(world, verdicts):
        weight = stable_weight(before, d.rollout)
        if weight is not None and (not seen or seen[-1] != weight):
            seen.append(weight)
        before = d.rollout
    return seen


def test_the_stable_gets_what_the_canary_leaves_at_every_step_down_to_0_at_100_percent():
    # 2 stable replicas: the canary's effective shares are 33, 50, 100 (see weights.py)
    assert stable_weights(World(), [PASS, PASS, PASS]) == [67, 50, 0]


def test_a_rollback_hands_the_stable_its_100_back():
    assert stable_weights(World(), [PASS, FAIL]) == [67, 50, 100]


def test_a_rollback_at_100_percent_brings_the_stable_from_0_back_to_100():
    assert stable_weights(World(), [PASS, PASS, FAIL]) == [67, 50, 0, 100]


def carrying(weight: int, **kw) -> RolloutStatus:
    base = dict(phase="Progressing", start_time=T0, stable_version="iris-v1", weight=weight)
    return RolloutStatus(**{**base, **kw})


def test_a_step_leaves_the_stable_the_rest():
    assert stable_weight(carrying(0), carrying(10, step_start_time=T0)) == 90
    assert stable_weight(carrying(10), carrying(10)) == 90  # the same on every tick of the step


def test_a_cancel_or_supersession_ends_with_the_stable_at_100():
    paused = carrying(33, phase="Paused")
    for phase in ("Superseded", "Idle"):
        handed_back = carrying(0, phase=phase, completion_time=T0 + timedelta(seconds=5))
        assert stable_weight(paused, handed_back) == 100


@pytest.mark.parametrize(
    "before",
    [
        None,  # no rollout
        RolloutStatus(phase="Pending", start_time=T0, stable_version="iris-v1"),  # moved nothing yet
        carrying(0, phase="RolledBack", completion_time=T0),  # finished: a newer rollout may own it
        carrying(100, phase="Promoted", completion_time=T0),
    ],
)
def test_rollouts_that_move_no_traffic_say_nothing_about_the_stable(before):
    after = carrying(0) if before is None or before.phase == "Pending" else before
    assert stable_weight(before, after) is None


def test_the_first_version_has_no_stable_to_speak_for():
    assert stable_weight(carrying(0, stable_version=None), carrying(100, stable_version=None)) is None
