"""status_patch nulls nested fields that became unset, so a merge patch really clears them."""

from __future__ import annotations

from kubeloop.api import ModelVersionStatus, RolloutStatus
from kubeloop.api.status import status_patch


def test_a_nested_field_that_became_unset_is_nulled():
    stored = ModelVersionStatus(
        rollout=RolloutStatus(step=1, weight=10, step_start_time="2026-01-01T00:00:00Z")
    )
    desired = ModelVersionStatus(rollout=RolloutStatus(step=2, weight=50))
    patch = status_patch(stored.model_dump(mode="json", by_alias=True, exclude_none=True), desired)
    assert patch["status"]["rollout"]["stepStartTime"] is None
    assert patch["status"]["rollout"]["step"] == 2
    assert status_patch(desired.model_dump(mode="json", by_alias=True, exclude_none=True), desired) is None
