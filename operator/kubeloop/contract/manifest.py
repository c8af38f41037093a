"""``manifest.json``: the sha256 of every artifact file and of the input data, and lineage, sealed by a digest.

The digest (schema version 2) is a sha256 over the whole manifest document except the ``digest`` field
itself, in canonical JSON (sorted keys, no spaces). It therefore covers the file hashes and everything else
the manifest says: lineage (the model name a server serves under, the run, the estimator, its parameters),
the data fingerprint, the trainer version and the creation time. It is computed over the document as
stored, not over this module's model of it, so a field written by a newer trainer is covered too, and a
reader never has to know every field to check the seal. The operator pins the digest in the ModelVersion;
the server and the trainer (for a champion) refuse a manifest whose content does not hash to it.

Schema version 1 manifests (written before lineage was covered) hashed only the sorted
``"<name> <hash>\\n"`` lines of the files; they are still read, with that weaker rule. Relabelling a
version 2 manifest as version 1 changes its digest, so it cannot keep a pinned digest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import Field

from kubeloop.contract.base import ContractModel
from kubeloop.contract.layout import CONTENT_FILES

HASH_PREFIX = "sha256:"
MANIFEST_SCHEMA_VERSION = 2
_CHUNK = 1 << 20


class ManifestError(ValueError):
    """A manifest that is not valid JSON, not a valid manifest, or does not hash to its digest."""


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

    schema_version: int = Field(
        default=MANIFEST_SCHEMA_VERSION,
        description="Version of this manifest format (2: the digest covers every field; 1: only the files).",
    )
    digest: str = Field(description="sha256:<hex> over the whole manifest but this field; see seal().")
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
    """The schema version 1 digest: sha256 over ``"<name> <hash>\\n"`` lines sorted by name (files only)."""
    text = "".join(f"{name} {files[name].sha256}\n" for name in sorted(files))
    return HASH_PREFIX + hashlib.sha256(text.encode()).hexdigest()


def manifest_digest(document: Mapping[str, Any]) -> str:
    """The digest of a manifest document (its JSON object), by the rule of its ``schemaVersion``."""
    if document.get("schemaVersion") == 1:
        files = {name: FileEntry.model_validate(entry) for name, entry in document["files"].items()}
        return artifact_digest(files)
    body = {key: value for key, value in document.items() if key != "digest"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return HASH_PREFIX + hashlib.sha256(text.encode()).hexdigest()


def seal(manifest: Manifest) -> Manifest:
    """The manifest with its digest computed over everything else it says."""
    return manifest.model_copy(update={"digest": manifest_digest(manifest.model_dump(mode="json"))})


def parse_manifest(raw: bytes | str) -> Manifest:
    """Read ``manifest.json``, refusing it unless its content hashes to its digest; raises ManifestError."""
    try:
        document = json.loads(raw)
        manifest = Manifest.model_validate(document)
        digest = manifest_digest(document)
    # pydantic's ValidationError is a ValueError; the others come from a document of the wrong shape
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ManifestError(f"not a valid manifest: {e}") from e
    if digest != manifest.digest:
        raise ManifestError(f"manifest digest {manifest.digest} does not match its content ({digest})")
    return manifest


def verify_files(manifest: Manifest, actual: Mapping[str, FileEntry]) -> list[str]:
    """Every way ``actual`` differs from ``manifest``; empty means the files are exactly those hashed.

    The manifest itself is checked against its digest by ``parse_manifest``.
    """
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
    return problems
