"""The model registry: ModelVersions are the records, one ConfigMap per namespace is their index.

- `index` (pure): the projection of a namespace's ModelVersions into the index ConfigMap's data.
- `stages` (pure): the stage rules (one Production per model, history records, who changed a stage).
- `store`: reads and writes the index ConfigMap with resourceVersion optimistic concurrency.
- `versions`: finds a run's ModelVersion and registers new ones with race-free version numbers.
- `promotion`: applies stage changes; `promote()` is what a completed rollout calls.
"""

from kubeloop.registry.promotion import apply_desired_stage, promote

__all__ = ["apply_desired_stage", "promote"]
