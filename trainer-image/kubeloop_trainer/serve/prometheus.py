"""``GET /metrics``: the live monitor and the feedback joiner in the Prometheus text format.

The numbers live in plain numpy counters on the hot path; this module only turns them into metric
families when Prometheus scrapes, through a one-off collector, so serving pays nothing for metrics
between scrapes. Every series carries ``model`` and ``version`` labels, so a canary analysis can compare
the stable and the canary Deployment behind one Service.
"""

from __future__ import annotations

from collections.abc import Iterator

from kubeloop.contract import ClassPredictions
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from kubeloop_trainer.serve.feedback import FeedbackJoiner
from kubeloop_trainer.serve.monitor import LiveMonitor

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _cumulative(bounds: list[float], counts: list[int]) -> list[tuple[str, float]]:
    buckets = []
    running = 0
    for bound, count in zip(bounds, counts, strict=False):
        running += count
        buckets.append((repr(float(bound)), running))
    running += sum(counts[len(bounds) :])
    buckets.append(("+Inf", running))
    return buckets


class _Snapshot(Collector):
    def __init__(self, monitor: LiveMonitor, feedback: FeedbackJoiner) -> None:
        self.monitor = monitor
        self.feedback = feedback

    def collect(self) -> Iterator[Metric]:
        m = self.monitor
        m.flush()
        base = ["model", "version"]
        ids = [m.model, m.version]

        info = GaugeMetricFamily(
            "kubeloop_model_info", "The model this server serves.", labels=[*base, "digest"]
        )
        info.add_metric([*ids, m.digest], 1)
        yield info
        start = GaugeMetricFamily(
            "kubeloop_server_start_time_seconds", "Server start, unix time.", labels=base
        )
        start.add_metric(ids, m.started_at.timestamp())
        yield start

        requests = CounterMetricFamily(
            "kubeloop_inference_requests", "Inference requests answered.", labels=base
        )
        requests.add_metric(ids, m.requests)
        yield requests
        errors = CounterMetricFamily(
            "kubeloop_inference_errors", "Failed inference requests by kind.", labels=[*base, "kind"]
        )
        for kind, n in sorted(m.errors.items()):
            errors.add_metric([*ids, kind], n)
        yield errors
        rows = CounterMetricFamily("kubeloop_inference_rows", "Rows predicted.", labels=base)
        rows.add_metric(ids, m.rows)
        yield rows

        latency = HistogramMetricFamily(
            "kubeloop_inference_latency_seconds", "Time from request to response, in the server.", labels=base
        )
        latency.add_metric(
            ids, _cumulative(list(m.latency_buckets), m.latency_counts.tolist()), m.latency_sum
        )
        yield latency

        live = m.live_predictions()
        if isinstance(live, ClassPredictions):
            predicted = CounterMetricFamily(
                "kubeloop_predictions", "Predictions per class.", labels=[*base, "class"]
            )
            for cls, n in zip(live.classes, live.counts, strict=True):
                predicted.add_metric([*ids, cls], n)
            yield predicted
        else:
            values = HistogramMetricFamily(
                "kubeloop_prediction_value",
                "Predicted values on the bins of the training target's quantiles.",
                labels=base,
            )
            values.add_metric(ids, _cumulative(live.edges, live.counts), m.prediction_sum)
            yield values

        bins = CounterMetricFamily(
            "kubeloop_feature_bin",
            "Live values per numeric feature on its reference bins (bin index; upper edge 'le').",
            labels=[*base, "feature", "bin", "le"],
        )
        for _, name, ref in m.numeric:
            uppers = [repr(e) for e in ref.edges] + ["+Inf"]
            for b, n in enumerate(m.numeric_counts[name].tolist()):
                bins.add_metric([*ids, name, str(b), uppers[b]], n)
        yield bins
        categories = CounterMetricFamily(
            "kubeloop_feature_category",
            "Live values per categorical feature on its reference categories ('__unseen__' for others).",
            labels=[*base, "feature", "category"],
        )
        for _, name, ref in m.categorical:
            labels = [*ref.categories, "__unseen__"]
            for label, n in zip(labels, m.categorical_counts[name].tolist(), strict=True):
                categories.add_metric([*ids, name, label], n)
        yield categories
        missing = CounterMetricFamily(
            "kubeloop_feature_missing", "Live missing values per feature.", labels=[*base, "feature"]
        )
        for name, n in m.missing.items():
            missing.add_metric([*ids, name], n)
        yield missing

        stats = self.feedback.stats()
        fb = CounterMetricFamily(
            "kubeloop_feedback_rows", "Feedback rows by outcome.", labels=[*base, "outcome"]
        )
        fb.add_metric([*ids, "joined"], stats.joined)
        fb.add_metric([*ids, "unmatched"], stats.unmatched)
        if stats.correct is not None:
            fb.add_metric([*ids, "correct"], stats.correct)
        yield fb
        if stats.abs_error_sum is not None:
            abs_err = CounterMetricFamily(
                "kubeloop_feedback_abs_error", "Sum of absolute errors of joined rows.", labels=base
            )
            abs_err.add_metric(ids, stats.abs_error_sum)
            yield abs_err
            sq_err = CounterMetricFamily(
                "kubeloop_feedback_squared_error", "Sum of squared errors of joined rows.", labels=base
            )
            sq_err.add_metric(ids, stats.squared_error_sum or 0.0)
            yield sq_err


def render(monitor: LiveMonitor, feedback: FeedbackJoiner) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(monitor, feedback))
    return generate_latest(registry)
