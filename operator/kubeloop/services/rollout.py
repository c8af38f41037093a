"""The canary rollout of a ModelVersion: read the cluster, ask the pure state machine (`kubeloop.rollout`)
what to do, do it, and record it in the version's status.

One tick (`RolloutService.reconcile`) reads everything it needs afresh -- the version, the other versions
of its model, both Deployments, and when a step is due the servers' metrics -- so an operator restarted at
any point resumes at the same step: the step, its start and the analyses are in `status.rollout`, the
metric baseline of the step is an annotation on the canary Deployment, and every write is idempotent.

A rollout starts only from a Production request (`request_rollout`, called by the registry when
`spec.stage` becomes Production); completion calls the registry's `promote()`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from kubeloop import observability
from kubeloop.api import (
    ModelVersion,
    ModelVersionStatus,
    ResourceRequirements,
    RolloutStatus,
    find_condition,
    set_condition,
)
from kubeloop.api import status as conditions
from kubeloop.builders import serving
from kubeloop.k8s import MODEL_VERSION, Kube, retry_on_conflict
from kubeloop.registry import promote
from kubeloop.registry.stages import stage_editor
from kubeloop.rollout import analysis as rollout_analysis
from kubeloop.rollout.machine import (
    ACTIVE,
    UNWINDING,
    Decision,
    Observation,
    Scale,
    StableVersion,
    decide,
    stable_weight,
    start,
)
from kubeloop.rollout.window import Baseline, accumulate_stable, traffic
from kubeloop.services import rollout_serving as objects
from kubeloop.services.context import Context
from kubeloop.services.rollout_metrics import PodTarget, Scraped, scrape, version_pods

log = logging.getLogger(__name__)

APPROVAL_ANNOTATION = "kubeloop.dev/approved-step"
WARNING_REASONS = frozenset({"RolledBack", "AnalysisFailed", "AnalysisInconclusive", "CanaryNotReady"})
ENDED_REASON = {
    "Promoted": "RolloutComplete",
    "RolledBack": "RolledBack",
    "Superseded": "Superseded",
    "Idle": "RolloutCancelled",
}
IDLE_DELAY = 30.0
MIN_PROGRESS_DEADLINE = 300


def _default_serving_resources() -> ResourceRequirements:
    return ResourceRequirements(
        requests={"cpu": "100m", "memory": "256Mi"}, limits={"cpu": "1", "memory": "1Gi"}
    )


@dataclass(frozen=True)
class RolloutOptions:
    """Knobs of serving and rollouts. Read from the operator's Settings where it has them."""

    drain_seconds: int = 5  # preStop sleep: endpoint lists forget a pod before its server stops
    serving_resources: ResourceRequirements = field(default_factory=_default_serving_resources)
    gateway_parent_refs: tuple[dict[str, Any], ...] = ()  # HTTPRoute parentRefs (GatewayAPI routing)
    scrape_timeout: float = 3.0

    @classmethod
    def from_settings(cls, settings: Any) -> RolloutOptions:
        # Optional fields: the Settings object gains them without this module changing.
        parents = getattr(settings, "gateway_parent_refs", None) or ()
        return cls(
            drain_seconds=int(getattr(settings, "serving_drain_seconds", 5)),
            serving_resources=getattr(settings, "serving_resources", None) or _default_serving_resources(),
            gateway_parent_refs=tuple(parents),
        )


@dataclass
class Snapshot:
    """Everything one tick read about a version and its model."""

    body: dict[str, Any]
    version: ModelVersion
    stable_body: dict[str, Any] | None
    stable: ModelVersion | None
    others: list[ModelVersion]
    canary_deployment: dict[str, Any] | None
    stable_deployment: dict[str, Any] | None
    routing: str

    @property
    def namespace(self) -> str:
        return self.body["metadata"]["namespace"]

    @property
    def name(self) -> str:
        return self.body["metadata"]["name"]

    @property
    def state(self) -> RolloutStatus | None:
        return self.version.status.rollout if self.version.status else None


