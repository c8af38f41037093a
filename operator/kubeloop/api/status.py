"""Condition builders (one per type) and the status rules every kind shares; pure, the clock is an argument.

- Each condition type has one builder, with a CamelCase default reason for each status.
- `observedGeneration` goes on every condition and on the status itself.
- `lastTransitionTime` changes only when a status flips (`set_condition`).
- kstatus (Flux, `kubectl wait`, cli-utils): `Ready`, plus `Reconciling` while work is under way and `Stalled`
  when it cannot go on; both are "abnormal-true" and removed when they no longer hold.
- `status_patch` returns the merge patch that takes the stored status to the desired one, or None when there
  is nothing to write, so a reconcile that changes nothing writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from kubeloop.api.condition import (
    REASON_PATTERN,
    Condition,
    ConditionStatus,
    find_condition,
    remove_condition,
    set_condition,
)

# -- condition types -----------------------------------------------------------------------------------------
READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
# TrainingRun
DATA_VALIDATED = "DataValidated"
TRAINED = "Trained"
MODEL_VALIDATED = "ModelValidated"
REGISTERED = "Registered"
SUCCEEDED = "Succeeded"
# ModelVersion
PROGRESSING = "Progressing"
ROLLED_BACK = "RolledBack"
# DriftMonitor
DRIFTED = "Drifted"

TRAINING_RUN_CONDITIONS = (DATA_VALIDATED, TRAINED, MODEL_VALIDATED, REGISTERED, SUCCEEDED)


def _status(value: bool | None) -> ConditionStatus:
    return "Unknown" if value is None else ("True" if value else "False")


def condition(
    type_: str,
    value: bool | None,
    reason: str,
    message: str = "",
    *,
    generation: int | None,
    now: datetime,
) -> Condition:
    """A condition with a checked CamelCase reason; `value` None means Unknown."""
    if not re.fullmatch(REASON_PATTERN, reason) or not reason[0].isupper():
        raise ValueError(f"reason {reason!r} of {type_} must be CamelCase, e.g. GatePassed")
    return Condition(
        type=type_,
        status=_status(value),
        reason=reason,
        message=message[:32768],
        observed_generation=generation,
        last_transition_time=now,
    )


# Default reason of each condition type per status, as the builders use them (and docs/api.md lists them).
DEFAULT_REASONS: dict[str, dict[ConditionStatus, str]] = {}


def _builder(type_: str, true_reason: str, false_reason: str, unknown_reason: str):
    """Make the builder of one condition type, with its default reason per status."""
    defaults: dict[ConditionStatus, str] = {
        "True": true_reason,
        "False": false_reason,
        "Unknown": unknown_reason,
    }
    DEFAULT_REASONS[type_] = defaults

    def build(
        value: bool | None,
        message: str = "",
        *,
        reason: str | None = None,
        generation: int | None,
        now: datetime,
    ) -> Condition:
        return condition(
            type_,
            value,
            defaults[_status(value)] if reason is None else reason,
            message,
            generation=generation,
            now=now,
        )

    build.__name__ = re.sub(r"(?<!^)(?=[A-Z])", "_", type_).lower()
    build.__doc__ = (
        f"The {type_} condition: True ({true_reason}), False ({false_reason}) or None for Unknown "
        f"({unknown_reason}), unless `reason` says otherwise."
    )
    return build


ready = _builder(READY, "Ready", "NotReady", "Progressing")
reconciling = _builder(RECONCILING, "Progressing", "Idle", "Progressing")
stalled = _builder(STALLED, "Failed", "NotStalled", "Unknown")
data_validated = _builder(DATA_VALIDATED, "DataValid", "DataInvalid", "ValidatingData")
trained = _builder(TRAINED, "TrainingComplete", "TrainingFailed", "Training")
model_validated = _builder(MODEL_VALIDATED, "GatePassed", "GateFailed", "ValidatingModel")
registered = _builder(REGISTERED, "VersionRegistered", "RegistrationFailed", "Registering")
succeeded = _builder(SUCCEEDED, "Succeeded", "Failed", "Running")
progressing = _builder(PROGRESSING, "RolloutInProgress", "RolloutComplete", "Pending")
rolled_back = _builder(ROLLED_BACK, "AnalysisFailed", "NotRolledBack", "Unknown")
drifted = _builder(DRIFTED, "DriftDetected", "NoDrift", "InsufficientData")


# -- kstatus ------------------------------------------------------------------------------------------------
KState = Literal["InProgress", "Current", "Failed"]


def with_kstatus(
    conditions: Sequence[Condition],
    state: KState,
    reason: str,
    message: str = "",
    *,
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """Set Ready, Reconciling and Stalled so that kstatus reads `state`.

    InProgress: Ready Unknown and Reconciling True. Current: Ready True. Failed: Ready False and Stalled True.
    Reconciling and Stalled are removed whenever they do not hold, as kstatus expects.
    """
    out = list(conditions)
    if state == "InProgress":
        out = set_condition(out, ready(None, message, reason=reason, generation=generation, now=now))
        out = set_condition(out, reconciling(True, message, reason=reason, generation=generation, now=now))
        return remove_condition(out, STALLED)
    if state == "Current":
        out = set_condition(out, ready(True, message, reason=reason, generation=generation, now=now))
        return remove_condition(remove_condition(out, RECONCILING), STALLED)
    out = set_condition(out, ready(False, message, reason=reason, generation=generation, now=now))
    out = set_condition(out, stalled(True, message, reason=reason, generation=generation, now=now))
    return remove_condition(out, RECONCILING)


def training_run_kstate(conditions: Sequence[Condition]) -> tuple[KState, str, str]:
    """A TrainingRun is Current once Succeeded is True, Failed once it is False, else InProgress."""
    done = find_condition(conditions, SUCCEEDED)
    if done is None:
        return "InProgress", "Pending", "waiting for the operator to start the run"
    if done.status == "True":
        return "Current", done.reason, done.message
    if done.status == "False":
        return "Failed", done.reason, done.message
    return "InProgress", done.reason, done.message


def model_version_kstate(conditions: Sequence[Condition], *, stage: str) -> tuple[KState, str, str]:
    """RolledBack is Failed; a rollout under way is InProgress; otherwise the version is Current."""
    back = find_condition(conditions, ROLLED_BACK)
    if back is not None and back.status == "True":
        return "Failed", back.reason, back.message
    moving = find_condition(conditions, PROGRESSING)
    if moving is not None and moving.status == "True":
        return "InProgress", moving.reason, moving.message
    return "Current", f"Stage{stage}", f"stage {stage}"


# -- observedGeneration and no-op writes --------------------------------------------------------------------
S = TypeVar("S", bound=BaseModel)


def observed(status: S, generation: int | None) -> S:
    """The status, marked as describing `generation`."""
    return status.model_copy(update={"observed_generation": generation})


def _dump(status: BaseModel) -> dict[str, Any]:
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def merge_patch(before: Any, after: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns `before` into `after`; {} when they are equal.

    Recursive, with an explicit null for every key that disappears at any depth: a merge patch merges nested
    objects, so a nested field that became unset (a rollout step's start time when the next step begins) must
    be nulled, not just left out. Lists are replaced whole, as merge patches do.
    """
    if not isinstance(before, dict) or not isinstance(after, dict):
        return after
    patch: dict[str, Any] = dict.fromkeys(before.keys() - after.keys())
    for key, value in after.items():
        if key not in before:
            patch[key] = value
        elif before[key] != value:
            patch[key] = merge_patch(before[key], value) if isinstance(value, dict) else value
    return patch


def status_patch(current: Mapping[str, Any] | None, desired: S) -> dict[str, Any] | None:
    """The JSON merge patch body (`{"status": {...}}`) from the stored status to `desired`, or None if equal.

    Only the model's own fields are compared: keys kopf keeps under status (`status.kopf`) are never touched.
    Both sides go through the model, so a default that the stored object leaves out is not a change. Fields
    the desired status drops, at any depth, are deleted with null.
    """
    model = type(desired)
    changed = merge_patch(_dump(model.model_validate(dict(current or {}))), _dump(desired))
    if not changed:
        return None
    return {"status": {k: changed[k] for k in sorted(changed)}}
