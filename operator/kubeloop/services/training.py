"""TrainingRun → training Job → data and model gates → ModelVersion, reconciled level-based.

`reconcile()` reads the run, its Job and its pods, and takes the run one step further; it can be called
any number of times, from any state, after a crash at any line, and converges to the same end:

1. The spec is parsed (pydantic) and checked for what the schema cannot catch; a bad spec ends the run
   (Succeeded=False, InvalidSpec, the field named) and `GiveUp` is raised: no retry loop.
2. No Job yet: settle the champion (the model's Production version now), create the task ConfigMap and
   the Job (deterministic names; an existing one is reused, and its champion wins, since the trainer may
   already be evaluating it), and record them in the status.
3. Job running: nothing to do but wait (the caller waits for a Job event or its resync interval).
4. Job failed: the run fails with the trainer's own message (its termination summary).
5. Job complete: read the summary, decide the model gate, record metrics and gates in one status write;
   a failed gate ends the run with both numbers in the message.
6. Gate passed: register the ModelVersion (found by the run's uid label if it was created before a crash,
   else created with the next free version number), then mark the run Registered and Succeeded.

Every status write is skipped when nothing changed, and an Event is sent for each step condition that
changed, so repeating a step is free and silent.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
from typing import Any

from pydantic import ValidationError

from kubeloop import observability
from kubeloop.api import TrainingRunSpec, TrainingRunStatus, is_true, utc_now
from kubeloop.api import status as conditions
from kubeloop.builders.job import (
    CONTAINER,
    TASK_KEY,
    TrainingJobPlan,
    artifact_uri,
    job_name,
    task_config_map,
    task_config_map_name,
    training_job,
)
from kubeloop.builders.labels import CHAMPION_ANNOTATION, owned_by
from kubeloop.builders.modelversion import model_version
from kubeloop.contract import ChampionRef, TrainerSucceeded, TrainerTask
from kubeloop.k8s import CONFIG_MAP, JOB, POD, TRAINING_RUN, Invalid
from kubeloop.registry import versions
from kubeloop.registry.store import SYNCER
from kubeloop.services import training_status as steps
from kubeloop.services.context import Context
from kubeloop.services.errors import GiveUp, Retry
from kubeloop.services.gates import model_gate
from kubeloop.services.job_state import JobState, job_state, parse_time, trainer_report
from kubeloop.services.spec_checks import describe_validation_error, spec_problems

log = logging.getLogger(__name__)
KIND = "TrainingRun"
JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"
GC_WAIT = 5.0


def crash_point(context: Context, point: str) -> None:
    """Testing only (KUBELOOP_CRASH_AT): die here as a SIGKILL would, to prove a restart converges."""
    if point in context.settings.crash_at:
        log.warning("crash point %s reached: killing the operator with SIGKILL", point)
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)


def reconcile(context: Context, namespace: str, name: str) -> bool:
    """Take the run one step further; True once it has finished (either way) or is gone."""
    with context.locks.hold((KIND, namespace, name)):
        run = context.kube.get(TRAINING_RUN, namespace, name)
        if run is None or run["metadata"].get("deletionTimestamp"):
            return True
        with observability.reconcile(KIND):
            return _Reconcile(context, run).run()


class _Reconcile:
    """One pass over one run. Holds the latest copy of the run, updated by every status write."""

    def __init__(self, context: Context, run: dict[str, Any]):
        self.context = context
        self.kube = context.kube
        self.run_obj = run
        meta = run["metadata"]
        self.namespace, self.name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.status = TrainingRunStatus.model_validate(run.get("status") or {})

    # -- status ------------------------------------------------------------------------------------------
    def clock(self) -> steps.Clock:
        return steps.Clock(utc_now(), self.run_obj["metadata"].get("generation"))

    def write(self, desired: TrainingRunStatus) -> None:
        clock = self.clock()
        desired = steps.finish(desired, clock)
        before = self.status
        written = self.kube.patch_status(TRAINING_RUN, self.run_obj, desired)
        if written is None:
            return
        self.run_obj = written
        self.status = TrainingRunStatus.model_validate(written.get("status") or {})
        for change in steps.transitions(before, self.status):
            c = change.condition
            kind = "Warning" if c.status == "False" else "Normal"
            self.context.events.post(self.run_obj, kind, c.reason, f"{change.type}: {c.message}")
        if not steps.is_finished(before) and steps.is_finished(self.status):
            self._count_finished()

    def _count_finished(self) -> None:
        model = (self.run_obj.get("spec") or {}).get("model", "")
        outcome = "Succeeded" if is_true(self.status.conditions, conditions.SUCCEEDED) else "Failed"
        observability.TRAINING_RUNS.labels(self.namespace, model, outcome).inc()
        created = parse_time(self.run_obj["metadata"].get("creationTimestamp"))
        if created and self.status.completion_time:
            seconds = (self.status.completion_time - created).total_seconds()
            observability.observe_phase(KIND, "EndToEnd", seconds)
        log.info("%s/%s finished: %s: %s", self.namespace, self.name, outcome, self.status.message)

    def give_up(self, message: str) -> None:
        self.write(steps.invalid_spec(self.status, message, self.clock()))
        raise GiveUp(message)

    # -- the steps ---------------------------------------------------------------------------------------
    def run(self) -> bool:
        if steps.is_finished(self.status):
            return True
        try:
            spec = TrainingRunSpec.model_validate(self.run_obj.get("spec") or {})
        except ValidationError as e:
            self.give_up(describe_validation_error(e))
        problems = spec_problems(spec)
        if problems:
            self.give_up("; ".join(problems))

        job = self.ensure_job(spec)
        state = job_state(job)
        if state.phase == "Running":
            self.write(steps.running(self.status, self.clock(), state))
            return False
        crash_point(self.context, "job-finished")
        self._observe_training(state)
        if is_true(self.status.conditions, conditions.MODEL_VALIDATED) and self.status.artifact_digest:
            self.register(spec)  # the gate was decided before a restart; its numbers are in the status
            return True
        pods = self.kube.list(POD, self.namespace, labels={JOB_UID_LABEL: job["metadata"]["uid"]})
        report = trainer_report(pods, state.phase, CONTAINER)
        if state.phase == "Failed":
            self.write(steps.trainer_failed(self.status, self.clock(), report, state))
            return True
        if not isinstance(report, TrainerSucceeded):
            missing = JobState("Failed", state.attempts, "SummaryMissing", "the Job completed")
            text = report if isinstance(report, str) else "no termination message was found on its pods"
            self.write(steps.trainer_failed(self.status, self.clock(), text, missing))
            return True
        champion = (job["metadata"].get("annotations") or {}).get(CHAMPION_ANNOTATION)
        decision = model_gate(spec.validation, report, champion)
        self.write(steps.trained(self.status, self.clock(), report, decision))
        if not decision.passed:
            return True
        self.register(spec)
        return True

    def _observe_training(self, state: JobState) -> None:
        if state.start_time and state.completion_time and not self.status.completion_time:
            seconds = (state.completion_time - state.start_time).total_seconds()
            observability.observe_phase(KIND, "Training", seconds)

    def _champion(self, spec: TrainingRunSpec) -> tuple[ChampionRef | None, str | None]:
        gate = spec.validation.champion
        if gate is None or not gate.enabled:
            return None, None
        production = versions.current_production(self.kube, self.namespace, spec.model)
        if production is None:
            return None, None
        artifact = production["spec"]["artifact"]
        ref = ChampionRef(
            artifact_uri=artifact["uri"],
            version=str(production["spec"]["version"]),
            digest=artifact["digest"],
        )
        return ref, production["metadata"]["name"]

    def _plan(self, spec: TrainingRunSpec) -> TrainingJobPlan:
        settings = self.context.settings
        champion, champion_name = self._champion(spec)
        return TrainingJobPlan(
            run=self.run_obj,
            spec=spec,
            image=spec.training.image or settings.trainer_image,
            artifact_uri=artifact_uri(settings.artifact_root, self.run_obj, spec.model),
            default_resources=settings.training_resources,
            champion=champion,
            champion_name=champion_name,
            s3_secret=settings.s3_secret,
            s3_endpoint_url=settings.s3_endpoint_url,
            allowed_modules=settings.allowed_modules,
            service_account=settings.training_service_account,
        )

    def _adopt_task(self, plan: TrainingJobPlan, existing: dict[str, Any]) -> TrainingJobPlan:
        """A task ConfigMap from before a restart fixes the champion: the Job must agree with it."""
        if not owned_by(existing, self.uid):
            raise Retry(
                f"ConfigMap {existing['metadata']['name']} belongs to an earlier TrainingRun of the same "
                "name; waiting for the garbage collector to delete it",
                delay=GC_WAIT,
            )
        try:
            task = TrainerTask.model_validate(json.loads((existing.get("data") or {})[TASK_KEY]))
        except (KeyError, ValueError):
            return plan
        name = (existing["metadata"].get("annotations") or {}).get(CHAMPION_ANNOTATION)
        return dataclasses.replace(plan, champion=task.champion, champion_name=name)

    def ensure_job(self, spec: TrainingRunSpec) -> dict[str, Any]:
        """The run's Job: the existing one, or a new one with its task ConfigMap; recorded in the status."""
        job = self.kube.get(JOB, self.namespace, job_name(self.name))
        if job is None:
            plan = self._plan(spec)
            try:
                config_map, created = self.kube.get_or_create(CONFIG_MAP, task_config_map(plan))
                if not created:
                    plan = self._adopt_task(plan, config_map)
                job, created = self.kube.get_or_create(JOB, training_job(plan))
            except Invalid as e:
                self.give_up(f"the API server refused the training Job or its task: {e}")
            if created:
                crash_point(self.context, "job-created")
        if not owned_by(job, self.uid):
            raise Retry(
                f"Job {job['metadata']['name']} belongs to an earlier TrainingRun of the same name; "
                "waiting for the garbage collector to delete it",
                delay=GC_WAIT,
            )
        if self.status.job_name != job["metadata"]["name"]:
            # also after a restart between the create and this write: the Job says what was started
            self.write(
                steps.started(
                    self.status,
                    self.clock(),
                    job=job["metadata"]["name"],
                    config_map=task_config_map_name(self.name),
                    image=job["spec"]["template"]["spec"]["containers"][0]["image"],
                    champion=(job["metadata"].get("annotations") or {}).get(CHAMPION_ANNOTATION),
                    artifact_uri=artifact_uri(self.context.settings.artifact_root, self.run_obj, spec.model),
                )
            )
        return job

    def register(self, spec: TrainingRunSpec) -> None:
        status = self.status

        def build(version: int) -> dict[str, Any]:
            return model_version(self.run_obj, spec, status, version)

        mv, created = versions.register(
            self.kube, self.context.settings, self.namespace, spec.model, self.uid, build
        )
        if created:
            crash_point(self.context, "version-created")
        mv_spec = mv["spec"]
        self.write(
            steps.registered(
                self.status,
                self.clock(),
                name=mv["metadata"]["name"],
                version=mv_spec["version"],
                stage=mv_spec.get("stage", "None"),
            )
        )
        SYNCER.request(self.kube, self.context.settings, self.namespace)


def finished_status(status: dict[str, Any] | None) -> bool:
    """For kopf's `when=` filter: whether the run has ended (so no daemon or finalizer is needed)."""
    return steps.is_finished(TrainingRunStatus.model_validate(status or {}))
