"""The ModelVersion a successful TrainingRun registers. Pure.

Not owned by the run: a registry entry outlives the run that produced it, and the lineage in its spec
(run, data URI and hash, image, estimator, trigger) says where it came from. Labels carry the run's uid,
which is how a restarted operator finds the version it already registered for a run instead of
registering a second one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubeloop.api import (
    API_VERSION,
    ArtifactRef,
    Lineage,
    ModelVersionSpec,
    ServingSpec,
    TrainingRunSpec,
    TrainingRunStatus,
    Trigger,
)
from kubeloop.builders.job import read_trigger
from kubeloop.builders.labels import (
    MANAGED_BY,
    MANAGED_BY_VALUE,
    MODEL_LABEL,
    RUN_LABEL,
    RUN_UID_LABEL,
    VERSION_LABEL,
    label_value,
)


def version_name(model: str, version: int) -> str:
    """`<model>-v<N>`: the name is the lock; two runs cannot both create `iris-v3`."""
    return f"{model}-v{version}"


def requested_stage(spec: TrainingRunSpec) -> str:
    return "Production" if spec.promotion.policy == "Auto" else "Staging"


def model_version(
    run: Mapping[str, Any], spec: TrainingRunSpec, status: TrainingRunStatus, version: int
) -> dict[str, Any]:
    """The ModelVersion for `run`, whose status already holds the trainer's artifact and metrics."""
    if not status.artifact_uri or not status.artifact_digest:
        raise ValueError("the run's status has no artifact yet")
    meta = run["metadata"]
    trigger = read_trigger(meta.get("annotations")) or Trigger()
    mv_spec = ModelVersionSpec(
        model=spec.model,
        version=version,
        artifact=ArtifactRef(uri=status.artifact_uri, digest=status.artifact_digest),
        lineage=Lineage(
            training_run=meta["name"],
            data_uri=spec.data.uri,
            data_hash=status.data_hash,
            image=status.image,
            estimator=spec.training.estimator,
            trigger=trigger,
        ),
        metrics=status.candidate_metrics,
        stage=requested_stage(spec),
        serving=ServingSpec(image=status.image, canary=spec.promotion.canary),
    )
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {
            "name": version_name(spec.model, version),
            "namespace": meta["namespace"],
            "labels": {
                MANAGED_BY: MANAGED_BY_VALUE,
                MODEL_LABEL: spec.model,
                VERSION_LABEL: str(version),
                RUN_LABEL: label_value(meta["name"]),
                RUN_UID_LABEL: meta["uid"],
            },
        },
        "spec": mv_spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
