"""The only layer that talks to the API server (and the only importer of the `kubernetes` package).

- `Kube`: get / list / create / get-or-create (409 as success) / merge patch / status patch that skips
  no-op writes / replace with resourceVersion / delete, on plain dicts.
- `errors`: ApiException and transport failures mapped to domain errors.
- `EventRecorder`: Events for lifecycle steps.
- `resources`: the kinds and their URLs.
"""

from kubeloop.k8s.client import Kube, load_configuration, retry_on_conflict, selector_of
from kubeloop.k8s.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    TransientError,
)
from kubeloop.k8s.events import EventRecorder
from kubeloop.k8s.resources import (
    CONFIG_MAP,
    DEPLOYMENT,
    DRIFT_MONITOR,
    EVENT,
    JOB,
    MODEL_VERSION,
    POD,
    SERVICE,
    TRAINING_RUN,
    Resource,
)

__all__ = [
    "CONFIG_MAP",
    "DEPLOYMENT",
    "DRIFT_MONITOR",
    "EVENT",
    "JOB",
    "MODEL_VERSION",
    "POD",
    "SERVICE",
    "TRAINING_RUN",
    "AlreadyExists",
    "Conflict",
    "EventRecorder",
    "Forbidden",
    "Gone",
    "Invalid",
    "Kube",
    "KubeError",
    "NotFound",
    "Resource",
    "TransientError",
    "load_configuration",
    "retry_on_conflict",
    "selector_of",
]
