"""The artifact as a whole: every manifest field is pinned by the digest, and the trainer's champion load
goes through the same safe loader as the server."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kubeloop.contract import MANIFEST_FILE, MODEL_FILE, Manifest, TrainerTask, hash_file, seal
from kubeloop_trainer.artifact import ArtifactError, read_artifact
from kubeloop_trainer.train import run_training

SKLEARN = ("sklearn.",)


def _task(data: Path, out: Path, **kw) -> TrainerTask:
    doc = {
        "model": "churn",
        "trainingRun": "churn-1",
        "namespace": "ml",
        "data": {"uri": f"file://{data}", "target": "y"},
        "estimator": {"classPath": "sklearn.linear_model.LogisticRegression"},
        "artifactUri": f"file://{out}",
        "seed": 1,
    }
    return TrainerTask.model_validate({**doc, **kw})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("artifact")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=120), "b": rng.normal(size=120)})
    frame["y"] = np.where(frame["a"] > 0, "yes", "no")
    frame.to_csv(root / "data.csv", index=False)
    summary = run_training(_task(root / "data.csv", root / "v1"), {})
    return root, summary


def _copy(trained, tmp_path: Path) -> Path:
    root, _ = trained
    return Path(shutil.copytree(root / "v1", tmp_path / "copy"))


def _edit_manifest(artifact: Path, path: str, value) -> None:
    doc = json.loads((artifact / MANIFEST_FILE).read_text())
    *parents, leaf = path.split(".")
    node = doc
    for key in parents:
        node = node[key]
    node[leaf] = value
    (artifact / MANIFEST_FILE).write_text(json.dumps(doc))


def _reseal(artifact: Path) -> None:
    """Recompute the manifest for the files now in the directory, as an attacker with write access would."""
    manifest = Manifest.model_validate_json((artifact / MANIFEST_FILE).read_text())
    files = {name: hash_file(artifact / name) for name in manifest.files}
    (artifact / MANIFEST_FILE).write_text(
        seal(manifest.model_copy(update={"files": files})).model_dump_json()
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lineage.model", "payments"),  # the name the server serves under
        ("lineage.trainingRun", "someone-else-1"),
        ("lineage.estimator", "sklearn.tree.DecisionTreeClassifier"),
        ("lineage.params", {"C": 1000.0}),
        ("lineage.trigger", "drift"),
        ("data.sha256", "sha256:" + "0" * 64),
        ("data.uri", "file:///elsewhere.csv"),
        ("trainerVersion", "9.9.9"),
        ("created", "2020-01-01T00:00:00Z"),
        ("schemaVersion", 1),
        ("extraField", "added"),
    ],
)
def test_editing_any_manifest_field_makes_the_artifact_refuse_to_load(trained, tmp_path, field, value):
    _, summary = trained
    artifact = _copy(trained, tmp_path)
    read_artifact(f"file://{artifact}", SKLEARN, expected_digest=summary.digest)  # loads before the edit
    _edit_manifest(artifact, field, value)
    with pytest.raises(ArtifactError, match="digest"):
        read_artifact(f"file://{artifact}", SKLEARN, expected_digest=summary.digest)
    with pytest.raises(ArtifactError, match="digest"):  # and without a pinned digest, too
        read_artifact(f"file://{artifact}", SKLEARN)


def test_a_hostile_champion_is_reported_unusable_and_runs_nothing(trained, crafted, tmp_path, monkeypatch):
    root, _ = trained
    monkeypatch.chdir(tmp_path)
    champion = _copy(trained, tmp_path)
    (champion / MODEL_FILE).write_bytes(crafted.foreign_payload("joblib.Memory", tmp_path))
    _reseal(champion)  # no digest pinned for this champion: only the trust check stands between
    task = _task(root / "data.csv", tmp_path / "v2", champion={"artifactUri": f"file://{champion}"})
    with crafted.side_effects(tmp_path) as effects:
        summary = run_training(task, {})
    assert summary.champion_metrics is None
    assert "sklearn.datasets._lfw.Memory" in summary.champion_error
    # the payload would have made <tmp_path>/joblib-cache; the run itself writes only its own artifact
    assert not any("joblib-cache" in p for p in effects.new_paths)
    assert not any("joblib-cache" in e for e in effects.events)


def test_a_file_larger_than_its_manifest_entry_is_refused_without_reading_it_whole(trained, tmp_path):
    artifact = _copy(trained, tmp_path)
    with open(artifact / MODEL_FILE, "ab") as f:
        f.write(bytes(8 << 20))
    with pytest.raises(ArtifactError, match=r"model\.skops: hash"):
        read_artifact(f"file://{artifact}", SKLEARN)


def test_a_manifest_that_lists_a_model_over_the_limit_is_refused_before_reading(trained, tmp_path):
    artifact = _copy(trained, tmp_path)
    manifest = Manifest.model_validate_json((artifact / MANIFEST_FILE).read_text())
    files = {**manifest.files, MODEL_FILE: manifest.files[MODEL_FILE].model_copy(update={"size": 2 << 30})}
    (artifact / MANIFEST_FILE).write_text(
        seal(manifest.model_copy(update={"files": files})).model_dump_json()
    )
    with pytest.raises(
        ArtifactError, match=r"model\.skops has 2147483648 bytes, over the limit of 1073741824"
    ):
        read_artifact(f"file://{artifact}", SKLEARN)


def test_the_operator_refuses_a_swapped_drift_profile_whose_manifest_hash_was_edited(trained, tmp_path):
    """The DriftMonitor's reference profile is read by the operator: a profile swapped in with its hash edited
    in the manifest (the pinned digest left as it was) is refused, because the manifest no longer hashes to it."""
    from kubeloop.contract import DRIFT_PROFILE_FILE
    from kubeloop.services.profiles import ProfileError, load_profile

    artifact = _copy(trained, tmp_path)
    pinned = Manifest.model_validate_json((artifact / MANIFEST_FILE).read_text()).digest
    assert load_profile(f"file://{artifact}", pinned).n_rows > 0  # the untouched artifact is accepted
    profile = json.loads((artifact / DRIFT_PROFILE_FILE).read_text())
    profile["n_rows"] = profile["n_rows"] * 100  # a reference that would hide drift
    (artifact / DRIFT_PROFILE_FILE).write_text(json.dumps(profile))
    doc = json.loads((artifact / MANIFEST_FILE).read_text())
    doc["files"][DRIFT_PROFILE_FILE] = hash_file(artifact / DRIFT_PROFILE_FILE).model_dump(mode="json")
    (artifact / MANIFEST_FILE).write_text(json.dumps(doc))
    with pytest.raises(ProfileError, match="cannot be trusted"):
        load_profile(f"file://{artifact}", pinned)
