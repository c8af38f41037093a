"""ModelVersion handlers: act on `spec.stage` when it is set or changed, and keep the registry index.

- create, or an update of `spec.stage` (kopf's change detection on that one field): apply the desired
  stage once (`registry.apply_desired_stage`), naming who asked: the TrainingRun that registered the
  version, or the field manager that edited the stage (kubectl-patch, argocd-controller, ...).
- any ModelVersion event, and the deletion of the index ConfigMap: re-project the namespace's index.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from kubeloop.api import GROUP, VERSION
from kubeloop.builders.labels import MANAGED_BY, MANAGED_BY_VALUE, REGISTRY_INDEX_LABEL
from kubeloop.handlers.errors import handling
from kubeloop.k8s import KubeError, NotFound
from kubeloop.registry import apply_desired_stage
from kubeloop.registry.promotion import who_requested
from kubeloop.registry.store import SYNCER
from kubeloop.services.context import Context

KIND = "ModelVersion"


def _apply(body: kopf.Body, memo: kopf.Memo, logger: logging.Logger, *, created: bool) -> None:
    context: Context = memo.context
    mv = dict(body)
    by, reason = who_requested(mv, created=created)
    with handling(KIND, logger, context.settings.retry_delay):
        apply_desired_stage(context, mv, by=by, reason=reason)


@kopf.on.create(GROUP, VERSION, "modelversions")
def created(body: kopf.Body, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    _apply(body, memo, logger, created=True)


@kopf.on.update(GROUP, VERSION, "modelversions", field="spec.stage")
def stage_changed(body: kopf.Body, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    _apply(body, memo, logger, created=False)


def _sync(namespace: str, memo: kopf.Memo, logger: logging.Logger) -> None:
    context: Context = memo.context
    try:
        SYNCER.request(context.kube, context.settings, namespace)
    except NotFound:  # the namespace is being deleted
        logger.debug("no registry index for %s: the namespace is gone", namespace)
    except KubeError as e:  # the next ModelVersion event, or the next start, syncs again
        logger.warning("could not update the registry index of %s: %s", namespace, e)


@kopf.on.event(GROUP, VERSION, "modelversions")
def model_version_event(namespace: str, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    _sync(namespace, memo, logger)


@kopf.on.event("", "v1", "configmaps", labels={MANAGED_BY: MANAGED_BY_VALUE, REGISTRY_INDEX_LABEL: "true"})
def index_event(
    event: dict[str, Any], namespace: str, memo: kopf.Memo, logger: logging.Logger, **_: Any
) -> None:
    if event.get("type") == "DELETED":
        logger.info("the registry index of %s was deleted; rebuilding it from the ModelVersions", namespace)
        _sync(namespace, memo, logger)
