"""Prometheus metrics (the names in `kubeloop.api.metrics`, which the chart's alerts and dashboard use) and
the metrics endpoint. The health endpoint (`GET /healthz`) is kopf's liveness endpoint, started in main.py:
it answers 200 once the operator is up and its probes pass.

Every metric of the operator lives here, including those issues 7 and 8 feed (promotions, rollbacks,
drift), so that there is one list to compare with the chart.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from kubeloop.api import metrics as names

log = logging.getLogger(__name__)

# prometheus_client adds `_total` to counters itself; give it the base name.
RECONCILES = Counter(
    names.RECONCILES_TOTAL.removesuffix("_total"),
    "Reconciles by kind and outcome (success or error).",
    ["kind", "outcome"],
)
PHASE_DURATION = Histogram(
    names.PHASE_DURATION_SECONDS,
    "Seconds spent in each phase, e.g. TrainingRun Training or EndToEnd.",
    ["kind", "phase"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)
TRAINING_RUNS = Counter(
    names.TRAINING_RUNS_TOTAL.removesuffix("_total"),
    "Finished TrainingRuns by outcome (Succeeded or Failed).",
    ["namespace", "model", "outcome"],
)
PROMOTIONS = Counter(
    names.PROMOTIONS_TOTAL.removesuffix("_total"),
    "ModelVersions promoted to Production.",
    ["namespace", "model"],
)
ROLLBACKS = Counter(
    names.ROLLBACKS_TOTAL.removesuffix("_total"),
    "Canary rollouts rolled back.",
    ["namespace", "model"],
)
DRIFT_SCORE = Gauge(
    names.DRIFT_SCORE,
    "Drift score of each feature in the last window.",
    ["namespace", "model", "feature", "method"],
)
DRIFT_DETECTED = Gauge(
    names.DRIFT_DETECTED, "1 while the last window drifted, else 0.", ["namespace", "model"]
)
RETRAINS = Counter(
    names.RETRAINS_TOTAL.removesuffix("_total"),
    "Retraining TrainingRuns started by DriftMonitors.",
    ["namespace", "model", "reason"],
)


@contextlib.contextmanager
def reconcile(kind: str) -> Iterator[None]:
    """Count one reconcile of `kind`: an exception is an error (and propagates), anything else a success.

    Waiting (a retry scheduled while a Job runs) is a success: nothing went wrong.
    """
    try:
        yield
    except Exception as e:
        if getattr(e, "outcome", "error") == "success":
            RECONCILES.labels(kind, "success").inc()
        else:
            RECONCILES.labels(kind, "error").inc()
        raise
    else:
        RECONCILES.labels(kind, "success").inc()


def observe_phase(kind: str, phase: str, seconds: float) -> None:
    if seconds >= 0:
        PHASE_DURATION.labels(kind, phase).observe(seconds)


@contextlib.contextmanager
def timed(kind: str, phase: str) -> Iterator[None]:
    start = time.monotonic()
    try:
        yield
    finally:
        observe_phase(kind, phase, time.monotonic() - start)


def start_metrics_server(address: str, port: int) -> None:
    """Serve GET /metrics in a background thread."""
    start_http_server(port, addr=address)
    log.info("metrics on http://%s:%d/metrics", address, port)
