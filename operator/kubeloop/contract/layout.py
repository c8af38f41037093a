"""The artifact directory: the one place that names its files and where a run's directory goes.

An artifact is a directory (local or in an object store) holding exactly these files. The manifest is
written last and hashes all the others, so a directory without a manifest is an unfinished write.
"""

from __future__ import annotations

MODEL_FILE = "model.skops"
SIGNATURE_FILE = "signature.json"
METRICS_FILE = "metrics.json"
DRIFT_PROFILE_FILE = "drift_profile.json"
MODEL_CARD_FILE = "model_card.md"
MANIFEST_FILE = "manifest.json"

# Every file the manifest hashes, in the order they are written.
CONTENT_FILES: tuple[str, ...] = (
    MODEL_FILE,
    SIGNATURE_FILE,
    METRICS_FILE,
    DRIFT_PROFILE_FILE,
    MODEL_CARD_FILE,
)


def join_uri(root: str, *parts: str) -> str:
    """Join URI path segments with single slashes (``s3://b/x`` + ``y`` -> ``s3://b/x/y``)."""
    out = root.rstrip("/")
    for part in parts:
        part = part.strip("/")
        if part:
            out = f"{out}/{part}"
    return out


def run_artifact_uri(artifact_root: str, namespace: str, model: str, run: str) -> str:
    """Where the artifact of one TrainingRun goes: ``<root>/<namespace>/<model>/<run>``.

    Deterministic, so a retried training pod overwrites its own unfinished attempt and nothing else.
    """
    return join_uri(artifact_root, namespace, model, run)


def artifact_file_uri(artifact_uri: str, name: str) -> str:
    """The URI of one file of an artifact directory."""
    if name not in (*CONTENT_FILES, MANIFEST_FILE):
        raise ValueError(f"{name!r} is not a file of the artifact layout")
    return join_uri(artifact_uri, name)
