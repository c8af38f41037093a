"""Server settings: command-line flags first, then the environment, then defaults."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass

from kubeloop.contract import (
    BIND_ADDRESS_ENV,
    DEFAULT_PORT,
    MODEL_DIGEST_ENV,
    MODEL_NAME_ENV,
    MODEL_URI_ENV,
    MODEL_VERSION_ENV,
    PORT_ENV,
)


@dataclass(frozen=True)
class ServeSettings:
    model_uri: str
    model_name: str | None  # None: the name recorded in the artifact's lineage
    model_version: str
    model_digest: str | None
    host: str
    port: int
    reservoir_size: int
    feedback_max_requests: int
    feedback_max_rows: int
    max_body_bytes: int


def _int(env: Mapping[str, str], key: str, default: int) -> int:
    raw = env.get(key)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{key} must be an integer, got {raw!r}") from None


def bind_address(env: Mapping[str, str]) -> str:
    """``KUBELOOP_BIND_ADDRESS``, else all interfaces of the pod's own network namespace.

    All interfaces, not the pod IP: `kubectl port-forward` dials localhost inside the pod.
    """
    return env.get(BIND_ADDRESS_ENV) or "0.0.0.0"


def resolve_settings(args: argparse.Namespace, env: Mapping[str, str]) -> ServeSettings:
    uri = args.model_uri or env.get(MODEL_URI_ENV)
    if not uri:
        raise SystemExit(f"no model: pass --model-uri or set {MODEL_URI_ENV}")
    return ServeSettings(
        model_uri=uri,
        model_name=args.model_name or env.get(MODEL_NAME_ENV) or None,
        model_version=args.model_version or env.get(MODEL_VERSION_ENV) or "1",
        model_digest=args.model_digest or env.get(MODEL_DIGEST_ENV) or None,
        host=args.host or bind_address(env),
        port=args.port if args.port is not None else _int(env, PORT_ENV, DEFAULT_PORT),
        reservoir_size=_int(env, "KUBELOOP_RESERVOIR_SIZE", 1000),
        feedback_max_requests=_int(env, "KUBELOOP_FEEDBACK_MAX_REQUESTS", 10_000),
        feedback_max_rows=_int(env, "KUBELOOP_FEEDBACK_MAX_ROWS", 100_000),
        max_body_bytes=_int(env, "KUBELOOP_MAX_REQUEST_BYTES", 16 * 1024 * 1024),
    )
