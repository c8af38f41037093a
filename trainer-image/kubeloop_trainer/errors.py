"""The one exception the train entrypoint turns into a failure summary and an exit code."""

from __future__ import annotations

from collections.abc import Sequence

from kubeloop.contract import FailureReason, Violation


class TrainerError(Exception):
    """A training failure the user can act on: a reason from the contract, a message, maybe violations."""

    def __init__(
        self,
        reason: FailureReason,
        message: str,
        violations: Sequence[Violation] = (),
        data_hash: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason: FailureReason = reason
        self.message = message
        self.violations = list(violations)
        self.data_hash = data_hash
