import copy
import hashlib
import io
import json
from datetime import UTC, datetime

import pytest
from kubeloop.contract import (
    CONTENT_FILES,
    DataFingerprint,
    Lineage,
    Manifest,
    ManifestError,
    artifact_digest,
    hash_bytes,
    hash_stream,
    manifest_digest,
    parse_manifest,
    seal,
    verify_files,
)


def _files(**overrides: bytes) -> dict[str, bytes]:
    contents = {name: f"content of {name}".encode() for name in CONTENT_FILES}
    contents.update(overrides)
    return contents


def _manifest(contents: dict[str, bytes], **params) -> Manifest:
    return seal(
        Manifest(
            digest="",
            created=datetime(2024, 1, 1, tzinfo=UTC),
            trainer_version="test",
            files={n: hash_bytes(b) for n, b in contents.items()},
            data=DataFingerprint(
                uri="file:///d.csv", format="csv", sha256="sha256:00", size=1, rows=1, columns=["a"]
            ),
            lineage=Lineage(
                model="m",
                training_run="m-1",
                estimator="sklearn.linear_model.LogisticRegression",
                params=params,
            ),
        )
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


def _document(manifest: Manifest) -> dict:
    return json.loads(manifest.model_dump_json(indent=2))


def test_a_sealed_manifest_parses_back_as_written():
    manifest = _manifest(_files(), C=0.1, tol=1e-05, big=2**70, name="é\u2603", nested={"l": [1, 2.5, None]})
    assert manifest.schema_version == 2 and manifest.digest.startswith("sha256:")
    assert parse_manifest(manifest.model_dump_json(indent=2)) == manifest
    assert (
        parse_manifest(json.dumps(_document(manifest), indent=None, ensure_ascii=False).encode()) == manifest
    )
    assert seal(manifest) == manifest  # sealing ignores the digest already there


# Every field of the document, and where it leads: each is covered by the digest.
FIELDS = [
    (("lineage", "model"), "payments"),  # the name the server serves under
    (("lineage", "trainingRun"), "other-1"),
    (("lineage", "namespace"), "prod"),
    (("lineage", "trigger"), "drift"),
    (("lineage", "image"), "evil:latest"),
    (("lineage", "estimator"), "sklearn.tree.DecisionTreeClassifier"),
    (("lineage", "params"), {"C": 1000.0}),
    (("data", "uri"), "file:///other.csv"),
    (("data", "sha256"), "sha256:11"),
    (("data", "rows"), 2),
    (("data", "columns"), ["b"]),
    (("created",), "2020-01-01T00:00:00Z"),
    (("trainerVersion",), "9.9.9"),
    (("files", "metrics.json", "size"), 1),
    (("schemaVersion",), 3),
    (("somethingNew",), "added"),
]


@pytest.mark.parametrize(("path", "value"), FIELDS, ids=[".".join(p) for p, _ in FIELDS])
def test_every_manifest_field_is_covered_by_the_digest(path, value):
    document = _document(_manifest(_files()))
    edited = copy.deepcopy(document)
    node = edited
    for key in path[:-1]:
        node = node[key]
    assert node.get(path[-1]) != value
    node[path[-1]] = value
    assert manifest_digest(edited) != document["digest"]
    with pytest.raises(ManifestError, match="does not match its content"):
        parse_manifest(json.dumps(edited))


def test_fields_this_reader_does_not_know_are_covered_as_written():
    # A newer trainer's field is part of the digest it wrote, and this reader still verifies it.
    document = _document(_manifest(_files()))
    document["provenance"] = {"signedBy": "ci"}
    document["digest"] = manifest_digest(document)
    manifest = parse_manifest(json.dumps(document))
    assert manifest.digest == document["digest"] and not hasattr(manifest, "provenance")


def test_a_schema_version_1_manifest_still_verifies_by_its_files_only():
    sealed = _manifest(_files())
    document = _document(sealed) | {"schemaVersion": 1, "digest": artifact_digest(sealed.files)}
    assert parse_manifest(json.dumps(document)).digest == artifact_digest(sealed.files)
    document["lineage"]["model"] = "payments"  # the weaker rule of version 1: lineage is not covered
    assert parse_manifest(json.dumps(document)).lineage.model == "payments"


def test_relabelling_a_manifest_as_version_1_cannot_keep_its_digest():
    sealed = _manifest(_files())
    document = _document(sealed) | {"schemaVersion": 1}
    with pytest.raises(ManifestError, match="does not match its content"):
        parse_manifest(json.dumps(document))
    # made consistent again, it has another digest, which a pinned digest refuses
    assert artifact_digest(sealed.files) != sealed.digest


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"[]", b'{"digest": "sha256:00"}', b'{"schemaVersion": 1, "digest": "x", "files": 3}'],
)
def test_a_malformed_manifest_is_a_manifest_error(raw):
    with pytest.raises(ManifestError, match="not a valid manifest"):
        parse_manifest(raw)


def test_a_forged_digest_is_refused():
    document = _document(_manifest(_files())) | {"digest": "sha256:" + "0" * 64}
    with pytest.raises(ManifestError, match=r"manifest digest sha256:0+ does not match its content"):
        parse_manifest(json.dumps(document))
