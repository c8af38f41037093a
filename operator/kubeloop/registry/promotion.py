"""Stage changes of ModelVersions, applied to the cluster: `promote()` and `apply_desired_stage()`.

Only `status` is written (stage, history, Ready), each write conditional on the resourceVersion it was
computed from and retried on conflict, so concurrent writers (the rollout of issue 7, a second request)
never lose a history entry. Changes of one model are serialised in-process; across processes, peering
guarantees a single active operator.
"""

from __future__ import annotations

import logging
from typing import Any

from kubeloop import observability
from kubeloop.api import ModelVersionStatus, utc_now
from kubeloop.api import status as conditions
from kubeloop.k8s import MODEL_VERSION, NotFound, retry_on_conflict
from kubeloop.registry import stages
from kubeloop.registry.store import SYNCER
from kubeloop.services.context import Context

log = logging.getLogger(__name__)


def _with_ready(status: ModelVersionStatus, generation: int | None) -> ModelVersionStatus:
    now = utc_now()
    state, reason, message = conditions.model_version_kstate(status.conditions, stage=status.stage)
    updated = conditions.with_kstatus(
        status.conditions, state, reason, message, generation=generation, now=now
    )
    return status.model_copy(update={"conditions": updated})


def set_stage(
    context: Context, namespace: str, change: stages.StageChange, *, observe: bool = False
) -> dict[str, Any] | None:
    """Put one ModelVersion in `change.to` (status only). Returns the written object, or None if nothing
    changed. `observe` also marks the current generation as handled (the handler of spec.stage does)."""

    def attempt() -> tuple[dict[str, Any] | None, str]:
        mv = context.kube.get(MODEL_VERSION, namespace, change.name)
        if mv is None:
            raise NotFound(f"ModelVersion {namespace}/{change.name} does not exist", status=404)
        status = ModelVersionStatus.model_validate(mv.get("status") or {})
        generation = mv["metadata"].get("generation")
        new = stages.with_stage(status, change, now=utc_now(), history_limit=context.settings.version_history)
        new = _with_ready(new, generation)
        if observe:
            new = conditions.observed(new, generation)
        return context.kube.patch_status(MODEL_VERSION, mv, new, conditional=True), status.stage

    written, before = retry_on_conflict(attempt, what=f"stage of {namespace}/{change.name}")
    if written is not None and before != change.to:
        context.events.normal(
            written, f"Stage{change.to}", f"stage {before} -> {change.to} by {change.by} ({change.reason})"
        )
    return written


def promote(context: Context, namespace: str, name: str, *, by: str, reason: str = "Promoted") -> None:
    """Make `name` the Production version of its model; the previous one becomes Archived.

    This is the registry's half of a promotion: the rollout (issue 7) calls it once the canary has
    passed its last step. Idempotent: promoting the current Production version changes nothing.
    """
    target = context.kube.get(MODEL_VERSION, namespace, name)
    if target is None:
        raise NotFound(f"ModelVersion {namespace}/{name} does not exist", status=404)
    model = target["spec"]["model"]
    with context.locks.hold(("registry", namespace, model)):
        everyone = context.kube.list(MODEL_VERSION, namespace)
        plan = stages.promotion_plan(target, everyone, by=by, reason=reason)
        promoted = None
        for change in plan:
            written = set_stage(context, namespace, change, observe=change.name == name)
            if change.name == name:
                promoted = written
    if promoted is not None and (promoted.get("status") or {}).get("stage") == stages.PRODUCTION:
        observability.PROMOTIONS.labels(namespace, model).inc()
        log.info("%s/%s is now the Production version of %s (by %s)", namespace, name, model, by)
    SYNCER.request(context.kube, context.settings, namespace)


def production_requested(context: Context, mv: dict[str, Any], *, by: str, reason: str) -> None:
    """`spec.stage: Production` was requested: the canary rollout starts (the rollout decides everything
    from here, including a first version with nothing to compare with); its completion calls `promote()`,
    naming who asked (from managedFields) then."""
    from kubeloop.services.rollout import request_rollout  # here: the rollout service imports promote()

    request_rollout(context, mv)


def apply_desired_stage(context: Context, mv: dict[str, Any], *, by: str, reason: str) -> None:
    """Act on `spec.stage` once: Production goes through `production_requested`, any other stage is set."""
    meta = mv["metadata"]
    desired = (mv.get("spec") or {}).get("stage") or "None"
    if desired == stages.PRODUCTION:
        production_requested(context, mv, by=by, reason=reason)
        return
    with context.locks.hold(("registry", meta["namespace"], mv["spec"]["model"])):
        set_stage(
            context, meta["namespace"], stages.StageChange(meta["name"], desired, by, reason), observe=True
        )
    SYNCER.request(context.kube, context.settings, meta["namespace"])


def who_requested(mv: dict[str, Any], *, created: bool) -> tuple[str, str]:
    """(by, reason) of the current spec.stage: the TrainingRun that registered the version, or the user
    (field manager) who set it."""
    lineage = (mv.get("spec") or {}).get("lineage") or {}
    editor = stages.stage_editor(mv)
    if created and lineage.get("trainingRun") and editor in (None, "kubeloop-operator"):
        stage = (mv.get("spec") or {}).get("stage")
        why = "AutoPromotion" if stage == stages.PRODUCTION else "Registered"
        return f"TrainingRun {lineage['trainingRun']}", why
    return editor or "unknown", "Created" if created else "ManualEdit"
