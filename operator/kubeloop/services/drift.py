"""One DriftMonitor check against the cluster: gather the inputs, run the pure check, carry out its plan.

Order of the writes, chosen so that a crash at any point converges without a second retrain:

1. create the retraining TrainingRun (deterministic name from the monitor, window and reason;
   get-or-create), if the plan starts one;
2. store the new per-pod baselines (a ConfigMap owned by the monitor, marked with the window it closes);
3. write the status (window, verdicts, counters, the retrain record).

A crash after 1 leaves a run the next check finds (by its monitor label), so the cooldown and the
one-retrain-at-a-time rule hold even though the status never recorded it. A crash after 2 drops that
window's traffic from judgement but never counts it twice.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from kubeloop import observability
from kubeloop.api import DriftMonitor, DriftMonitorStatus, ModelVersion, RetrainRecord, TrainingRun, utc_now
from kubeloop.api.status import find_condition
from kubeloop.builders.labels import MANAGED_BY, MANAGED_BY_VALUE, child_name
from kubeloop.builders.retrain import (
    MONITOR_LABEL,
    retrain_record,
    retrain_run,
    retrain_run_name,
)
from kubeloop.k8s import CONFIG_MAP, DRIFT_MONITOR, TRAINING_RUN, Kube
from kubeloop.monitoring.check import CheckInputs, CheckPlan, check, record_of, status_after, trigger_of
from kubeloop.monitoring.reservoir import SampleMemory
from kubeloop.monitoring.status import unobservable_status
from kubeloop.monitoring.window import Baselines
from kubeloop.services.context import Context
from kubeloop.services.profiles import ProfileError, ProfileStore
from kubeloop.services.serving_pods import production_version, scrape, serving_pods

__all__ = ["CheckResult", "DriftService", "baselines_name", "forget_metrics"]

log = logging.getLogger(__name__)

BASELINES_KEY = "baselines.json"


@dataclass
class CheckResult:
    status: DriftMonitorStatus | None  # what was written (None: the monitor is gone)
    samples: dict[str, SampleMemory]  # the reservoirs to diff the next window against


def baselines_name(monitor: str) -> str:
    return child_name(monitor, "drift-baselines", limit=253)


def _finished(run: Mapping[str, Any]) -> bool:
    for c in (run.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Succeeded" and c.get("status") in ("True", "False"):
            return True
    return False


class DriftService:
    def __init__(self, context: Context, profiles: ProfileStore | None = None):
        self.context = context
        self.kube: Kube = context.kube
        self.profiles = profiles or ProfileStore()

    # -- the check ---------------------------------------------------------------------------------------
    def check(self, namespace: str, name: str, samples: Mapping[str, SampleMemory]) -> CheckResult:
        body = self.kube.get(DRIFT_MONITOR, namespace, name)
        if body is None:
            return CheckResult(None, {})
        now = utc_now()
        generation = body["metadata"].get("generation")
        before = DriftMonitorStatus.model_validate(body.get("status") or {})
        try:
            monitor = DriftMonitor.model_validate(body)
        except ValidationError as e:
            return self._unobservable(body, before, "Failed", "InvalidSpec", f"invalid spec: {e}", now)
        spec = monitor.spec
        if spec.suspend:
            return self._unobservable(
                body, before, "Current", "Suspended", "suspended (spec.suspend): no checks, no retrains", now
            )
        version = production_version(self.kube, namespace, spec.model)
        if version is None:
            message = f"no ModelVersion of model {spec.model} is in stage Production"
            return self._unobservable(body, before, "InProgress", "NoProductionVersion", message, now)
        version_name = version.metadata["name"]
        deployment = version.status.deployment if version.status else None
        if not deployment:
            message = f"{version_name} is in Production but its status names no serving Deployment"
            return self._unobservable(body, before, "InProgress", "NoServingDeployment", message, now)
        try:
            profile = self.profiles.get(version.spec.artifact.uri, version.spec.artifact.digest)
        except ProfileError as e:
            return self._unobservable(body, before, "InProgress", "ProfileUnavailable", str(e), now)
        targets = serving_pods(self.kube, namespace, deployment)
        scraped = scrape(targets, spec.model, digest=version.spec.artifact.digest)
        if not scraped.snapshots:
            why = "; ".join(f"{p}: {w}" for p, w in sorted(scraped.failures.items())) or "no running pods"
            message = f"no server pod of {version_name} (Deployment {deployment}) answered: {why}"
            return self._unobservable(body, before, "InProgress", "NoServingPods", message, now)
        for pod, why in sorted(scraped.failures.items()):
            log.warning("DriftMonitor %s/%s: pod %s left out of the window: %s", namespace, name, pod, why)

        runs = self.kube.list(TRAINING_RUN, namespace)
        running = next(
            (
                r["metadata"]["name"]
                for r in runs
                if (r.get("spec") or {}).get("model") == spec.model and not _finished(r)
            ),
            None,
        )
        found = [
            rec
            for r in runs
            if (r["metadata"].get("labels") or {}).get(MONITOR_LABEL) == name
            and (rec := retrain_record(r)) is not None
        ]
        baselines, stored = self._read_baselines(namespace, name)
        inputs = CheckInputs(
            spec=spec,
            status=before,
            generation=generation,
            created=_created(body),
            model_version=version_name,
            profile=profile,
            snapshots=scraped.snapshots,
            baselines=baselines,
            samples=samples,
            running=running,
            found=found,
            now=now,
        )
        try:
            plan = check(inputs)
        except ValueError as e:
            return self._unobservable(body, before, "Failed", "InvalidSpec", str(e), now)

        started = self._start_retrain(body, monitor, version, plan, now)
        self._write_baselines(body, plan.baselines, stored)
        after = status_after(inputs, plan, started)
        self.kube.patch_status(DRIFT_MONITOR, body, after)
        self._report(body, monitor, before, after, plan)
        return CheckResult(after, plan.samples)

    # -- steps -------------------------------------------------------------------------------------------
    def _unobservable(
        self, body: dict, before: DriftMonitorStatus, state: str, reason: str, message: str, now: datetime
    ) -> CheckResult:
        after = unobservable_status(
            before,
            state=state,  # type: ignore[arg-type]
            reason=reason,
            message=message,
            generation=body["metadata"].get("generation"),
            now=now,
        )
        self.kube.patch_status(DRIFT_MONITOR, body, after)
        previous = find_condition(before.conditions, "Ready")
        if previous is None or previous.reason != reason:
            post = self.context.events.normal if state == "Current" else self.context.events.warning
            post(body, reason, message)
        return CheckResult(after, {})

    def _start_retrain(
        self, body: dict, monitor: DriftMonitor, version: ModelVersion, plan: CheckPlan, now: datetime
    ) -> RetrainRecord | None:
        meta = body["metadata"]
        trigger = trigger_of(plan, meta["name"])
        if trigger is None:
            return None
        policy = monitor.spec.retrain
        source = None
        if policy is not None and policy.clone is not None:
            source_name = policy.clone.training_run or version.spec.lineage.training_run
            source_body = self.kube.get(TRAINING_RUN, meta["namespace"], source_name) if source_name else None
            if source_body is None:
                message = (
                    f"cannot retrain: the TrainingRun to clone ({source_name or 'none in the lineage of ' + version.metadata['name']}) "
                    "does not exist; set spec.retrain.clone.trainingRun or use a template"
                )
                self.context.events.warning(body, "RetrainFailed", message)
                log.warning("DriftMonitor %s/%s: %s", meta["namespace"], meta["name"], message)
                return None
            source = TrainingRun.model_validate(source_body)
        name = retrain_run_name(meta["name"], meta["uid"], trigger.window or 0, trigger.reason)
        manifest = retrain_run(monitor, trigger, name=name, source=source)
        run, created = self.kube.get_or_create(TRAINING_RUN, manifest)
        if created:
            observability.RETRAINS.labels(meta["namespace"], monitor.spec.model, trigger.reason).inc()
            self.context.events.normal(
                body, "RetrainStarted", f"TrainingRun {name}: {trigger.message}"[:1024]
            )
        return record_of(trigger, name, _created(run) if not created else now)

    def _read_baselines(self, namespace: str, name: str) -> tuple[Baselines | None, dict | None]:
        """The stored baselines (None when missing or unreadable), and their ConfigMap to replace later."""
        cm = self.kube.get(CONFIG_MAP, namespace, baselines_name(name))
        raw = ((cm or {}).get("data") or {}).get(BASELINES_KEY)
        if not raw:
            return None, cm
        try:
            return Baselines.model_validate_json(raw), cm
        except ValidationError:
            log.warning("DriftMonitor %s/%s: unreadable baselines, taking new ones", namespace, name)
            return None, cm

    def _write_baselines(self, body: dict, baselines: Baselines, existing: dict | None) -> None:
        """Create the ConfigMap, or replace it as read (a concurrent change is a Conflict, never lost)."""
        data = {BASELINES_KEY: baselines.model_dump_json()}
        if existing is not None:
            self.kube.replace(CONFIG_MAP, {**existing, "data": data})
            return
        meta = body["metadata"]
        self.kube.create(
            CONFIG_MAP,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": baselines_name(meta["name"]),
                    "namespace": meta["namespace"],
                    "labels": {MANAGED_BY: MANAGED_BY_VALUE, MONITOR_LABEL: meta["name"]},
                    # No blockOwnerDeletion: that would need update on driftmonitors/finalizers.
                    "ownerReferences": [
                        {
                            "apiVersion": body["apiVersion"],
                            "kind": body["kind"],
                            "name": meta["name"],
                            "uid": meta["uid"],
                            "controller": True,
                        }
                    ],
                },
                "data": data,
            },
        )

    def _report(
        self,
        body: dict,
        monitor: DriftMonitor,
        before: DriftMonitorStatus,
        after: DriftMonitorStatus,
        plan: CheckPlan,
    ) -> None:
        meta, model = body["metadata"], monitor.spec.model
        if plan.decision.blocked:
            log.info("DriftMonitor %s/%s: %s", meta["namespace"], meta["name"], plan.decision.message)
        if plan.outcome is None:
            return
        observability.DRIFT_DETECTED.labels(meta["namespace"], model).set(
            1.0 if plan.outcome.drifted else 0.0
        )
        for f in plan.outcome.features:
            if f.score is not None:
                observability.DRIFT_SCORE.labels(meta["namespace"], model, f.name, f.method).set(f.score)
        was, now = find_condition(before.conditions, "Drifted"), find_condition(after.conditions, "Drifted")
        if now is not None and now.status == "True" and (was is None or was.status != "True"):
            self.context.events.warning(body, "DriftDetected", now.message)


def forget_metrics(namespace: str, model: str, status: DriftMonitorStatus | None) -> None:
    """Drop a monitor's series (it was deleted), so that no alert keeps firing on its last window."""
    for gauge, labels in [(observability.DRIFT_DETECTED, (namespace, model))] + [
        (observability.DRIFT_SCORE, (namespace, model, f.name, f.method))
        for f in (status.features if status else [])
    ]:
        with contextlib.suppress(KeyError):
            gauge.remove(*labels)


def _created(body: Mapping[str, Any]) -> datetime:
    raw = (body.get("metadata") or {}).get("creationTimestamp")
    if not raw:
        return datetime.now(UTC)
    return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
