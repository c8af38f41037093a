"""The ONE startup handler: every kopf knob is applied here, from the typed settings."""

from __future__ import annotations

import logging

import kopf

from kubeloop.k8s import CONFIG_MAP, JOB
from kubeloop.services.context import Context
from kubeloop.settings import Settings

MANAGED_SELECTOR = "app.kubernetes.io/managed-by=kubeloop"
FINALIZER = "kubeloop.dev/finalizer"


def _progress_storage(kind: str) -> tuple[kopf.ProgressStorage, kopf.DiffBaseStorage]:
    status = (kopf.StatusProgressStorage(field="status.kopf.progress"), kopf.StatusDiffBaseStorage())
    annotations = (
        kopf.AnnotationsProgressStorage(prefix="kubeloop.dev"),
        kopf.AnnotationsDiffBaseStorage(prefix="kubeloop.dev"),
    )
    if kind == "status":
        return status
    if kind == "annotations":
        return annotations
    return (
        kopf.MultiProgressStorage([annotations[0], status[0]]),
        kopf.MultiDiffBaseStorage([annotations[1], status[1]]),
    )


def apply_settings(kopf_settings: kopf.OperatorSettings, ours: Settings) -> None:
    """Map our settings onto kopf's. Pure apart from mutating `kopf_settings`, so it is unit-tested."""
    kopf_settings.posting.level = logging.getLevelName(ours.posting_level)
    kopf_settings.posting.reporting_component = "kubeloop-operator"
    kopf_settings.posting.reporting_instance = ours.pod_name

    # Peering: only the live replica with the highest priority acts; ties pause everyone (safe).
    kopf_settings.peering.standalone = ours.standalone
    if not ours.standalone:
        kopf_settings.peering.name = ours.peering
        kopf_settings.peering.mandatory = True  # never fall back to acting alone if peering is missing
        kopf_settings.peering.priority = ours.peering_priority
        kopf_settings.peering.lifetime = ours.peering_lifetime

    progress, diffbase = _progress_storage(ours.progress_storage)
    kopf_settings.persistence.progress_storage = progress
    kopf_settings.persistence.diffbase_storage = diffbase
    kopf_settings.persistence.finalizer = FINALIZER

    # Bounded resources: threads for the (synchronous) handlers, and objects worked on at once.
    kopf_settings.execution.max_workers = ours.max_workers
    kopf_settings.queueing.worker_limit = ours.worker_limit
    kopf_settings.execution.default_backoff = ours.retry_delay

    kopf_settings.networking.request_timeout = ours.request_timeout
    kopf_settings.networking.connect_timeout = min(10.0, ours.request_timeout)
    kopf_settings.watching.server_timeout = ours.watch_timeout
    kopf_settings.watching.client_timeout = ours.watch_timeout + 30
    kopf_settings.watching.connect_timeout = min(10.0, ours.request_timeout)

    # With a namespace list, kopf would first list every namespace to match it, which namespaced RBAC
    # forbids; it retries the 403 for about a minute before falling back to the exact names. Serve the
    # exact names at once. (This also stops kopf watching for CRDs added later: the chart installs them
    # before the operator starts.)
    kopf_settings.scanning.disabled = not ours.clusterwide

    # Watch only the Jobs and ConfigMaps that kubeloop manages (server-side), not every one in the cluster.
    kopf_settings.watching.label_selectors[(JOB.group, JOB.version, JOB.plural)] = MANAGED_SELECTOR
    kopf_settings.watching.label_selectors[(CONFIG_MAP.version, CONFIG_MAP.plural)] = MANAGED_SELECTOR


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger, **_) -> None:
    ours: Settings = memo.settings
    apply_settings(settings, ours)
    memo.context = Context.create(ours)
    scope = "cluster-wide" if ours.clusterwide else f"namespaces {', '.join(ours.namespaces)}"
    peering = (
        "standalone" if ours.standalone else f"peering {ours.peering!r} priority {ours.peering_priority}"
    )
    logger.info("kubeloop operator starting: %s, %s", scope, peering)


@kopf.on.cleanup()
def close(memo: kopf.Memo, **_) -> None:
    context: Context | None = getattr(memo, "context", None)
    if context is not None:
        context.kube.close()
