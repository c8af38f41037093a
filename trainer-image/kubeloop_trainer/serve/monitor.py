"""Live statistics of the traffic: per-feature counts on the reference bins, a reservoir sample, the
distribution of predictions, request counts and latencies.

The hot path only appends the request's matrix and predictions to a pending list. The counting itself
(``count_numeric`` / ``count_categorical`` from the drift profile, the reservoir, the prediction bins)
runs over a whole batch of requests at once, when enough rows are pending or when someone reads the
numbers, so its cost per request stays far below a microsecond per feature. Everything runs on the
event loop thread, so there is no locking.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
from kubeloop.contract import (
    ClassPredictions,
    FeedbackStats,
    ModelSignature,
    MonitoringSnapshot,
    PredictionReference,
    ValuePredictions,
)
from kubeloop.drift.profile import DriftProfile, NumericReference, count_categorical, count_numeric

# Latency buckets (seconds): fine below 10 ms, where a healthy server lives, coarse above.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class Reservoir:
    """Algorithm R over rows: a uniform sample of at most ``capacity`` rows of everything offered."""

    def __init__(self, capacity: int, n_columns: int, seed: int) -> None:
        self.capacity = capacity
        self.rows = np.full((capacity, n_columns), np.nan)
        self.seen = 0
        self._rng = np.random.default_rng(seed)

    def offer(self, batch: np.ndarray) -> None:
        m = batch.shape[0]
        if m == 0 or self.capacity == 0:
            self.seen += m
            return
        position = self.seen + np.arange(m)
        fill = position < self.capacity
        self.rows[position[fill]] = batch[fill]
        late = ~fill
        if late.any():
            # Row t (0-based) replaces a uniform slot j in [0, t] when j < capacity. Assignment order matches
            # the sequential algorithm: a later row that draws the same slot overwrites an earlier one.
            j = self._rng.integers(0, position[late] + 1)
            keep = j < self.capacity
            self.rows[j[keep]] = batch[late][keep]
        self.seen += m

    def column(self, j: int) -> list[float]:
        filled = self.rows[: min(self.seen, self.capacity), j]
        return filled[np.isfinite(filled)].tolist()


class LiveMonitor:
    def __init__(
        self,
        *,
        model: str,
        version: str,
        digest: str,
        signature: ModelSignature,
        profile: DriftProfile,
        predictions: PredictionReference,
        reservoir_size: int = 1000,
        flush_rows: int = 2048,
        seed: int | None = None,
    ) -> None:
        self.server_id = uuid.uuid4().hex
        self.started_at = datetime.now(UTC)
        self.model, self.version, self.digest = model, version, digest
        self.flush_rows = flush_rows
        names = signature.feature_names
        self.feature_names = names
        # Features without a reference (not in the profile) are still counted as missing, never binned.
        self.numeric = [(i, n, profile.numeric[n]) for i, n in enumerate(names) if n in profile.numeric]
        self.categorical = [
            (i, n, profile.categorical[n]) for i, n in enumerate(names) if n in profile.categorical
        ]
        self.numeric_counts = {n: np.zeros(len(ref.counts), np.int64) for _, n, ref in self.numeric}
        self.categorical_counts = {n: np.zeros(len(ref.counts), np.int64) for _, n, ref in self.categorical}
        self.missing = {n: 0 for n in names}
        self.reservoir = Reservoir(reservoir_size, len(self.numeric), seed if seed is not None else 0)
        self.prediction_reference = predictions
        if isinstance(predictions, ClassPredictions):
            self.classes = np.asarray(signature.classes or [])
            self._class_order = np.argsort(self.classes, kind="stable")
            self.prediction_counts = np.zeros(len(predictions.classes), np.int64)
        else:
            self._value_ref = NumericReference(
                edges=predictions.edges, counts=[0] * (len(predictions.edges) + 1)
            )
            self.prediction_counts = np.zeros(len(predictions.edges) + 1, np.int64)
        self.prediction_sum = 0.0  # regression only: the histogram's _sum
        self.requests = 0
        self.rows = 0
        self.errors: dict[str, int] = {"bad_request": 0, "internal": 0}
        self.latency_buckets = np.asarray(LATENCY_BUCKETS)
        self.latency_counts = np.zeros(len(LATENCY_BUCKETS) + 1, np.int64)  # last: above the largest bucket
        self.latency_sum = 0.0
        self._pending_x: list[np.ndarray] = []
        self._pending_pred: list[np.ndarray] = []
        self._pending_latency: list[float] = []
        self._pending_rows = 0

    # -- hot path -------------------------------------------------------------------------------------
    def record(self, X: np.ndarray, predictions: np.ndarray, latency: float) -> None:
        self.requests += 1
        self._pending_x.append(X)
        self._pending_pred.append(predictions)
        self._pending_latency.append(latency)
        self._pending_rows += X.shape[0]
        if self._pending_rows >= self.flush_rows or len(self._pending_latency) >= self.flush_rows:
            self.flush()

    def record_error(self, kind: str, latency: float) -> None:
        self.requests += 1
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self._pending_latency.append(latency)

    # -- batch work -----------------------------------------------------------------------------------
    def flush(self) -> None:
        if self._pending_latency:
            lat = np.asarray(self._pending_latency)
            self.latency_sum += float(lat.sum())
            self.latency_counts += np.bincount(
                np.searchsorted(self.latency_buckets, lat, side="left"), minlength=len(self.latency_counts)
            )
            self._pending_latency = []
        if not self._pending_x:
            return
        X = self._pending_x[0] if len(self._pending_x) == 1 else np.concatenate(self._pending_x)
        pred = self._pending_pred[0] if len(self._pending_pred) == 1 else np.concatenate(self._pending_pred)
        self._pending_x, self._pending_pred, self._pending_rows = [], [], 0
        self.rows += X.shape[0]
        numeric_block = np.empty((X.shape[0], len(self.numeric)))
        for k, (j, name, ref) in enumerate(self.numeric):
            column = X[:, j].astype(np.float64, copy=False)
            numeric_block[:, k] = column
            self.numeric_counts[name] += count_numeric(ref, column)
            self.missing[name] += int(np.isnan(column).sum())
        for j, name, ref in self.categorical:
            column = X[:, j]
            self.categorical_counts[name] += count_categorical(ref, column)
            self.missing[name] += sum(1 for v in column if v is None)
        self.reservoir.offer(numeric_block)
        self._count_predictions(pred)

    def _count_predictions(self, pred: np.ndarray) -> None:
        if isinstance(self.prediction_reference, ClassPredictions):
            # classes_ of a fitted sklearn classifier are sorted, so searchsorted finds each class index.
            sorted_classes = self.classes[self._class_order]
            pos = np.clip(np.searchsorted(sorted_classes, pred), 0, len(sorted_classes) - 1)
            self.prediction_counts += np.bincount(
                self._class_order[pos], minlength=len(self.prediction_counts)
            )
        else:
            values = np.asarray(pred, dtype=np.float64)
            self.prediction_counts += count_numeric(self._value_ref, values)
            self.prediction_sum += float(np.nansum(values))

    # -- reading ----------------------------------------------------------------------------------------
    def live_predictions(self) -> PredictionReference:
        ref = self.prediction_reference
        if isinstance(ref, ClassPredictions):
            return ClassPredictions(classes=ref.classes, counts=self.prediction_counts.tolist())
        return ValuePredictions(edges=ref.edges, counts=self.prediction_counts.tolist())

    def snapshot(self, feedback: FeedbackStats) -> MonitoringSnapshot:
        self.flush()
        return MonitoringSnapshot(
            server_id=self.server_id,
            started_at=self.started_at,
            model=self.model,
            version=self.version,
            digest=self.digest,
            requests=self.requests,
            errors=sum(self.errors.values()),
            rows=self.rows,
            numeric={n: c.tolist() for n, c in self.numeric_counts.items()},
            categorical={n: c.tolist() for n, c in self.categorical_counts.items()},
            missing=dict(self.missing),
            sample={name: self.reservoir.column(k) for k, (_, name, _) in enumerate(self.numeric)},
            sample_seen=self.reservoir.seen,
            sample_capacity=self.reservoir.capacity,
            predictions=self.live_predictions(),
            feedback=feedback,
        )
