"""The canary rollout loop of each ModelVersion that has one, and the serving loop of each production one.

A kopf daemon per such ModelVersion: it runs one tick of the rollout service in the worker threads and
sleeps as long as the state machine asks (the rest of a step's interval, a second while pods get Ready), so
a step's analysis starts on time instead of on the next timer beat. kopf starts the daemon when the filter
matches (a rollout was requested, or the version is in production), stops it when it no longer does, and
starts it again for every matching object after an operator restart -- which then resumes at the step the
status records. The rollout starts from the registry's handler of `spec.stage` (see
`kubeloop.registry.promotion.production_requested`), not here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from kubeloop import observability
from kubeloop.api import GROUP, VERSION
from kubeloop.k8s import KubeError
from kubeloop.rollout.machine import ACTIVE, UNWINDING
from kubeloop.services.errors import Retry
from kubeloop.services.rollout import RolloutService


def has_rollout_work(status: dict[str, Any], **_: Any) -> bool:
    """A rollout under way or winding down, or a production version to keep served."""
    rollout = status.get("rollout") or {}
    phase = rollout.get("phase")
    winding = phase in UNWINDING and rollout.get("startTime") and not rollout.get("completionTime")
    return phase in ACTIVE or bool(winding) or status.get("stage") == "Production"


def _service(memo: kopf.Memo) -> RolloutService:
    service = getattr(memo, "rollout", None)
    if service is None:
        service = memo.rollout = RolloutService(memo.context)  # one per process: it caches discovery
    return service


@kopf.daemon(GROUP, VERSION, "modelversions", id="rollout", when=has_rollout_work, cancellation_timeout=10.0)
async def rollout(
    name: str, namespace: str, memo: kopf.Memo, stopped: kopf.DaemonStopped, logger: logging.Logger, **_: Any
) -> None:
    service = _service(memo)
    retry_delay = memo.context.settings.retry_delay
    loop = asyncio.get_running_loop()
    while not stopped:
        try:
            with observability.reconcile("ModelVersion"):
                delay = await loop.run_in_executor(None, service.reconcile, namespace, name)
        except Retry as e:
            logger.info("rollout waits: %s", e)
            delay = e.delay
        except KubeError as e:
            logger.warning("rollout tick failed, retrying in %.0fs: %s", retry_delay, e)
            delay = retry_delay
        except Exception:  # a bug must not end the loop for good: log it and try again later
            logger.exception("rollout tick crashed, retrying in %.0fs", retry_delay)
            delay = retry_delay
        await stopped.wait(max(delay, 0.05))
