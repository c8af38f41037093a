"""The object-store environment of the operator's pods (trainer and server), built once for both."""

from __future__ import annotations

from typing import Any

S3_SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")


def s3_env(secret: str | None, endpoint_url: str | None) -> list[dict[str, Any]]:
    """AWS_* variables as Secret references (never values), plus an explicit endpoint that wins over the
    Secret's. Every reference is optional: a pod with a cloud identity needs no Secret, and a missing key is
    not an error."""
    env: list[dict[str, Any]] = []
    if secret:
        for key in S3_SECRET_KEYS:
            if key == "AWS_ENDPOINT_URL" and endpoint_url:
                continue
            ref = {"name": secret, "key": key, "optional": True}
            env.append({"name": key, "valueFrom": {"secretKeyRef": ref}})
    if endpoint_url:
        env.append({"name": "AWS_ENDPOINT_URL", "value": endpoint_url})
    return env