class StaleState(Exception):
    """The rollout status changed since this tick read it; the tick is abandoned and runs again."""


def _dump(status: ModelVersionStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def _now() -> datetime:
    return datetime.now(UTC)


def _approved_step(mv: ModelVersion) -> int | None:
    raw = (mv.metadata.get("annotations") or {}).get(APPROVAL_ANNOTATION)
    steps = [mv.spec.approved_step] if mv.spec.approved_step is not None else []
    if raw is not None:
        try:
            steps.append(int(raw))
        except ValueError:
            log.warning(
                "%s: annotation %s=%r is not a step index", mv.metadata.get("name"), APPROVAL_ANNOTATION, raw
            )
    return max(steps) if steps else None


def _order(mv: ModelVersion) -> tuple[datetime, int]:
    """Later requests win; the version number breaks a tie."""
    rollout = mv.status.rollout if mv.status else None
    started = rollout.start_time if rollout and rollout.start_time else datetime.max.replace(tzinfo=UTC)
    return started, mv.spec.version


def _active(mv: ModelVersion) -> bool:
    rollout = mv.status.rollout if mv.status else None
    return rollout is not None and rollout.phase in ACTIVE


def _winding_down(mv: ModelVersion) -> bool:
    rollout = mv.status.rollout if mv.status else None
    return (
        rollout is not None
        and rollout.phase in UNWINDING
        and rollout.start_time is not None
        and rollout.completion_time is None
    )


def contenders(me: ModelVersion, others: list[ModelVersion]) -> tuple[str | None, str | None]:
    """(a newer request that supersedes this rollout, an older rollout this one must wait for)."""
    mine = _order(me)
    newer = sorted((o for o in others if _active(o) and _order(o) > mine), key=_order, reverse=True)
    older = sorted((o for o in others if (_active(o) or _winding_down(o)) and _order(o) < mine), key=_order)
    name = lambda mv: mv.metadata["name"]  # noqa: E731
    return (name(newer[0]) if newer else None, name(older[0]) if older else None)


class RolloutService:
    def __init__(
        self,
        context: Context,
        options: RolloutOptions | None = None,
        discovery: objects.GatewayDiscovery | None = None,
    ):
        self.context = context
        self.kube: Kube = context.kube
        self.options = options or RolloutOptions.from_settings(context.settings)
        self.discovery = discovery or objects.GatewayDiscovery()

    # -- reading ---------------------------------------------------------------------------------------------
    def read(self, namespace: str, name: str) -> Snapshot | None:
        body = self.kube.get(MODEL_VERSION, namespace, name)
        if body is None:
            return None
        try:
            version = ModelVersion.model_validate(body)
        except ValidationError as e:
            log.warning("ModelVersion %s/%s does not parse, no rollout: %s", namespace, name, e)
            return None
        others, stable_body, stable = [], None, None
        for other in self.kube.list(MODEL_VERSION, namespace):
            if (other.get("spec") or {}).get("model") != version.spec.model or other["metadata"][
                "name"
            ] == name:
                continue
            try:
                parsed = ModelVersion.model_validate(other)
            except ValidationError:
                continue
            others.append(parsed)
            production = parsed.status is not None and parsed.status.stage == "Production"
            if production and (stable is None or parsed.spec.version > stable.spec.version):
                stable_body, stable = other, parsed
        model = version.spec.model
        canary = objects.get_deployment(
            self.kube, namespace, serving.deployment_name(model, version.spec.version)
        )
        stable_deployment = (
            objects.get_deployment(self.kube, namespace, serving.deployment_name(model, stable.spec.version))
            if stable
            else None
        )
        routing = version.spec.serving.traffic_routing
        if routing == "GatewayAPI" and not self.discovery.installed(self.kube):
            routing = "Replicas"  # documented fallback: no HTTPRoute CRD, replica weights instead
        return Snapshot(body, version, stable_body, stable, others, canary, stable_deployment, routing)

    def observe(self, snap: Snapshot, now: datetime) -> Observation:
        mv = snap.version
        stable = None
        if snap.stable is not None:
            stable = StableVersion(
                name=snap.stable.metadata["name"],
                replicas=snap.stable.spec.serving.replicas,
                workload=objects.workload(snap.stable_deployment),
            )
        superseded_by, waiting_for = contenders(mv, snap.others)
        return Observation(
            now=now,
            desired_production=mv.spec.stage == "Production",
            is_stable=bool(mv.status and mv.status.stage == "Production"),
            plan=mv.spec.serving.canary,
            replicas=mv.spec.serving.replicas,
            routing=snap.routing,  # type: ignore[arg-type]
            canary=objects.workload(snap.canary_deployment),
            stable=stable,
            approved_step=_approved_step(mv),
            superseded_by=superseded_by,
            waiting_for=waiting_for,
        )

    # -- the two entry points --------------------------------------------------------------------------------
    def request(self, namespace: str, name: str) -> bool:
        """A Production request: start the rollout (Pending). False when there was nothing to start."""
        snap = self.read(namespace, name)
        if snap is None:
            return False
        decision = start(snap.state, self.observe(snap, _now()))
        if decision is None:
            return False
        self.write_status(snap, decision, started=True)
        self.announce(snap, decision)
        return True

    def reconcile(self, namespace: str, name: str) -> float:
        """One tick: returns the seconds until the next one."""
        snap = self.read(namespace, name)
        if snap is None:
            return IDLE_DELAY
        obs = self.observe(snap, _now())
        decision = decide(snap.state, obs)
        if decision.action == "Analyse":
            verdict = self.analyse(snap)
            decision = decide(snap.state, replace(obs, now=_now(), verdict=verdict))
        self.act(snap, decision, obs)
        # The stable's weight before the canary's status: a restart in between re-runs this tick from the
        # canary's unchanged status and writes the same weight, whereas the tick that ends a rollback is its
        # last (the daemon stops once the canary's status says it is over).
        self.write_stable_weight(snap, decision)
        try:
            self.write_status(snap, decision)
        except StaleState:
            return 0.2
        self.announce(snap, decision)
        return decision.requeue

    # -- analysis --------------------------------------------------------------------------------------------
    def _targets(self, snap: Snapshot) -> list[PodTarget]:
        model = snap.version.spec.model
        targets = version_pods(self.kube, snap.namespace, model, snap.version.spec.version)
        if snap.stable is not None:
            targets += version_pods(self.kube, snap.namespace, model, snap.stable.spec.version)
        return targets

    def _scrape(self, snap: Snapshot) -> tuple[list[PodTarget], Scraped]:
        targets = self._targets(snap)
        return targets, scrape(targets, self.options.scrape_timeout)

    def analyse(self, snap: Snapshot) -> rollout_analysis.StepVerdict:
        state = snap.state or RolloutStatus()
        baseline = objects.read_baseline(snap.canary_deployment)
        targets, scraped = self._scrape(snap)
        if baseline is None or baseline.step != state.step:
            fresh = Baseline(
                step=state.step,
                taken_at=_now(),
                pods=scraped.counters,
                stable_predictions=baseline.stable_predictions if baseline else {},
                stable_prediction_kind=baseline.stable_prediction_kind if baseline else None,
            )
            self._store_baseline(snap, fresh)
            return rollout_analysis.StepVerdict(
                "Inconclusive", [], "no metric baseline for this step: its window starts now"
            )
        canary = traffic(baseline, scraped.counters, scraped.pods_of(targets, snap.version.spec.version))
        stable_pods = scraped.pods_of(targets, snap.stable.spec.version) if snap.stable else []
        stable = traffic(baseline, scraped.counters, stable_pods)
        verdict = rollout_analysis.analyse(
            snap.version.spec.serving.canary.analysis, canary, stable, baseline.stable_predictions
        )
        if scraped.failures and verdict.verdict != "Pass":
            failed = "; ".join(f"{pod}: {why}" for pod, why in sorted(scraped.failures.items()))
            verdict = replace(verdict, message=f"{verdict.message}; not scraped: {failed}")
        if verdict.verdict == "Pass" and baseline.stable_through_step != state.step:
            # The stable's predictions of this step join the reference the later steps compare with
            # (at 100% the stable serves nothing, so that reference is all there is).
            total, kind = accumulate_stable(baseline, stable)
            self._store_baseline(
                snap,
                baseline.model_copy(
                    update={
                        "stable_predictions": total,
                        "stable_prediction_kind": kind,
                        "stable_through_step": state.step,
                    }
                ),
            )
        return verdict

    def _store_baseline(self, snap: Snapshot, baseline: Baseline) -> None:
        if snap.canary_deployment is not None:
            objects.write_baseline(
                self.kube, snap.namespace, snap.canary_deployment["metadata"]["name"], baseline
            )

    # -- side effects ----------------------------------------------------------------------------------------
    def _plan(
        self, body: dict[str, Any], mv: ModelVersion, replicas: int, track: serving.Track
    ) -> serving.ServingPlan:
        settings = self.context.settings
        image = mv.spec.serving.image or mv.spec.lineage.image or settings.trainer_image
        return serving.ServingPlan(
            version=body,
            spec=mv.spec,
            image=image,
            replicas=replicas,
            track=track,
            default_resources=self.options.serving_resources,
            s3_secret=settings.s3_secret,
            s3_endpoint_url=settings.s3_endpoint_url,
            allowed_modules=settings.allowed_modules,
            drain_seconds=self.options.drain_seconds,
            # Pods get the inconclusive timeout to become Ready, and never less than five minutes: image
            # pulls and model downloads are slow, and a canary that cannot start costs nothing meanwhile.
            progress_deadline_seconds=max(
                MIN_PROGRESS_DEADLINE,
                int(mv.spec.serving.canary.analysis.inconclusive_timeout.total_seconds()),
            ),
        )

    def _ensure_scaled(
        self,
        body: dict[str, Any],
        mv: ModelVersion,
        current: dict[str, Any] | None,
        replicas: int,
        track: serving.Track,
    ) -> None:
        ns = body["metadata"]["namespace"]
        if current is None:
            if replicas == 0:
                return
            plan = self._plan(body, mv, replicas, track)
            objects.ensure_model_service(self.kube, ns, mv.spec.model, body)
            if mv.spec.serving.traffic_routing == "GatewayAPI" and self.discovery.installed(self.kube):
                objects.ensure_version_service(self.kube, plan)
            objects.ensure_deployment(self.kube, plan)
            return
        if int((current.get("spec") or {}).get("replicas", 1)) != replicas:
            objects.scale(self.kube, ns, current["metadata"]["name"], replicas)

    def _route(self, snap: Snapshot, weight: int, *, promoted: bool = False) -> None:
        if snap.routing != "GatewayAPI":
            return
        me = snap.version.spec.version
        owners = [b for b in (snap.stable_body, snap.body) if b is not None]
        # The route's backends are per-version Services; the stable may predate GatewayAPI routing.
        for body, mv in ((snap.body, snap.version), (snap.stable_body, snap.stable)):
            if body is not None and mv is not None:
                objects.ensure_version_service(self.kube, self._plan(body, mv, 0, "stable"))
        plan = serving.RoutePlan(
            model=snap.version.spec.model,
            namespace=snap.namespace,
            owners=owners,
            stable_version=me if promoted else (snap.stable.spec.version if snap.stable else None),
            canary_version=None if promoted else me,
            canary_weight=weight,
            parent_refs=list(self.options.gateway_parent_refs),
        )
        objects.ensure_route(self.kube, plan)

    def act(self, snap: Snapshot, decision: Decision, obs: Observation) -> None:
        if decision.action == "Scale" and decision.scale is not None:
            self._apply_scale(snap, decision.scale, obs)
        elif decision.action == "StartStep":
            self._start_step(snap, decision)
        elif decision.action == "Promote":
            self._promote(snap, decision)

    def _apply_scale(self, snap: Snapshot, scale: Scale, obs: Observation) -> None:
        track: serving.Track = "stable" if obs.is_stable else "canary"

        def canary() -> None:
            if scale.canary is not None:
                self._ensure_scaled(snap.body, snap.version, snap.canary_deployment, scale.canary, track)

        def stable() -> None:
            if scale.stable is not None and snap.stable is not None and snap.stable_body is not None:
                self._ensure_scaled(
                    snap.stable_body, snap.stable, snap.stable_deployment, scale.stable, "stable"
                )

        def route() -> None:
            if scale.route_weight is not None:
                self._route(snap, scale.route_weight)

        # Capacity first: on the way in the canary grows before the stable shrinks and the route moves; on
        # the way out the route and the stable come back before the canary goes.
        steps = (route, stable, canary) if scale.canary == 0 else (canary, stable, route)
        for step in steps:
            step()

    def _start_step(self, snap: Snapshot, decision: Decision) -> None:
        previous = objects.read_baseline(snap.canary_deployment)
        _, scraped = self._scrape(snap)
        baseline = Baseline(
            step=decision.rollout.step,
            taken_at=_now(),
            pods=scraped.counters,
            stable_predictions=previous.stable_predictions if previous else {},
            stable_prediction_kind=previous.stable_prediction_kind if previous else None,
            stable_through_step=previous.stable_through_step if previous else None,
        )
        self._store_baseline(snap, baseline)

    def _promote(self, snap: Snapshot, decision: Decision) -> None:
        mv = snap.version
        ns = snap.namespace
        if snap.canary_deployment is None:
            self._ensure_scaled(snap.body, mv, None, mv.spec.serving.replicas, "stable")
        else:  # replicas and the track label in one patch; the pods are not touched
            name = snap.canary_deployment["metadata"]["name"]
            objects.scale(self.kube, ns, name, mv.spec.serving.replicas, "stable")
        self._route(snap, 100, promoted=True)
        if snap.stable_deployment is not None:
            objects.scale(self.kube, ns, snap.stable_deployment["metadata"]["name"], 0, "retired")
        who = stage_editor(snap.body) or (
            mv.spec.lineage.training_run and f"TrainingRun {mv.spec.lineage.training_run}"
        )
        by = f"canary rollout (requested by {who})" if who else "canary rollout"
        reason = "CanaryPassed" if decision.rollout.analyses else "FirstVersion"
        promote(self.context, ns, snap.name, by=by, reason=reason)

    # -- status and announcements ----------------------------------------------------------------------------
    def write_status(self, snap: Snapshot, decision: Decision, *, started: bool = False) -> None:
        expected = snap.state or RolloutStatus()

        def attempt() -> dict[str, Any] | None:
            body = self.kube.get(MODEL_VERSION, snap.namespace, snap.name)
            if body is None:
                return None
            status = ModelVersionStatus.model_validate(body.get("status") or {})
            if (status.rollout or RolloutStatus()) != expected:
                raise StaleState(f"{snap.namespace}/{snap.name}: the rollout status changed meanwhile")
            desired = self._desired_status(
                snap, status, decision, body["metadata"].get("generation"), started
            )
            return self.kube.patch_status(MODEL_VERSION, body, desired, conditional=True)

        retry_on_conflict(attempt, what=f"rollout status of {snap.namespace}/{snap.name}")

    def write_stable_weight(self, snap: Snapshot, decision: Decision) -> None:
        """Set the stable version's `status.rollout.weight` to the share of traffic this rollout leaves it.

        One merge patch of that field, conditional on the resourceVersion it was computed from (the stable's
        own daemon writes its status too) and none when the weight is already right, so re-running a tick
        writes nothing new.
        """
        weight = stable_weight(snap.state, decision.rollout)
        stable = snap.stable
        if weight is None or stable is None or stable.metadata["name"] != decision.rollout.stable_version:
            return
        name = stable.metadata["name"]

        def attempt() -> dict[str, Any] | None:
            body = self.kube.get(MODEL_VERSION, snap.namespace, name)
            if body is None:
                return None
            stored = dict(body.get("status") or {})
            status = ModelVersionStatus.model_validate(stored)
            record = status.rollout or RolloutStatus()
            desired = status.model_copy(update={"rollout": record.model_copy(update={"weight": weight})})
            # A stable that never had a rollout (no record at all) gets just `rollout.weight`: compared with
            # an empty record, which reads as the model's defaults, only the weight differs.
            base = {**body, "status": {**stored, "rollout": stored.get("rollout") or {}}}
            return self.kube.patch_status(MODEL_VERSION, base, desired, conditional=True)

        retry_on_conflict(attempt, what=f"rollout weight of the stable {snap.namespace}/{name}")

    def _desired_status(
        self, snap: Snapshot, status: ModelVersionStatus, d: Decision, generation: int | None, started: bool
    ) -> ModelVersionStatus:
        now = _now().replace(microsecond=0)
        r = d.rollout
        conds = list(status.conditions)
        if r.start_time is not None:
            if r.phase in ACTIVE or (r.phase in UNWINDING and r.completion_time is None):
                conds = set_condition(
                    conds,
                    conditions.progressing(True, d.message, reason=d.reason, generation=generation, now=now),
                )
            else:
                reason = ENDED_REASON[r.phase]
                old = find_condition(conds, conditions.PROGRESSING)
                message = old.message if old and old.status == "False" and old.reason == reason else d.message
                conds = set_condition(
                    conds,
                    conditions.progressing(False, message, reason=reason, generation=generation, now=now),
                )
        if started:
            conds = set_condition(
                conds, conditions.rolled_back(False, "a rollout started", generation=generation, now=now)
            )
        if d.rolled_back is not None:
            reason, message = d.rolled_back
            conds = set_condition(
                conds, conditions.rolled_back(True, message, reason=reason, generation=generation, now=now)
            )
        stage = status.stage
        state, kreason, kmessage = conditions.model_version_kstate(conds, stage=stage)
        conds = conditions.with_kstatus(conds, state, kreason, kmessage, generation=generation, now=now)
        update: dict[str, Any] = {"rollout": r, "conditions": conds}
        model = snap.version.spec.model
        created = d.scale is not None and bool(d.scale.canary)
        if snap.canary_deployment is not None or created or d.action == "Promote":
            update["deployment"] = serving.deployment_name(model, snap.version.spec.version)
            update["service"] = serving.service_name(model)
            update["ready_replicas"] = objects.workload(snap.canary_deployment).ready
        if d.event is not None:
            update["message"] = d.message
        return status.model_copy(update=update)

    def announce(self, snap: Snapshot, d: Decision) -> None:
        ns, model = snap.namespace, snap.version.spec.model
        if d.rolled_back is not None:
            observability.ROLLBACKS.labels(ns, model).inc()
            log.warning("%s/%s rolled back: %s", ns, snap.name, d.rolled_back[1])
        if d.analysis is not None and d.analysis.verdict != "Inconclusive":
            started = (snap.state or RolloutStatus()).step_start_time
            if started is not None:
                seconds = (d.analysis.time - started).total_seconds()
                observability.PHASE_DURATION.labels("ModelVersion", "CanaryStep").observe(max(seconds, 0.0))
        if d.event is not None:
            reason, message = d.event
            kind = "Warning" if reason in WARNING_REASONS else "Normal"
            self.context.events.post(snap.body, kind, reason, message)
            log.info("%s/%s %s: %s", ns, snap.name, reason, message)


def request_rollout(context: Context, mv: dict[str, Any]) -> bool:
    """`spec.stage: Production` was requested for `mv`: start its canary rollout (the registry's hook)."""
    meta = mv["metadata"]
    return RolloutService(context).request(meta["namespace"], meta["name"])
