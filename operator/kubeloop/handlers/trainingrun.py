"""TrainingRun handlers: a daemon drives each unfinished run; Job events wake it up.

Why a daemon: a run waits minutes for its Job, and must make progress even if a Job event is missed or
a write fails. The daemon reconciles (level-based, `services.training.reconcile`), then sleeps until its
Job changes or the resync interval passes, and retries transient errors with a backoff, all without
kopf's retry machinery (which logs every wait as an error). Its `when` filter matches only unfinished
runs, so finished runs have no daemon and no finalizer: kopf holds its finalizer on a run only while the
daemon lives, to stop it before the run is deleted.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from kubeloop.api import GROUP, VERSION
from kubeloop.builders.labels import MANAGED_BY, MANAGED_BY_VALUE, RUN_LABEL
from kubeloop.k8s import KubeError
from kubeloop.services import training
from kubeloop.services.context import Context
from kubeloop.services.errors import GiveUp, Retry

MAX_BACKOFF = 300.0
_wakeups: dict[tuple[str, str], asyncio.Event] = {}
_executor: ThreadPoolExecutor | None = None


def _unfinished(status: dict[str, Any], **_: Any) -> bool:
    return not training.finished_status(status)


def _pool(context: Context) -> ThreadPoolExecutor:
    # Reconciles block on API calls: run them in a bounded pool of their own, not on the event loop.
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(context.settings.max_workers, thread_name_prefix="trainingrun")
    return _executor


# Stopping (run finished, deleted, operator exiting or paused): a graceful signal first, which the daemon
# sees at its next wait; only a daemon still busy after the backoff is cancelled.
@kopf.daemon(
    GROUP,
    VERSION,
    "trainingruns",
    when=_unfinished,
    cancellation_backoff=30.0,
    cancellation_timeout=10.0,
)
async def drive(
    name: str, namespace: str, stopped: kopf.DaemonStopped, memo: kopf.Memo, logger: logging.Logger, **_: Any
) -> None:
    context: Context = memo.context
    loop = asyncio.get_running_loop()
    key = (namespace, name)
    wake = _wakeups.setdefault(key, asyncio.Event())
    failures = 0
    try:
        while not stopped:
            wake.clear()
            try:
                done = await loop.run_in_executor(
                    _pool(context), training.reconcile, context, namespace, name
                )
                if done:
                    return
                delay, failures = context.settings.resync_interval, 0
            except Retry as e:
                logger.info("waiting: %s", e)
                delay = e.delay
            except GiveUp as e:
                logger.warning("gave up: %s", e)
                return
            except KubeError as e:
                failures += 1
                delay = min(context.settings.retry_delay * 2 ** (failures - 1), MAX_BACKOFF)
                logger.warning("reconcile failed (attempt %d), retrying in %.0fs: %s", failures, delay, e)
            except Exception:  # a bug must not end the run's daemon for good: log it, back off, retry
                failures += 1
                delay = min(context.settings.retry_delay * 2 ** (failures - 1), MAX_BACKOFF)
                logger.exception("reconcile crashed (attempt %d), retrying in %.0fs", failures, delay)
            await _sleep(wake, stopped, delay)
    finally:
        if _wakeups.get(key) is wake:
            del _wakeups[key]


async def _sleep(wake: asyncio.Event, stopped: kopf.DaemonStopped, seconds: float) -> None:
    """Until the Job changes, the daemon is stopped, or `seconds` pass."""
    woken = asyncio.ensure_future(wake.wait())
    halted = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({woken, halted}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        woken.cancel()
        halted.cancel()


@kopf.on.event("batch", "v1", "jobs", labels={MANAGED_BY: MANAGED_BY_VALUE, RUN_LABEL: kopf.PRESENT})
async def job_changed(event: dict[str, Any], body: kopf.Body, **_: Any) -> None:
    """Wake the daemon of the run that owns this Job (its own reconcile does the work)."""
    for ref in body.metadata.get("ownerReferences") or []:
        if ref.get("kind") == "TrainingRun":
            wake = _wakeups.get((body.metadata.namespace, ref["name"]))
            if wake is not None:
                wake.set()
