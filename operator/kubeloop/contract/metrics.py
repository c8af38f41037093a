"""``metrics.json``: the candidate's held-out metrics, the champion's on the same split, and the reference
distribution of the candidate's predictions (what canary analysis compares live predictions with).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from kubeloop.contract.base import ContractModel
from kubeloop.contract.signature import TaskKind

CLASSIFICATION_METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS: tuple[str, ...] = ("rmse", "mae", "r2")
# Errors and losses: smaller is better. Every other metric here is a score where larger is better.
LOWER_IS_BETTER: frozenset[str] = frozenset({"log_loss", "rmse", "mae"})


def higher_is_better(metric: str) -> bool:
    """The direction of a metric computed by the trainer."""
    return metric not in LOWER_IS_BETTER


def improvement(metric: str, candidate: float, champion: float) -> float:
    """How much the candidate beats the champion on ``metric``, in the metric's units; negative = worse."""
    return candidate - champion if higher_is_better(metric) else champion - candidate


class SplitInfo(ContractModel):
    """How the held-out split was drawn, so it can be drawn again."""

    test_size: float = Field(description="Share of rows held out.")
    seed: int = Field(description="Seed of the split.")
    stratified: bool = Field(description="Whether the split kept class proportions.")
    train_rows: int = Field(ge=0, description="Rows used to fit.")
    test_rows: int = Field(ge=0, description="Rows held out for the metrics.")


class ClassPredictions(ContractModel):
    """Predicted class counts on the held-out split."""

    kind: Literal["classes"] = "classes"
    classes: list[str] = Field(description="Class labels as strings, in the model's order.")
    counts: list[int] = Field(description="How often each class was predicted.")


class ValuePredictions(ContractModel):
    """Predicted values on the held-out split, binned like a numeric drift reference."""

    kind: Literal["values"] = "values"
    edges: list[float] = Field(description="Interior bin edges (right-closed bins, outer bins open).")
    counts: list[int] = Field(description="Predictions per bin, len(edges) + 1.")


PredictionReference = Annotated[ClassPredictions | ValuePredictions, Field(discriminator="kind")]


class MetricsReport(ContractModel):
    """The content of ``metrics.json``."""

    task: TaskKind
    candidate: dict[str, float] = Field(description="Metrics of the trained model on the held-out split.")
    champion: dict[str, float] | None = Field(
        default=None, description="Metrics of the champion on the same split; unset without a champion."
    )
    champion_version: str | None = Field(default=None, description="Version label of the champion, if given.")
    champion_error: str | None = Field(
        default=None, description="Why the champion could not be evaluated, if it could not."
    )
    split: SplitInfo
    predictions: PredictionReference = Field(
        description="Reference distribution of the candidate's predictions on the held-out split."
    )
