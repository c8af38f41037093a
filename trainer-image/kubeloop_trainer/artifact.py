"""Writing and reading the artifact directory, locally or in an object store.

Writing removes any old manifest first and writes the manifest last, so a directory with a manifest is
always complete; a retried pod simply writes again. Reading checks the manifest against its own digest
(which covers every field, lineage included) and against the expected digest when the caller knows it,
then every file against the manifest, before the model is rebuilt: a file or a manifest field changed in
storage is refused, not served. No file is read past the size its manifest entry gives, and the model is
loaded within ``safe_model``'s limits, so a huge or inflating file costs no more memory than a valid one.
The server and the trainer (for a champion) both read through ``read_artifact``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version

from fsspec import AbstractFileSystem
from kubeloop.contract import (
    CONTENT_FILES,
    DRIFT_PROFILE_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    MODEL_FILE,
    SIGNATURE_FILE,
    DataFingerprint,
    Lineage,
    Manifest,
    ManifestError,
    MetricsReport,
    ModelSignature,
    hash_bytes,
    parse_manifest,
    seal,
    verify_files,
)
from kubeloop.drift.profile import DriftProfile
from pydantic import ValidationError
from sklearn.base import BaseEstimator

from kubeloop_trainer.safe_model import DEFAULT_LIMITS, UnsafeModelError, load_model
from kubeloop_trainer.storage import resolve

# The manifest and the JSON documents are parsed whole; none comes near this in a real artifact.
DOCUMENT_MAX_BYTES = 64 << 20


class ArtifactError(ValueError):
    """An artifact that is missing, unfinished, tampered with, or unsafe to load."""


@dataclass(frozen=True)
class Artifact:
    uri: str
    manifest: Manifest
    signature: ModelSignature
    metrics: MetricsReport
    profile: DriftProfile
    model: BaseEstimator


def trainer_version() -> str:
    try:
        return version("kubeloop")
    except PackageNotFoundError:
        return "unknown"


def write_artifact(
    uri: str,
    contents: Mapping[str, bytes],
    *,
    data: DataFingerprint,
    lineage: Lineage,
    created: datetime,
    env: Mapping[str, str] | None = None,
) -> Manifest:
    """Write every content file, then the manifest that hashes them; returns the manifest."""
    missing = [n for n in CONTENT_FILES if n not in contents]
    if missing:
        raise ValueError(f"artifact contents lack {missing}")
    fs, root = resolve(uri, env)
    manifest_path = f"{root}/{MANIFEST_FILE}"
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(manifest_path)
    fs.makedirs(root, exist_ok=True)
    for name in CONTENT_FILES:
        fs.pipe_file(f"{root}/{name}", contents[name])
    files = {name: hash_bytes(contents[name]) for name in CONTENT_FILES}
    manifest = seal(
        Manifest(
            digest="",
            created=created,
            trainer_version=trainer_version(),
            files=files,
            data=data,
            lineage=lineage,
        )
    )
    fs.pipe_file(manifest_path, manifest.model_dump_json(indent=2).encode())
    return manifest


def _read(fs: AbstractFileSystem, path: str, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of the file: enough to see that it is larger than it may be."""
    with fs.open(path, "rb") as f:
        return f.read(limit + 1)


def read_artifact(
    uri: str,
    allowed: tuple[str, ...],
    *,
    expected_digest: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Artifact:
    """Fetch, verify and load an artifact; raises ArtifactError with the reason."""
    fs, root = resolve(uri, env)
    try:
        raw = _read(fs, f"{root}/{MANIFEST_FILE}", DOCUMENT_MAX_BYTES)
    except FileNotFoundError as e:
        raise ArtifactError(f"no {MANIFEST_FILE} at {uri}: the artifact is missing or unfinished") from e
    if len(raw) > DOCUMENT_MAX_BYTES:
        raise ArtifactError(f"{MANIFEST_FILE} at {uri} is over the limit of {DOCUMENT_MAX_BYTES} bytes")
    try:
        manifest = parse_manifest(raw)
    except ManifestError as e:
        raise ArtifactError(f"{MANIFEST_FILE} at {uri} is refused: {e}") from e
    if expected_digest is not None and manifest.digest != expected_digest:
        raise ArtifactError(f"artifact {uri} has digest {manifest.digest}, expected {expected_digest}")
    contents: dict[str, bytes] = {}
    for name in CONTENT_FILES:
        entry = manifest.files.get(name)
        if entry is None:
            continue  # reported by verify_files below
        limit = DEFAULT_LIMITS.total_bytes if name == MODEL_FILE else DOCUMENT_MAX_BYTES
        if entry.size > limit:
            raise ArtifactError(f"artifact {uri}: {name} has {entry.size} bytes, over the limit of {limit}")
        try:
            # a file larger than its entry cannot match it, so one byte more than listed is enough to tell
            contents[name] = _read(fs, f"{root}/{name}", entry.size)
        except FileNotFoundError:
            continue  # reported by verify_files below
    problems = verify_files(manifest, {n: hash_bytes(b) for n, b in contents.items()})
    if problems:
        raise ArtifactError(f"artifact {uri} does not match its manifest: " + "; ".join(problems))
    try:
        signature = ModelSignature.model_validate_json(contents[SIGNATURE_FILE])
        metrics = MetricsReport.model_validate_json(contents[METRICS_FILE])
        profile = DriftProfile.model_validate_json(contents[DRIFT_PROFILE_FILE])
    except ValidationError as e:
        raise ArtifactError(f"artifact {uri} has an invalid document: {e}") from e
    try:
        model = load_model(contents[MODEL_FILE], allowed)
    except UnsafeModelError as e:
        raise ArtifactError(f"{uri}/{MODEL_FILE}: {e}") from e
    return Artifact(
        uri=uri, manifest=manifest, signature=signature, metrics=metrics, profile=profile, model=model
    )
