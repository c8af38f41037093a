"""The model signature (``signature.json``): what the model takes and what it returns.

The server builds its input decoding, its V2 metadata and its live drift counting from it, so it is the
contract between the training data's columns and the inference requests.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from kubeloop.api import ColumnType
from kubeloop.contract.base import ContractModel

TaskKind = Literal["classification", "regression"]
FeatureKind = Literal["numeric", "categorical"]

# A bool column is fed to the model as 0/1 and profiled like any other number.
_NUMERIC_TYPES = frozenset({"int", "float", "bool"})


class Feature(ContractModel):
    """One input column of the model, in model order."""

    name: str = Field(description="Column name, as in the training data and in inference requests.")
    type: ColumnType = Field(description="Column type: int, float, bool (numeric) or string (categorical).")

    @property
    def kind(self) -> FeatureKind:
        return "numeric" if self.type in _NUMERIC_TYPES else "categorical"


ClassLabel = bool | int | float | str


class ModelSignature(ContractModel):
    """Inputs, task and outputs of a trained model."""

    task: TaskKind = Field(description="classification or regression (from the estimator's kind).")
    target: str = Field(description="The column the model predicts.")
    target_type: ColumnType = Field(description="Type of the target column in the training data.")
    features: list[Feature] = Field(description="Input columns in the order the model expects them.")
    classes: list[ClassLabel] | None = Field(
        default=None, description="Class labels in the model's order (classification only)."
    )
    estimator: str = Field(description="Import path of the fitted estimator class.")
    params: dict[str, Any] = Field(default_factory=dict, description="Constructor parameters used.")
    probabilities: bool = Field(default=False, description="Whether the model offers predict_proba.")

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric_features(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "numeric"]

    @property
    def categorical_features(self) -> list[str]:
        return [f.name for f in self.features if f.kind == "categorical"]
