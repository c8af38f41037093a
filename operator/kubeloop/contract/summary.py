"""The trainer's termination message: a compact JSON summary the operator reads from the pod status.

Kubernetes keeps at most 4096 bytes of a termination message, so :func:`render_termination_message`
always fits the limit: it drops the last violations (counting them) and then shortens long text, rather
than letting the kubelet cut the JSON in half.

Exit codes tell the operator, before it even reads the message, whether a retry can help: a bad task, bad
data or a refused estimator fails the same way every time, so the Job should not retry them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from kubeloop.contract.base import ContractModel
from kubeloop.contract.signature import TaskKind

TERMINATION_MESSAGE_LIMIT = 4096

FailureReason = Literal[
    "InvalidTask",
    "DataUnavailable",
    "DataValidationFailed",
    "EstimatorRejected",
    "TrainingFailed",
    "ArtifactWriteFailed",
    "Internal",
]

EXIT_CODES: dict[str, int] = {
    "Internal": 1,
    "InvalidTask": 2,
    "DataValidationFailed": 3,
    "EstimatorRejected": 4,
    "DataUnavailable": 5,
    "TrainingFailed": 6,
    "ArtifactWriteFailed": 7,
}
# Failures that repeat identically on a retry (a Job podFailurePolicy can FailJob on these exit codes).
PERMANENT_FAILURES: frozenset[str] = frozenset({"InvalidTask", "DataValidationFailed", "EstimatorRejected"})


def permanent_exit_codes() -> list[int]:
    return sorted(EXIT_CODES[r] for r in PERMANENT_FAILURES)


class Violation(ContractModel):
    """One failed check of the data gate."""

    check: str = Field(
        description="Check name: format, target, features, type, single_class, infinite, missing_values, "
        "group, split, min_rows, missing_column, range, null_fraction."
    )
    column: str | None = Field(default=None, description="The column, when the check is about one.")
    message: str = Field(description="What is wrong, with the numbers.")
    value: float | None = Field(default=None, description="Measured value (e.g. the null fraction).")
    bound: float | None = Field(default=None, description="The bound it broke.")


class TrainerSucceeded(ContractModel):
    """A finished training: where the artifact is and how it scored."""

    status: Literal["Succeeded"] = "Succeeded"
    artifact_uri: str
    digest: str = Field(description="Artifact digest, sha256:<hex>.")
    task: TaskKind
    metrics: dict[str, float]
    champion_metrics: dict[str, float] | None = None
    champion_error: str | None = None
    data_hash: str = Field(description="sha256:<hex> of the input data file.")
    data_rows: int
    train_rows: int
    test_rows: int


class TrainerFailed(ContractModel):
    """A failed training: why, and every data-gate violation."""

    status: Literal["Failed"] = "Failed"
    reason: FailureReason
    message: str
    violations: list[Violation] = Field(default_factory=list)
    violations_omitted: int = Field(default=0, description="Violations left out to fit the size limit.")
    data_hash: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.reason]


TerminationSummary = Annotated[TrainerSucceeded | TrainerFailed, Field(discriminator="status")]
_SUMMARY = TypeAdapter(TerminationSummary)


def parse_termination_message(text: str | bytes) -> TrainerSucceeded | TrainerFailed:
    """Parse what the trainer wrote; raises pydantic.ValidationError on anything else."""
    return _SUMMARY.validate_json(text)


def _dump(summary: TrainerSucceeded | TrainerFailed) -> str:
    return summary.model_dump_json(exclude_none=True)


def _shorten(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes (never inside a character), marked with "…"."""
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    return raw[: max(max_bytes - 3, 0)].decode(errors="ignore") + "…"


def render_termination_message(
    summary: TrainerSucceeded | TrainerFailed, limit: int = TERMINATION_MESSAGE_LIMIT
) -> str:
    """Compact JSON of ``summary`` in at most ``limit`` UTF-8 bytes."""
    text = _dump(summary)
    if len(text.encode()) <= limit:
        return text
    if isinstance(summary, TrainerFailed):
        kept = list(summary.violations)
        omitted = summary.violations_omitted
        while kept and len(text.encode()) > limit:
            kept.pop()
            omitted += 1
            summary = summary.model_copy(update={"violations": kept, "violations_omitted": omitted})
            text = _dump(summary)
        if len(text.encode()) > limit:
            # JSON escaping can make the message longer than its bytes, so shrink until it fits.
            message = summary.message
            budget = limit - len(_dump(summary.model_copy(update={"message": ""})).encode())
            while len(text.encode()) > limit and budget > 0:
                summary = summary.model_copy(update={"message": _shorten(message, budget)})
                text = _dump(summary)
                budget = budget * 3 // 4
    elif summary.champion_error:
        summary = summary.model_copy(update={"champion_error": _shorten(summary.champion_error, 300)})
        text = _dump(summary)
    # Last resort (absurdly long URIs): a valid, minimal failure beats a truncated, unparsable JSON.
    if len(text.encode()) > limit:
        text = _dump(TrainerFailed(reason="Internal", message="the training summary exceeded the size limit"))
    return text
