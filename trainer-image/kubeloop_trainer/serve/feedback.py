"""Joining ground-truth labels to earlier predictions by request id, in bounded memory.

The server remembers the predictions of the most recent requests (at most ``max_requests`` requests and
``max_rows`` rows; the oldest are forgotten first). Feedback for a request joins its labels row by row
with what was predicted, updates the running accuracy (classification) or error (regression), and
forgets the request, so a label is counted once.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from kubeloop.contract import FeedbackStats, TaskKind

from kubeloop_trainer.serve.codec import BadRequest


def _same_label(label: object, predicted: object) -> bool:
    """Labels arrive as JSON: 1, 1.0 and "1" must all match a predicted class 1."""
    if isinstance(label, bool) or isinstance(predicted, bool | np.bool_):
        return str(label).lower() == str(predicted).lower()
    try:
        return float(label) == float(predicted)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(label) == str(predicted)


class FeedbackJoiner:
    def __init__(self, task: TaskKind, max_requests: int = 10_000, max_rows: int = 100_000) -> None:
        self.task = task
        self.max_requests = max_requests
        self.max_rows = max_rows
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._rows = 0
        self.received = 0
        self.joined = 0
        self.unmatched = 0
        self.correct = 0
        self.abs_error_sum = 0.0
        self.squared_error_sum = 0.0

    def remember(self, request_id: str, predictions: np.ndarray) -> None:
        """Hot path: keep this request's predictions, forgetting the oldest beyond the bounds."""
        old = self._recent.pop(request_id, None)
        if old is not None:
            self._rows -= len(old)
        self._recent[request_id] = predictions
        self._rows += len(predictions)
        while len(self._recent) > self.max_requests or (self._rows > self.max_rows and len(self._recent) > 1):
            _, dropped = self._recent.popitem(last=False)
            self._rows -= len(dropped)

    def join(self, request_id: str, labels: Sequence[object]) -> dict[str, int]:
        """Join labels to the remembered request; raises BadRequest (404 when the id is unknown)."""
        self.received += len(labels)
        predicted = self._recent.get(request_id)
        if predicted is None:
            self.unmatched += len(labels)
            raise BadRequest(
                f"no remembered prediction for request id {request_id!r} (unknown or forgotten)", 404
            )
        if len(predicted) != len(labels):
            self.unmatched += len(labels)
            raise BadRequest(f"request {request_id!r} had {len(predicted)} rows, got {len(labels)} labels")
        if self.task == "regression":
            try:
                truth = np.asarray(labels, dtype=np.float64)
            except (TypeError, ValueError):
                self.unmatched += len(labels)
                raise BadRequest("regression labels must be numbers") from None
            errors = truth - np.asarray(predicted, dtype=np.float64)
            self.abs_error_sum += float(np.abs(errors).sum())
            self.squared_error_sum += float((errors**2).sum())
            correct = 0
        else:
            correct = sum(_same_label(t, p) for t, p in zip(labels, predicted.tolist(), strict=True))
            self.correct += correct
        del self._recent[request_id]
        self._rows -= len(predicted)
        self.joined += len(labels)
        return (
            {"joined": len(labels), "correct": correct}
            if self.task == "classification"
            else {"joined": len(labels)}
        )

    def stats(self) -> FeedbackStats:
        n = self.joined
        if self.task == "classification":
            return FeedbackStats(
                received=self.received,
                joined=n,
                unmatched=self.unmatched,
                correct=self.correct,
                accuracy=self.correct / n if n else None,
            )
        return FeedbackStats(
            received=self.received,
            joined=n,
            unmatched=self.unmatched,
            abs_error_sum=self.abs_error_sum,
            squared_error_sum=self.squared_error_sum,
            mae=self.abs_error_sum / n if n else None,
            rmse=math.sqrt(self.squared_error_sum / n) if n else None,
        )
