"""What the model server reports about live traffic, and the feedback it accepts.

Counts are cumulative since the server started. ``server_id`` changes on every start, so a consumer that
keeps the previous snapshot can tell a counter reset (a restarted pod) from traffic and diff windows
safely: ``window = now - before`` only when both have the same ``server_id``.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from kubeloop.contract.base import ContractModel
from kubeloop.contract.metrics import PredictionReference
from kubeloop.contract.signature import ClassLabel


class FeedbackStats(ContractModel):
    """Ground-truth labels joined to earlier predictions, with the running score."""

    received: int = Field(default=0, ge=0, description="Feedback rows received.")
    joined: int = Field(default=0, ge=0, description="Rows matched to a remembered prediction.")
    unmatched: int = Field(
        default=0, ge=0, description="Rows not joined: unknown or forgotten request id, or wrong length."
    )
    correct: int | None = Field(default=None, description="Joined rows predicted right (classification).")
    accuracy: float | None = Field(default=None, description="correct / joined (classification).")
    abs_error_sum: float | None = Field(default=None, description="Sum of |truth - prediction| (regression).")
    squared_error_sum: float | None = Field(default=None, description="Sum of squared errors (regression).")
    mae: float | None = Field(default=None, description="Mean absolute error of joined rows (regression).")
    rmse: float | None = Field(default=None, description="Root mean squared error (regression).")


class MonitoringSnapshot(ContractModel):
    """The body of ``GET /v2/models/{name}/monitoring``."""

    server_id: str = Field(description="Random id of this server process; changes when the server restarts.")
    started_at: datetime = Field(description="When this server process started (UTC).")
    model: str
    version: str
    digest: str = Field(description="Digest of the artifact being served.")
    requests: int = Field(ge=0, description="Inference requests answered, successful or not.")
    errors: int = Field(ge=0, description="Inference requests that failed.")
    rows: int = Field(ge=0, description="Rows predicted.")
    numeric: dict[str, list[int]] = Field(
        description="Live counts per numeric feature on the reference bins of drift_profile.json."
    )
    categorical: dict[str, list[int]] = Field(
        description="Live counts per categorical feature on the reference categories, last bucket unseen."
    )
    missing: dict[str, int] = Field(description="Live NaN/null values per feature (not in the counts).")
    sample: dict[str, list[float]] = Field(
        description="Uniform reservoir sample of live values per numeric feature (finite values only)."
    )
    sample_seen: int = Field(ge=0, description="Rows the reservoir has been offered.")
    sample_capacity: int = Field(ge=0, description="Reservoir size per feature.")
    predictions: PredictionReference = Field(
        description="Live prediction counts on the same classes or bins as metrics.json's reference."
    )
    feedback: FeedbackStats


class FeedbackRequest(ContractModel):
    """Body of ``POST /v2/models/{name}/feedback``: the true labels of one earlier inference request."""

    request_id: str = Field(min_length=1, description="The `id` of the inference response being labelled.")
    labels: list[ClassLabel] = Field(description="True label (or value) per row, in the request's row order.")
