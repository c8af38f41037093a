"""The metav1.Condition shape, and the one rule of updating a list of them.

The rule: `lastTransitionTime` changes only when a condition's status flips; reason, message and
observedGeneration are refreshed in place. Everything here is pure: the clock is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field

from kubeloop.api.common import StatusModel, Timestamp

ConditionStatus = Literal["True", "False", "Unknown"]

# The same patterns as metav1.Condition, so that a condition the API server accepts here is also valid there.
_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
CONDITION_TYPE_PATTERN = rf"^({_DNS_SUBDOMAIN}/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


# Conditions are a map keyed by type, so that server-side apply and strategic merges treat them per type.
CONDITIONS_LIST = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}


def utc_now() -> datetime:
    """Now, in UTC, truncated to seconds as metav1.Time stores it."""
    return datetime.now(UTC).replace(microsecond=0)


class Condition(StatusModel):
    """One aspect of the object's state, in the shape of metav1.Condition."""

    type: str = Field(
        max_length=316,
        pattern=CONDITION_TYPE_PATTERN,
        description="Type of the condition in CamelCase, e.g. Ready, Succeeded, Drifted.",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=REASON_PATTERN,
        description="Machine-readable CamelCase reason of the last transition, e.g. GatePassed.",
    )
    message: str = Field(
        default="", max_length=32768, description="Human-readable details about the last transition."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation the condition was set for."
    )
    last_transition_time: Timestamp = Field(
        description="When the status last changed from one value to another (RFC 3339)."
    )


def find_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    """The condition of this type, if any."""
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: Sequence[Condition], type_: str) -> bool:
    found = find_condition(conditions, type_)
    return found is not None and found.status == "True"


def set_condition(conditions: Sequence[Condition], new: Condition) -> list[Condition]:
    """Return the list with `new` merged in by type, keeping the old transition time unless status flipped.

    The order of the other conditions is kept, and a new type is appended, so an unchanged input gives an
    equal output (which lets the caller skip the write).
    """
    out: list[Condition] = []
    merged = False
    for old in conditions:
        if old.type != new.type:
            out.append(old)
            continue
        merged = True
        if old.status == new.status:
            new = new.model_copy(update={"last_transition_time": old.last_transition_time})
        out.append(new)
    if not merged:
        out.append(new)
    return out


def remove_condition(conditions: Sequence[Condition], type_: str) -> list[Condition]:
    return [c for c in conditions if c.type != type_]
