"""What a CRD needs beyond the schema: names, scope, printer columns and root-level rules.

Each kind module declares one `KindInfo` next to its models, as kubebuilder keeps its markers on the type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from kubeloop.api.cel import CelRule
from kubeloop.api.common import GROUP

ColumnType = Literal["string", "integer", "number", "boolean", "date"]


@dataclass(frozen=True)
class PrinterColumn:
    """One `additionalPrinterColumns` entry of `kubectl get`."""

    name: str
    json_path: str
    type: ColumnType = "string"
    description: str = ""
    priority: int = 0

    def to_crd(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            out["description"] = self.description
        if self.priority:
            out["priority"] = self.priority
        return out


def condition_column(condition: str, part: str = "status", *, name: str | None = None, priority: int = 0):
    """A column that selects a condition by its type, never by its position in the list."""
    return PrinterColumn(
        name=name or condition,
        json_path=f'.status.conditions[?(@.type=="{condition}")].{part}',
        description=f"The {part} of the {condition} condition.",
        priority=priority,
    )


AGE_COLUMN = PrinterColumn("Age", ".metadata.creationTimestamp", "date", "Time since the object was created.")


@dataclass(frozen=True)
class KindInfo:
    """Everything about one kind that the CRD states besides the spec and status schemas."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: type[BaseModel]
    status: type[BaseModel]
    description: str
    columns: tuple[PrinterColumn, ...]
    conditions: tuple[str, ...] = ()
    root_rules: tuple[CelRule, ...] = field(default=())
    # Children are named after their parent (a Job per TrainingRun, Deployments per ModelVersion) plus a
    # suffix; 52 characters leaves room for it within the 63 of a label value.
    max_name_length: int = 52
    categories: tuple[str, ...] = ("kubeloop",)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"
