"""How the object store's credentials travel: the standard AWS environment variables, read into s3fs options.

The operator passes a Secret into trainer and server pods as ``AWS_*`` variables (and the chart sets the
operator's own from ``operator.s3``); the trainer, the server and the operator all read them here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["s3_options"]


def s3_options(env: Mapping[str, str]) -> dict[str, Any]:
    """s3fs options from the AWS environment variables (unset ones are left to botocore's defaults)."""
    options: dict[str, Any] = {}
    if env.get("AWS_ACCESS_KEY_ID"):
        options["key"] = env["AWS_ACCESS_KEY_ID"]
        options["secret"] = env.get("AWS_SECRET_ACCESS_KEY", "")
    if env.get("AWS_SESSION_TOKEN"):
        options["token"] = env["AWS_SESSION_TOKEN"]
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["endpoint_url"] = endpoint
        # S3-compatible stores (MinIO, versitygw, Ceph) are addressed by path, not by bucket host name.
        options["config_kwargs"] = {"s3": {"addressing_style": "path"}}
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        options["client_kwargs"] = {"region_name": region}
    return options
