"""``manifest.json``: the sha256 of every artifact file and of the input data, plus lineage.

The artifact digest is a hash over the sorted (file name, file hash) pairs, so it names the artifact's
content and not the manifest's formatting: two runs that produce identical files have the same digest,
and a changed byte anywhere changes it. The operator records the digest in the ModelVersion; the server
checks every file against the manifest before it loads a model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import Field

from kubeloop.contract.base import ContractModel
from kubeloop.contract.layout import CONTENT_FILES

HASH_PREFIX = "sha256:"
_CHUNK = 1 << 20


class FileEntry(ContractModel):
    """One artifact file."""

    sha256: str = Field(description="Content hash, sha256:<hex>.")
    size: int = Field(ge=0, description="Size in bytes.")


class DataFingerprint(ContractModel):
    """The training data this artifact was fitted on."""

    uri: str = Field(description="Where the data was read from.")
    format: str = Field(description="csv or parquet.")
    sha256: str = Field(description="Hash of the data file's bytes, sha256:<hex>.")
    size: int = Field(ge=0, description="Size of the data file in bytes.")
    rows: int = Field(ge=0, description="Rows read.")
    columns: list[str] = Field(description="Columns read, in file order.")


class Lineage(ContractModel):
    """Where the artifact came from."""

    model: str = Field(description="Registry model name.")
    training_run: str | None = Field(default=None, description="TrainingRun that produced it.")
    namespace: str | None = Field(default=None, description="Namespace of that TrainingRun.")
    trigger: str | None = Field(default=None, description="Why the run was started (e.g. drift, schedule).")
    image: str | None = Field(default=None, description="Trainer image that ran.")
    estimator: str = Field(description="Import path of the estimator class.")
    params: dict[str, Any] = Field(default_factory=dict, description="Estimator parameters.")


class Manifest(ContractModel):
    """The content of ``manifest.json``."""

    schema_version: int = Field(default=1, description="Version of this manifest format.")
    digest: str = Field(description="Artifact digest over all files, sha256:<hex>.")
    created: datetime = Field(description="When the artifact was written (UTC).")
    trainer_version: str = Field(description="Version of the kubeloop trainer that wrote it.")
    files: dict[str, FileEntry] = Field(description="Every artifact file except the manifest itself.")
    data: DataFingerprint
    lineage: Lineage


def hash_stream(stream: BinaryIO) -> FileEntry:
    """Hash a binary stream to its end, in bounded memory."""
    h = hashlib.sha256()
    size = 0
    while chunk := stream.read(_CHUNK):
        h.update(chunk)
        size += len(chunk)
    return FileEntry(sha256=HASH_PREFIX + h.hexdigest(), size=size)


def hash_file(path: str | Path) -> FileEntry:
    with open(path, "rb") as f:
        return hash_stream(f)


def hash_bytes(data: bytes) -> FileEntry:
    return FileEntry(sha256=HASH_PREFIX + hashlib.sha256(data).hexdigest(), size=len(data))


def artifact_digest(files: Mapping[str, FileEntry]) -> str:
    """The digest of an artifact: sha256 over ``"<name> <hash>\\n"`` lines sorted by name."""
    text = "".join(f"{name} {files[name].sha256}\n" for name in sorted(files))
    return HASH_PREFIX + hashlib.sha256(text.encode()).hexdigest()


def verify_files(manifest: Manifest, actual: Mapping[str, FileEntry]) -> list[str]:
    """Every way ``actual`` differs from ``manifest``; empty means the files are exactly those hashed."""
    problems: list[str] = []
    for name in CONTENT_FILES:
        if name not in manifest.files:
            problems.append(f"{name}: not listed in the manifest")
    for name, expected in sorted(manifest.files.items()):
        got = actual.get(name)
        if got is None:
            problems.append(f"{name}: missing")
        elif got.sha256 != expected.sha256 or got.size != expected.size:
            problems.append(f"{name}: hash {got.sha256} does not match the manifest's {expected.sha256}")
    if not problems and artifact_digest(manifest.files) != manifest.digest:
        problems.append(f"manifest digest {manifest.digest} does not match its files")
    return problems
