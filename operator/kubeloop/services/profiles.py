"""Reference drift profiles of served versions, read from the artifact store and pinned by the digest.

The operator reads ``manifest.json`` and ``drift_profile.json`` of the version's artifact, and accepts the
profile only if the manifest's digest is the ModelVersion's and the profile's hash is the one the manifest
lists: the profile the monitor compares with is exactly the one the server counts against. A profile is
immutable for a digest, so it is cached by digest.

S3 credentials come from the standard AWS variables (the chart sets them from ``operator.s3``).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Mapping

import fsspec

from kubeloop.contract import (
    DRIFT_PROFILE_FILE,
    MANIFEST_FILE,
    ManifestError,
    artifact_file_uri,
    hash_bytes,
    parse_manifest,
)
from kubeloop.contract.storage import s3_options
from kubeloop.drift import DriftProfile

__all__ = ["ProfileError", "ProfileStore"]


class ProfileError(Exception):
    """The profile cannot be read or does not match the version's digest."""


def read_bytes(uri: str, env: Mapping[str, str] | None = None) -> bytes:
    """The bytes at an ``s3://`` or ``file://`` URI (``pvc://`` is mounted only in pods, not here)."""
    env = os.environ if env is None else env
    try:
        if uri.startswith("s3://"):
            fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3_options(env))
            return fs.cat_file(uri.removeprefix("s3://"))
        if uri.startswith("file://"):
            with open(uri.removeprefix("file://"), "rb") as f:
                return f.read()
    except (OSError, ValueError) as e:  # botocore's errors are OSErrors (FileNotFound, PermissionError)
        raise ProfileError(f"cannot read {uri}: {type(e).__name__}: {e}") from e
    raise ProfileError(f"cannot read {uri}: the operator reads only s3:// and file:// artifacts")


def load_profile(artifact_uri: str, digest: str, env: Mapping[str, str] | None = None) -> DriftProfile:
    """The artifact's reference profile, checked against its manifest and the expected digest."""
    try:  # the manifest must hash to its own digest: a swapped profile with an edited hash is refused
        manifest = parse_manifest(read_bytes(artifact_file_uri(artifact_uri, MANIFEST_FILE), env))
    except ManifestError as e:
        raise ProfileError(f"the manifest of {artifact_uri} cannot be trusted: {e}") from e
    if manifest.digest != digest:
        raise ProfileError(f"the artifact at {artifact_uri} has digest {manifest.digest}, not {digest}")
    expected = manifest.files.get(DRIFT_PROFILE_FILE)
    if expected is None:
        raise ProfileError(f"the manifest of {artifact_uri} lists no {DRIFT_PROFILE_FILE}")
    raw = read_bytes(artifact_file_uri(artifact_uri, DRIFT_PROFILE_FILE), env)
    if hash_bytes(raw).sha256 != expected.sha256:
        raise ProfileError(f"{DRIFT_PROFILE_FILE} of {artifact_uri} does not match its manifest")
    return DriftProfile.model_validate_json(raw)


class ProfileStore:
    """Profiles by digest, the most recently used kept in memory. Thread-safe."""

    def __init__(self, capacity: int = 32, env: Mapping[str, str] | None = None):
        self._capacity = capacity
        self._env = env
        self._cache: OrderedDict[str, DriftProfile] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, artifact_uri: str, digest: str) -> DriftProfile:
        with self._lock:
            if digest in self._cache:
                self._cache.move_to_end(digest)
                return self._cache[digest]
        profile = load_profile(artifact_uri, digest, self._env)
        with self._lock:
            self._cache[digest] = profile
            while len(self._cache) > self._capacity:
                self._cache.popitem(last=False)
        return profile
