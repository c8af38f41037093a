"""CEL rules for cross-field checks, declared next to the model they guard.

The rules land in the CRD as `x-kubernetes-validations`, so the API server refuses a bad object at
`kubectl apply` time. Each model also checks the same rule in Python, so that the trainer and the operator
refuse the same objects when they parse a task document or a template.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

CEL_ATTRIBUTE = "__kubeloop_cel_rules__"


@dataclass(frozen=True)
class CelRule:
    """One `x-kubernetes-validations` entry."""

    rule: str
    message: str
    field_path: str | None = None
    reason: str | None = None

    def to_openapi(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        if self.reason:
            out["reason"] = self.reason
        return out


def cel(
    rule: str, message: str, *, field_path: str | None = None, reason: str | None = None
) -> Callable[[T], T]:
    """Attach a CEL rule to a model class; stacked decorators keep their top-to-bottom order."""

    def attach(cls: T) -> T:
        own = list(vars(cls).get(CEL_ATTRIBUTE, ()))
        setattr(cls, CEL_ATTRIBUTE, (CelRule(rule, message, field_path, reason), *own))
        return cls

    return attach


def rules_of(cls: type) -> tuple[CelRule, ...]:
    """The rules declared on this very class (not inherited: each schema node carries its own)."""
    return tuple(vars(cls).get(CEL_ATTRIBUTE, ()))
