"""TrainingRun status transitions: small pure functions, each taking the status to the next step.

Each returns a new `TrainingRunStatus`; `finish()` adds observedGeneration and the kstatus conditions
(Ready/Reconciling/Stalled). The service writes the result with a patch that is skipped when nothing
changed, so re-running a step after a restart writes nothing and sends no Event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kubeloop.api import Condition, TrainingRunStatus, find_condition, set_condition
from kubeloop.api import status as conditions
from kubeloop.contract import TrainerFailed, TrainerSucceeded
from kubeloop.services.gates import GateDecision, data_gate_results
from kubeloop.services.job_state import JobState, KilledByRuntime, Report


@dataclass(frozen=True)
class Clock:
    """When, and for which metadata.generation, a status is written."""

    now: datetime
    generation: int | None


STEPS = (
    conditions.DATA_VALIDATED,
    conditions.TRAINED,
    conditions.MODEL_VALIDATED,
    conditions.REGISTERED,
    conditions.SUCCEEDED,
)
_BUILDERS = {
    conditions.DATA_VALIDATED: conditions.data_validated,
    conditions.TRAINED: conditions.trained,
    conditions.MODEL_VALIDATED: conditions.model_validated,
    conditions.REGISTERED: conditions.registered,
    conditions.SUCCEEDED: conditions.succeeded,
}


def is_finished(status: TrainingRunStatus) -> bool:
    done = find_condition(status.conditions, conditions.SUCCEEDED)
    return done is not None and done.status in ("True", "False")


def _set(
    status: TrainingRunStatus, clock: Clock, type_: str, value: bool | None, reason: str, message: str
) -> TrainingRunStatus:
    built = _BUILDERS[type_](value, message, reason=reason, generation=clock.generation, now=clock.now)
    return status.model_copy(update={"conditions": set_condition(status.conditions, built)})


def _skip_rest(status: TrainingRunStatus, clock: Clock, why: str) -> TrainingRunStatus:
    """Steps never reached in a failed run become False/Skipped, so every step has a definite answer."""
    for type_ in STEPS[:-1]:
        current = find_condition(status.conditions, type_)
        if current is None or current.status == "Unknown":
            status = _set(status, clock, type_, False, "Skipped", why)
    return status


def finish(status: TrainingRunStatus, clock: Clock) -> TrainingRunStatus:
    """observedGeneration, plus Ready/Reconciling/Stalled derived from Succeeded (for kstatus and Flux)."""
    state, reason, message = conditions.training_run_kstate(status.conditions)
    with_k = conditions.with_kstatus(
        status.conditions, state, reason, message, generation=clock.generation, now=clock.now
    )
    return conditions.observed(status.model_copy(update={"conditions": with_k}), clock.generation)


def invalid_spec(status: TrainingRunStatus, message: str, clock: Clock) -> TrainingRunStatus:
    status = _set(status, clock, conditions.SUCCEEDED, False, "InvalidSpec", message)
    status = _skip_rest(status, clock, "the spec is invalid")
    return status.model_copy(update={"message": f"invalid spec: {message}", "completion_time": clock.now})


def started(
    status: TrainingRunStatus,
    clock: Clock,
    *,
    job: str,
    config_map: str,
    image: str,
    champion: str | None,
    artifact_uri: str,
) -> TrainingRunStatus:
    against = f", champion {champion}" if champion else ""
    message = f"training Job {job} started{against}"
    status = status.model_copy(
        update={
            "job_name": job,
            "task_config_map": config_map,
            "image": image,
            "champion_version": champion,
            "artifact_uri": artifact_uri,
            "start_time": status.start_time or clock.now,
            "message": message,
        }
    )
    status = _set(
        status, clock, conditions.DATA_VALIDATED, None, "ValidatingData", "the trainer checks the data"
    )
    status = _set(status, clock, conditions.TRAINED, None, "Training", message)
    return _set(status, clock, conditions.SUCCEEDED, None, "Running", message)


def running(status: TrainingRunStatus, clock: Clock, state: JobState) -> TrainingRunStatus:
    return status.model_copy(update={"attempts": max(status.attempts, state.attempts)})


def _failure_text(report: Report, state: JobState) -> tuple[str, str]:
    """(reason, message) of a failed Job: the trainer's own words when it left them."""
    if isinstance(report, KilledByRuntime):
        return report.reason, report.message
    if isinstance(report, TrainerFailed):
        text = report.message
        if report.violations_omitted:
            text += f" (and {report.violations_omitted} more violations)"
        return report.reason, text
    job_part = f"the Job failed ({state.reason})" + (f": {state.message}" if state.message else "")
    if isinstance(report, str) and report:
        return state.reason or "TrainingFailed", f"{job_part}; the trainer's last words: {report}"
    return state.reason or "TrainingFailed", job_part


