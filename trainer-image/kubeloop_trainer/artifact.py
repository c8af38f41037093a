"""Writing and reading the artifact directory, locally or in an object store.

Writing removes any old manifest first and writes the manifest last, so a directory with a manifest is
always complete; a retried pod simply writes again. Reading checks every file against the manifest (and
the expected digest, when the caller knows it) before the model is rebuilt, so a file swapped in storage
is refused, not served.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version

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
    MetricsReport,
    ModelSignature,
    artifact_digest,
    hash_bytes,
    verify_files,
)
from kubeloop.drift.profile import DriftProfile
from pydantic import ValidationError
from sklearn.base import BaseEstimator

from kubeloop_trainer.safe_model import UnsafeModelError, load_model
from kubeloop_trainer.storage import resolve


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
    manifest = Manifest(
        digest=artifact_digest(files),
        created=created,
        trainer_version=trainer_version(),
        files=files,
        data=data,
        lineage=lineage,
    )
    fs.pipe_file(manifest_path, manifest.model_dump_json(indent=2).encode())
    return manifest


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
        manifest = Manifest.model_validate_json(fs.cat_file(f"{root}/{MANIFEST_FILE}"))
    except FileNotFoundError as e:
        raise ArtifactError(f"no {MANIFEST_FILE} at {uri}: the artifact is missing or unfinished") from e
    except ValidationError as e:
        raise ArtifactError(f"{MANIFEST_FILE} at {uri} is not a valid manifest: {e}") from e
    if expected_digest is not None and manifest.digest != expected_digest:
        raise ArtifactError(f"artifact {uri} has digest {manifest.digest}, expected {expected_digest}")
    contents: dict[str, bytes] = {}
    for name in CONTENT_FILES:
        try:
            contents[name] = fs.cat_file(f"{root}/{name}")
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
