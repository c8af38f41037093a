"""DriftMonitor: one kopf daemon per monitor observes a window every spec.interval. Thin: timing only.

The daemon is level-based: when the next check is due comes from the live object (status.lastCheckTime
plus spec.interval), so a restarted operator resumes the same schedule. The check itself (a blocking
service call) runs on a small thread pool of its own, so that many monitors never starve kopf's workers.
The previous reservoirs of the servers, which only Wasserstein needs, live in the daemon.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf

from kubeloop import observability
from kubeloop.api import GROUP, VERSION, DriftMonitorStatus, parse_duration
from kubeloop.monitoring.reservoir import SampleMemory
from kubeloop.services.context import Context
from kubeloop.services.drift import DriftService, forget_metrics

KIND = "DriftMonitor"
TICK = 1.0  # how often the daemon looks at the live object (spec changes, a due window)
DEFAULT_INTERVAL = timedelta(minutes=5)

_lock = threading.Lock()


def _service(memo: kopf.Memo) -> tuple[DriftService, ThreadPoolExecutor]:
    with _lock:
        if "drift" not in memo:
            context: Context = memo.context
            workers = max(2, context.settings.max_workers // 2)
            memo.drift = (DriftService(context), ThreadPoolExecutor(workers, thread_name_prefix="drift"))
        return memo.drift


def _due(body: kopf.Body, checked: datetime | None) -> datetime | None:
    """When the next check is due, from the live object and the last check this daemon made."""
    try:
        interval = parse_duration((body.get("spec") or {}).get("interval") or "5m")
    except ValueError:
        interval = DEFAULT_INTERVAL
    raw = (body.get("status") or {}).get("lastCheckTime")
    last = datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else None
    if checked is not None and (last is None or checked > last):
        last = checked  # our own write may not have come back through the watch yet
    return None if last is None else last + interval


@kopf.daemon(GROUP, VERSION, "driftmonitors", id="windows", cancellation_timeout=30.0)
async def windows(
    stopped: kopf.DaemonStopped,
    namespace: str,
    name: str,
    body: kopf.Body,
    memo: kopf.Memo,
    logger: logging.Logger,
    **_: Any,
) -> None:
    service, pool = _service(memo)
    retry = timedelta(seconds=memo.context.settings.retry_delay)
    samples: dict[str, SampleMemory] = {}
    checked: datetime | None = None  # when this daemon last checked
    retry_at: datetime | None = None  # set after a failed check
    last: DriftMonitorStatus | None = None
    model = (body.get("spec") or {}).get("model", "")
    loop = asyncio.get_running_loop()
    while not stopped:
        due = retry_at or _due(body, checked)
        now = datetime.now(UTC)
        if due is not None and now < due:
            await stopped.wait(min(TICK, (due - now).total_seconds()))
            continue
        try:
            with observability.reconcile(KIND), observability.timed(KIND, "Check"):
                result = await loop.run_in_executor(pool, service.check, namespace, name, samples)
            samples, last = result.samples, result.status or last
            checked, retry_at = datetime.now(UTC), None
        except Exception as e:  # retried after a delay; the daemon, and its samples, live on
            logger.error("DriftMonitor check failed, retrying in %ss: %s", retry.total_seconds(), e)
            retry_at = datetime.now(UTC) + retry
    if stopped.reason is not None and kopf.DaemonStoppingReason.RESOURCE_DELETED in stopped.reason:
        forget_metrics(namespace, model, last)
