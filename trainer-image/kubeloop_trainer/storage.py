"""URIs to filesystems: ``file://``, ``s3://`` and ``pvc://claim/path``, all through fsspec.

S3 credentials come from the standard AWS environment variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_ENDPOINT_URL[_S3]``, ``AWS_REGION`` /
``AWS_DEFAULT_REGION``), which is how the operator passes a Secret into the pod. A ``pvc://claim/path`` is a
file on a PersistentVolumeClaim that the pod mounts at ``<KUBELOOP_PVC_ROOT>/<claim>`` (default
``/mnt/pvc/<claim>``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import fsspec
from fsspec import AbstractFileSystem
from kubeloop.contract.storage import s3_options

PVC_ROOT_ENV = "KUBELOOP_PVC_ROOT"
DEFAULT_PVC_ROOT = "/mnt/pvc"
_CLAIM = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class StorageError(ValueError):
    """A URI that cannot name a readable or writable place."""


def pvc_path(uri: str, env: Mapping[str, str]) -> str:
    """The local path of ``pvc://claim/path`` under the claim's mount point."""
    rest = uri.removeprefix("pvc://")
    claim, _, path = rest.partition("/")
    if not _CLAIM.match(claim) or not path:
        raise StorageError(f"{uri!r} is not pvc://<claim>/<path>")
    if ".." in path.split("/"):
        raise StorageError(f"{uri!r} must not leave the volume with '..'")
    root = env.get(PVC_ROOT_ENV) or DEFAULT_PVC_ROOT
    return os.path.join(root, claim, path)


def resolve(uri: str, env: Mapping[str, str] | None = None) -> tuple[AbstractFileSystem, str]:
    """The filesystem and the in-filesystem path of ``uri``."""
    env = os.environ if env is None else env
    if uri.startswith("s3://"):
        path = uri.removeprefix("s3://").strip("/")
        if not path:
            raise StorageError(f"{uri!r} names no bucket")
        # skip_instance_cache: credentials may differ between calls (tests, champion vs output).
        return fsspec.filesystem("s3", skip_instance_cache=True, **s3_options(env)), path
    if uri.startswith("pvc://"):
        return fsspec.filesystem("file"), pvc_path(uri, env)
    if uri.startswith("file://"):
        path = uri.removeprefix("file://")
        if not path.startswith("/"):
            raise StorageError(f"{uri!r} must be an absolute file:///path")
        return fsspec.filesystem("file"), path
    if "://" in uri:
        raise StorageError(f"{uri!r}: only file://, s3:// and pvc:// are supported")
    return fsspec.filesystem("file"), os.path.abspath(uri)
