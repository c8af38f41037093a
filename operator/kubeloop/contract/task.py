"""The trainer's task document: what the operator asks one training pod to do.

The operator renders it from the TrainingRun (the data and estimator shapes are the API's own) and hands
it over as a file (``KUBELOOP_TASK_FILE``, e.g. a mounted ConfigMap) or inline (``KUBELOOP_TASK``).
"""

from __future__ import annotations

from pydantic import Field

from kubeloop.api import DataSpec, EstimatorSpec
from kubeloop.contract.base import ContractModel

TASK_FILE_ENV = "KUBELOOP_TASK_FILE"
TASK_ENV = "KUBELOOP_TASK"
TERMINATION_LOG_ENV = "KUBELOOP_TERMINATION_LOG"
DEFAULT_TERMINATION_LOG = "/dev/termination-log"


class ChampionRef(ContractModel):
    """The current production version, to be evaluated on the candidate's held-out split."""

    artifact_uri: str = Field(min_length=1, description="Artifact directory of the champion.")
    version: str | None = Field(default=None, description="Its version label, for the report.")
    digest: str | None = Field(
        default=None, description="Expected artifact digest; the champion is refused if its manifest differs."
    )


class ProfileSettings(ContractModel):
    """How the reference drift profile is built."""

    n_bins: int = Field(default=10, ge=2, le=100, description="Quantile bins per numeric feature.")
    sample_size: int = Field(default=1000, ge=0, le=100_000, description="Sample per numeric feature.")
    max_categories: int = Field(default=100, ge=1, le=10_000, description="Categories kept per feature.")


class TrainerTask(ContractModel):
    """One training attempt."""

    model: str = Field(min_length=1, description="Registry model name.")
    training_run: str | None = Field(default=None, description="Name of the TrainingRun, for lineage.")
    namespace: str | None = Field(default=None, description="Its namespace, for lineage.")
    trigger: str | None = Field(default=None, description="Why this run exists (drift, schedule...).")
    image: str | None = Field(default=None, description="Trainer image, for lineage.")
    data: DataSpec
    estimator: EstimatorSpec
    test_size: float = Field(default=0.25, gt=0.0, lt=1.0, description="Share of rows held out.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Seed of the split and the estimator.")
    artifact_uri: str = Field(
        min_length=1, description="Directory to write the artifact to (file:// or s3://)."
    )
    champion: ChampionRef | None = Field(default=None, description="Champion to compare with, if any.")
    profile: ProfileSettings = Field(default_factory=ProfileSettings)
