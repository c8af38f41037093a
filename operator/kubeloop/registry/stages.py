"""Stage transitions of ModelVersions: the rules, as pure functions.

- At most one Production per model: promoting a version archives the current production version(s) of
  the same model first (reason Superseded, by the version that replaced them).
- The operator writes only `status.stage` and `status.history`; a user's `spec.stage` is the request and
  is never rewritten, so a superseded version keeps `spec.stage: Production` with `status.stage: Archived`.
- A request is acted on once, when `spec.stage` is set or changed (kopf's change detection on that
  field), never again on a restart, so an old request cannot take production back from a newer version.
- Every change is recorded: from, to, who or what (a user from managedFields, a TrainingRun, a
  ModelVersion, a rollout), why, and when.
- A superseded version serves no traffic: the rollout that promotes its successor retires its Deployment
  before it calls `promote()`, so the archived version's `status.rollout.weight` becomes 0 in the same write
  (otherwise `kubectl get mv` would still show the old version at 100%).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubeloop.api import ModelVersionStatus, PromotionRecord

PRODUCTION = "Production"
ARCHIVED = "Archived"


@dataclass(frozen=True)
class StageChange:
    name: str  # the ModelVersion
    to: str
    by: str
    reason: str
    retired: bool = False  # its traffic already went to another version: its rollout weight becomes 0


def with_stage(
    status: ModelVersionStatus, change: StageChange, *, now: datetime, history_limit: int
) -> ModelVersionStatus:
    """The status after `change`; unchanged (equal) when the version is already in that stage."""
    if status.stage == change.to:
        return status
    record = PromotionRecord.model_validate(
        {"from": status.stage, "to": change.to, "by": change.by, "reason": change.reason, "time": now}
    )
    history = [*status.history, record][-history_limit:]
    update: dict[str, Any] = {
        "stage": change.to,
        "history": history,
        "message": f"{status.stage} -> {change.to} by {change.by} ({change.reason})",
    }
    if change.retired and status.rollout is not None:
        update["rollout"] = status.rollout.model_copy(update={"weight": 0})
    return status.model_copy(update=update)


def promotion_plan(
    target: Mapping[str, Any], same_model: Sequence[Mapping[str, Any]], *, by: str, reason: str
) -> list[StageChange]:
    """Archive every other Production version of the model, then make `target` Production (in that order,
    so that there is never a moment with two). The archived ones are `retired`: the caller (a completed
    rollout) has already moved their traffic to `target`."""
    name = target["metadata"]["name"]
    model = target["spec"]["model"]
    changes = [
        StageChange(mv["metadata"]["name"], ARCHIVED, f"ModelVersion {name}", "Superseded", retired=True)
        for mv in same_model
        if mv["metadata"]["name"] != name
        and mv["spec"].get("model") == model
        and (mv.get("status") or {}).get("stage") == PRODUCTION
    ]
    changes.append(StageChange(name, PRODUCTION, by, reason))
    return changes


def _owns_stage(fields: Mapping[str, Any] | None) -> bool:
    return bool(fields) and "f:stage" in ((fields or {}).get("f:spec") or {})


def stage_editor(mv: Mapping[str, Any]) -> str | None:
    """Who last set spec.stage, from managedFields (e.g. kubectl-patch, kubectl-edit, argocd-controller)."""
    best: tuple[str, str] | None = None
    for entry in (mv.get("metadata") or {}).get("managedFields") or []:
        if entry.get("subresource") or not _owns_stage(entry.get("fieldsV1")):
            continue
        stamp = entry.get("time") or ""
        if best is None or stamp >= best[0]:
            best = (stamp, entry.get("manager") or "unknown")
    return best[1] if best else None