def trainer_failed(
    status: TrainingRunStatus, clock: Clock, report: Report, state: JobState
) -> TrainingRunStatus:
    reason, message = _failure_text(report, state)
    updates: dict = {"attempts": max(status.attempts, state.attempts), "completion_time": clock.now}
    if isinstance(report, TrainerFailed):
        if report.data_hash:
            updates["data_hash"] = report.data_hash
        updates["gates"] = data_gate_results(report)
        if report.reason == "DataValidationFailed":
            status = _set(status, clock, conditions.DATA_VALIDATED, False, "DataInvalid", message)
        elif report.reason == "DataUnavailable":
            status = _set(status, clock, conditions.DATA_VALIDATED, False, "DataUnavailable", message)
        elif report.reason in ("TrainingFailed", "ArtifactWriteFailed"):
            # the trainer fits only after the data gate passed
            status = _set(
                status, clock, conditions.DATA_VALIDATED, True, "DataValid", "the data passed the data gate"
            )
    status = _set(status, clock, conditions.TRAINED, False, reason, message)
    status = _set(status, clock, conditions.SUCCEEDED, False, reason, message)
    status = _skip_rest(status, clock, f"training failed ({reason})")
    updates["message"] = f"training failed ({reason}): {message}"
    return status.model_copy(update=updates)


def trained(
    status: TrainingRunStatus, clock: Clock, summary: TrainerSucceeded, decision: GateDecision
) -> TrainingRunStatus:
    """The Job succeeded: record what the trainer measured, and the model gate's decision."""
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in sorted(summary.metrics.items()))
    status = status.model_copy(
        update={
            "data_hash": summary.data_hash,
            "data_rows": summary.data_rows,
            "artifact_uri": summary.artifact_uri,
            "artifact_digest": summary.digest,
            "candidate_metrics": summary.metrics,
            "champion_metrics": summary.champion_metrics or {},
            "gates": data_gate_results(summary) + decision.results,
        }
    )
    status = _set(
        status,
        clock,
        conditions.DATA_VALIDATED,
        True,
        "DataValid",
        f"{summary.data_rows} rows ({summary.data_hash[:19]}) passed the data gate",
    )
    status = _set(
        status,
        clock,
        conditions.TRAINED,
        True,
        "TrainingComplete",
        f"{summary.task} model trained on {summary.train_rows} rows, tested on {summary.test_rows}: {metrics}",
    )
    if decision.passed:
        return _set(status, clock, conditions.MODEL_VALIDATED, True, "GatePassed", decision.message)
    status = _set(status, clock, conditions.MODEL_VALIDATED, False, decision.reason, decision.message)
    status = _set(status, clock, conditions.SUCCEEDED, False, "GateFailed", decision.message)
    status = _skip_rest(status, clock, "the model gate failed; nothing was registered")
    return status.model_copy(
        update={"completion_time": clock.now, "message": f"model gate failed: {decision.message}"}
    )


def registered(
    status: TrainingRunStatus, clock: Clock, *, name: str, version: int, stage: str
) -> TrainingRunStatus:
    message = f"registered {name} (version {version}, stage {stage} requested)"
    status = _set(status, clock, conditions.REGISTERED, True, "VersionRegistered", message)
    status = _set(status, clock, conditions.SUCCEEDED, True, "Succeeded", message)
    return status.model_copy(
        update={"model_version": name, "version": version, "completion_time": clock.now, "message": message}
    )


def registration_failed(status: TrainingRunStatus, clock: Clock, message: str) -> TrainingRunStatus:
    status = _set(status, clock, conditions.REGISTERED, False, "RegistrationFailed", message)
    status = _set(status, clock, conditions.SUCCEEDED, False, "RegistrationFailed", message)
    return status.model_copy(update={"completion_time": clock.now, "message": message})


@dataclass(frozen=True)
class Transition:
    type: str
    condition: Condition


def transitions(before: TrainingRunStatus, after: TrainingRunStatus) -> list[Transition]:
    """Step conditions whose status or reason changed: one Event each."""
    out = []
    for type_ in STEPS:
        new = find_condition(after.conditions, type_)
        old = find_condition(before.conditions, type_)
        if new is not None and (old is None or (old.status, old.reason) != (new.status, new.reason)):
            out.append(Transition(type_, new))
    return out
