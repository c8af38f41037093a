"""How to run and reach a model server: its environment variables, port and paths.

The operator builds serving Deployments (env, probes, Prometheus scrape config) and the DriftMonitor reads
the monitoring endpoint; both take the names from here, the server reads the same constants.
"""

from __future__ import annotations

MODEL_URI_ENV = "KUBELOOP_MODEL_URI"
MODEL_NAME_ENV = "KUBELOOP_MODEL_NAME"
MODEL_VERSION_ENV = "KUBELOOP_MODEL_VERSION"
MODEL_DIGEST_ENV = "KUBELOOP_MODEL_DIGEST"
BIND_ADDRESS_ENV = "KUBELOOP_BIND_ADDRESS"
PORT_ENV = "KUBELOOP_PORT"
DEFAULT_PORT = 8080

LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"
METRICS_PATH = "/metrics"


def model_path(name: str, version: str | None = None) -> str:
    """``/v2/models/{name}`` or ``/v2/models/{name}/versions/{version}``."""
    return f"/v2/models/{name}" if version is None else f"/v2/models/{name}/versions/{version}"


def infer_path(name: str, version: str | None = None) -> str:
    return f"{model_path(name, version)}/infer"


def monitoring_path(name: str, version: str | None = None) -> str:
    return f"{model_path(name, version)}/monitoring"


def feedback_path(name: str, version: str | None = None) -> str:
    return f"{model_path(name, version)}/feedback"
