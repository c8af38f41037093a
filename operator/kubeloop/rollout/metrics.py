"""What one model server's ``GET /metrics`` says, as counters that can be stored, diffed and summed.

The server exports cumulative counters since it started, with ``model`` and ``version`` labels (see
``kubeloop_trainer.serve.prometheus``). A step's analysis needs only the traffic of that step, so the
operator keeps a baseline of every pod's counters when the step starts and diffs against it; the start
time tells a restarted server (counters back at zero) from one that kept counting.
"""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict, Field

START_TIME = "kubeloop_server_start_time_seconds"
REQUESTS = "kubeloop_inference_requests_total"
ERRORS = "kubeloop_inference_errors_total"
LATENCY = "kubeloop_inference_latency_seconds_bucket"
CLASS_PREDICTIONS = "kubeloop_predictions_total"
VALUE_PREDICTIONS = "kubeloop_prediction_value_bucket"
FEEDBACK = "kubeloop_feedback_rows_total"

# Error kinds the server counts: "internal" is its HTTP 500 (a model or server failure), "bad_request" a 4xx.
SERVER_ERROR_KIND = "internal"


class ServerCounters(BaseModel):
    """Cumulative counters of one server process. Buckets are per bucket (not cumulative)."""

    model_config = ConfigDict(frozen=True)

    version: str = Field(description="The server's version label.")
    started: float = Field(description="Server start, unix seconds; a new value means the counters reset.")
    requests: float = 0.0
    server_errors: float = 0.0
    client_errors: float = 0.0
    latency_bounds: list[float] = Field(
        default_factory=list, description="Upper bounds, seconds; +Inf implied."
    )
    latency: list[float] = Field(default_factory=list, description="Requests per bucket; last is above all.")
    prediction_kind: str = Field(default="class", description="class, or value (regression bins).")
    prediction_labels: list[str] = Field(
        default_factory=list, description="Class names, or bin upper bounds with '+Inf' last."
    )
    predictions: list[float] = Field(default_factory=list, description="Rows predicted per class or bin.")
    feedback_joined: float = 0.0
    feedback_correct: float | None = Field(default=None, description="None for regression.")


def _le(value: str) -> float:
    return math.inf if value in ("+Inf", "Inf") else float(value)


def _per_bucket(cumulative: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Cumulative (le, count) pairs into finite bounds and per-bucket counts (last: above the bounds)."""
    cumulative.sort()
    bounds = [le for le, _ in cumulative if math.isfinite(le)]
    counts, previous = [], 0.0
    for _, running in cumulative:
        counts.append(max(running - previous, 0.0))
        previous = running
    if not cumulative or math.isfinite(cumulative[-1][0]):
        counts.append(0.0)  # no +Inf bucket: nothing above the last bound
    return bounds, counts


def parse_server_metrics(text: str) -> ServerCounters | None:
    """The counters of a kubeloop model server, or None when it exports none yet (the model is loading).

    Raises ValueError if the text is not the Prometheus exposition format.
    """
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    start = next((s for s in samples if s.name == START_TIME), None)
    if start is None:
        return None
    requests = server_errors = client_errors = joined = 0.0
    correct: float | None = None
    latency: list[tuple[float, float]] = []
    classes: list[tuple[str, float]] = []
    values: list[tuple[float, float]] = []
    for s in samples:
        if s.name == REQUESTS:
            requests += s.value
        elif s.name == ERRORS:
            if s.labels.get("kind") == SERVER_ERROR_KIND:
                server_errors += s.value
            else:
                client_errors += s.value
        elif s.name == LATENCY:
            latency.append((_le(s.labels["le"]), s.value))
        elif s.name == CLASS_PREDICTIONS:
            classes.append((s.labels["class"], s.value))
        elif s.name == VALUE_PREDICTIONS:
            values.append((_le(s.labels["le"]), s.value))
        elif s.name == FEEDBACK:
            outcome = s.labels.get("outcome")
            if outcome == "joined":
                joined += s.value
            elif outcome == "correct":
                correct = (correct or 0.0) + s.value
    bounds, per_bucket = _per_bucket(latency)
    if values:
        edges, counts = _per_bucket(values)
        kind, labels = "value", [repr(e) for e in edges] + ["+Inf"]
    else:
        kind, labels, counts = "class", [c for c, _ in classes], [n for _, n in classes]
    return ServerCounters(
        version=start.labels.get("version", ""),
        started=start.value,
        requests=requests,
        server_errors=server_errors,
        client_errors=client_errors,
        latency_bounds=bounds,
        latency=per_bucket,
        prediction_kind=kind,
        prediction_labels=labels,
        predictions=counts,
        feedback_joined=joined,
        feedback_correct=correct,
    )
