import hashlib
import io
from datetime import UTC, datetime

from kubeloop.contract import (
    CONTENT_FILES,
    DataFingerprint,
    Lineage,
    Manifest,
    artifact_digest,
    hash_bytes,
    hash_stream,
    verify_files,
)


def _files(**overrides: bytes) -> dict[str, bytes]:
    contents = {name: f"content of {name}".encode() for name in CONTENT_FILES}
    contents.update(overrides)
    return contents


def _manifest(contents: dict[str, bytes]) -> Manifest:
    files = {n: hash_bytes(b) for n, b in contents.items()}
    return Manifest(
        digest=artifact_digest(files),
        created=datetime(2024, 1, 1, tzinfo=UTC),
        trainer_version="test",
        files=files,
        data=DataFingerprint(
            uri="file:///d.csv", format="csv", sha256="sha256:00", size=1, rows=1, columns=["a"]
        ),
        lineage=Lineage(model="m", estimator="sklearn.linear_model.LogisticRegression"),
    )


def test_hash_matches_hashlib_and_streams_in_chunks():
    data = bytes(range(256)) * 10_000  # several chunks
    entry = hash_stream(io.BytesIO(data))
    assert entry.sha256 == "sha256:" + hashlib.sha256(data).hexdigest()
    assert entry.size == len(data)
    assert hash_bytes(data) == entry


def test_digest_ignores_order_and_follows_content():
    contents = _files()
    files = {n: hash_bytes(b) for n, b in contents.items()}
    reversed_files = dict(reversed(list(files.items())))
    assert artifact_digest(files) == artifact_digest(reversed_files)
    changed = {**files, "metrics.json": hash_bytes(b"other")}
    assert artifact_digest(changed) != artifact_digest(files)
    # the digest is over "name hash" lines, so a rename changes it too
    renamed = {("x" + n if n == "metrics.json" else n): e for n, e in files.items()}
    assert artifact_digest(renamed) != artifact_digest(files)


def test_verify_files_accepts_exact_content():
    contents = _files()
    manifest = _manifest(contents)
    assert verify_files(manifest, {n: hash_bytes(b) for n, b in contents.items()}) == []


def test_verify_files_names_each_problem():
    contents = _files()
    manifest = _manifest(contents)
    actual = {n: hash_bytes(b) for n, b in contents.items()}
    actual["model.skops"] = hash_bytes(b"swapped model")
    del actual["metrics.json"]
    problems = verify_files(manifest, actual)
    assert len(problems) == 2
    assert any(p.startswith("model.skops: hash") for p in problems)
    assert "metrics.json: missing" in problems


def test_verify_files_catches_a_forged_digest():
    contents = _files()
    manifest = _manifest(contents).model_copy(update={"digest": "sha256:" + "0" * 64})
    problems = verify_files(manifest, {n: hash_bytes(b) for n, b in contents.items()})
    assert problems == [f"manifest digest {manifest.digest} does not match its files"]


def test_verify_files_requires_every_layout_file_listed():
    contents = _files()
    del contents["model_card.md"]
    manifest = _manifest(contents)
    problems = verify_files(manifest, {n: hash_bytes(b) for n, b in contents.items()})
    assert problems == ["model_card.md: not listed in the manifest"]


def test_manifest_round_trips_in_camel_case():
    manifest = _manifest(_files())
    text = manifest.model_dump_json()
    assert '"trainerVersion"' in text and '"schemaVersion"' in text
    assert Manifest.model_validate_json(text) == manifest
