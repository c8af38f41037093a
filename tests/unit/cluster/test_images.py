"""The pure parts of the local image builds: cache keys move with their inputs and only with them, the wheelhouse
targets the base's Python and glibc, images are named as users name them, and `load` skips a digest it has."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from kubeloop.settings import Settings
from kubeloop_cluster import buildah, images, pythonbase
from kubeloop_cluster.errors import SetupError
from kubeloop_cluster.paths import REPO_ROOT

# -- the base image and the wheelhouse -----------------------------------------------------------------------


def test_base_key_is_stable_and_moves_with_every_field_of_the_recipe():
    base = pythonbase.BaseRecipe()
    assert base.key() == pythonbase.BaseRecipe().key()
    assert base.reference() == f"localhost/kubeloop/python-base:{base.key()}"
    changes = {
        "suite": "trixie",
        "mirror": "http://mirror.example/debian",
        "packages": ("python3", "python3-venv", "curl"),
        "python": "3.13",
        "glibc": (2, 41),
        "revision": "2",
    }
    assert set(changes) == {field.name for field in dataclasses.fields(base)}, "a new field needs a case here"
    keys = {name: dataclasses.replace(base, **{name: value}).key() for name, value in changes.items()}
    assert base.key() not in keys.values()
    assert len(set(keys.values())) == len(keys)


def test_pip_targets_the_bases_python_and_every_manylinux_tag_its_glibc_meets():
    target = pythonbase.pip_target(pythonbase.BaseRecipe(python="3.11", glibc=(2, 36)))
    platforms = {target[i + 1] for i, flag in enumerate(target) if flag == "--platform"}
    # numpy and scipy ship manylinux_2_27/2_28 only; pydantic-core manylinux2014; frozenlist manylinux_2_5
    for tag in ("manylinux_2_36", "manylinux_2_28", "manylinux_2_17", "manylinux_2_5", "manylinux2014"):
        assert f"{tag}_x86_64" in platforms
    assert "manylinux_2_37_x86_64" not in platforms, (
        "a wheel needing a newer glibc would not load on the base"
    )
    assert "--only-binary=:all:" in target
    assert target[target.index("--python-version") + 1] == "3.11"
    assert target[target.index("--abi") + 1] == "cp311"


def test_wheelhouse_key_moves_with_requirements_build_requires_and_target_only():
    key = pythonbase.wheelhouse_key("numpy==2.4.6\n", ["setuptools>=77", "wheel"])
    assert key == pythonbase.wheelhouse_key("numpy==2.4.6\n", ["setuptools>=77", "wheel"])
    assert key != pythonbase.wheelhouse_key("numpy==2.4.7\n", ["setuptools>=77", "wheel"])
    assert key != pythonbase.wheelhouse_key("numpy==2.4.6\n", ["setuptools>=80", "wheel"])
    newer = pythonbase.BaseRecipe(python="3.12")
    assert key != pythonbase.wheelhouse_key("numpy==2.4.6\n", ["setuptools>=77", "wheel"], newer)
    # The mirror does not change which wheels fit the base.
    mirror = pythonbase.BaseRecipe(mirror="http://mirror.example/debian")
    assert key == pythonbase.wheelhouse_key("numpy==2.4.6\n", ["setuptools>=77", "wheel"], mirror)


def test_build_requires_are_the_pyprojects():
    assert "setuptools>=77" in pythonbase.build_requires(REPO_ROOT)


# -- the project images' keys ---------------------------------------------------------------------------------


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A small checkout: an image directory whose Dockerfile copies `src/` and its requirements."""
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "Dockerfile").write_text(
        "ARG PYTHON_IMAGE=python\nFROM ${PYTHON_IMAGE} AS build\nCOPY img/requirements.txt /tmp/\n"
        "COPY --chown=1:1 src/ \\\n    /src/\nFROM ${PYTHON_IMAGE}\nCOPY --from=build /src /src\n"
    )
    (tmp_path / "img" / "Dockerfile.dockerignore").write_text("**/__pycache__\n")
    (tmp_path / "img" / "requirements.txt").write_text("numpy==2.4.6\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.py").write_text("print('hello')\n")
    (tmp_path / "docs.md").write_text("not copied\n")
    (tmp_path / ".gitignore").write_text("__pycache__/\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    return tmp_path


def key(repo: Path, *inputs: str) -> str:
    return images.image_key(repo, "img", "ghcr.io/x/y:1", *inputs)


def test_copy_sources_are_the_context_paths_of_copy_and_add(repo):
    dockerfile = (repo / "img" / "Dockerfile").read_text()
    assert images.copy_sources(dockerfile) == ["img/requirements.txt", "src/"]


def test_image_key_is_stable_when_nothing_the_build_reads_changes(repo):
    before = key(repo, "base:1")
    (repo / "docs.md").write_text("changed, but the build never copies it\n")
    (repo / "src" / "__pycache__").mkdir()
    (repo / "src" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0")
    (repo / "src" / "main.py").touch()  # a new mtime, the same content
    assert key(repo, "base:1") == before


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda r: (r / "src" / "main.py").write_text("print('bye')\n"), id="copied source"),
        pytest.param(
            lambda r: (r / "src" / "new.py").write_text(""), id="new untracked file in a copied tree"
        ),
        pytest.param(lambda r: (r / "src" / "main.py").unlink(), id="deleted file"),
        pytest.param(
            lambda r: (r / "img" / "requirements.txt").write_text("numpy==2.4.7\n"), id="requirements"
        ),
        pytest.param(lambda r: (r / "img" / "Dockerfile").write_text("FROM scratch\n"), id="Dockerfile"),
        pytest.param(lambda r: (r / "img" / "Dockerfile.dockerignore").write_text(""), id="dockerignore"),
        pytest.param(lambda r: (r / "src" / "main.py").chmod(0o755), id="executable bit"),
    ],
)
def test_image_key_moves_with_every_file_the_build_reads(repo, change):
    before = key(repo, "base:1")
    change(repo)
    assert key(repo, "base:1") != before


def test_image_key_moves_with_the_builds_other_inputs(repo):
    assert (
        key(repo, "base:1", "wheels:a") != key(repo, "base:2", "wheels:a") != key(repo, "base:2", "wheels:b")
    )


def test_image_key_needs_a_checkout(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    with pytest.raises(SetupError, match="build from a checkout"):
        images.image_key(tmp_path, "img")


# -- what the builds produce and how they are named -----------------------------------------------------------


def test_images_are_named_as_the_operator_and_the_chart_name_them():
    chart = REPO_ROOT / "charts" / "kubeloop"
    values = yaml.safe_load((chart / "values.yaml").read_text())
    app_version = yaml.safe_load((chart / "Chart.yaml").read_text())["appVersion"]
    assert images.trainer_reference() == Settings.model_fields["trainer_image"].default
    assert images.trainer_reference() == values["operator"]["trainerImage"]
    assert images.operator_reference() == f"{values['image']['repository']}:{app_version}"


def test_project_builds_have_no_network_and_take_wheels_from_the_mounted_wheelhouse():
    argv = images.bud_arguments(REPO_ROOT / "trainer-image", REPO_ROOT, "base:1", Path("/w"), "ghcr.io/x/y:1")
    assert "--network=none" in argv and "--pull=never" in argv
    assert "--isolation=oci" in argv, "chroot isolation refuses --network=none"
    build_args = [argv[i + 1] for i, flag in enumerate(argv) if flag == "--build-arg"]
    assert build_args == [
        "PYTHON_IMAGE=base:1",
        "PIP_NO_INDEX=1",
        f"PIP_FIND_LINKS={images.WHEELHOUSE_MOUNT}",
    ]
    assert argv[argv.index("--volume") + 1] == f"/w:{images.WHEELHOUSE_MOUNT}:ro"
    assert argv[-1] == str(REPO_ROOT)


def _oci_archive(path: Path, *digests: str) -> Path:
    index = json.dumps({"schemaVersion": 2, "manifests": [{"digest": d} for d in digests]}).encode()
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("index.json")
        info.size = len(index)
        tar.addfile(info, io.BytesIO(index))
    return path


def test_archive_digest_is_the_manifest_in_the_index(tmp_path):
    assert buildah.archive_digest(_oci_archive(tmp_path / "a.tar", "sha256:abc")) == "sha256:abc"
    with pytest.raises(SetupError, match="2 manifests"):
        buildah.archive_digest(_oci_archive(tmp_path / "b.tar", "sha256:abc", "sha256:def"))


# -- load -----------------------------------------------------------------------------------------------------


@pytest.fixture
def fake_ctr(tmp_path, monkeypatch) -> Path:
    """A `ctr` that lists one image (from $CTR_LISTS) and records every call (in $CTR_CALLS)."""
    script = tmp_path / "bin" / "ctr"
    script.parent.mkdir()
    script.write_text(
        '#!/bin/sh\necho "$*" >> "$CTR_CALLS"\n'
        'case "$*" in *"images list"*) echo "REF TYPE DIGEST SIZE PLATFORMS LABELS"; cat "$CTR_LISTS";; esac\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("CTR_CALLS", str(tmp_path / "calls"))
    monkeypatch.setenv("CTR_LISTS", str(tmp_path / "lists"))
    return tmp_path


def test_load_skips_an_image_containerd_has_at_the_same_digest(fake_ctr):
    archive = _oci_archive(fake_ctr / "t.tar", "sha256:abc")
    (fake_ctr / "lists").write_text("ghcr.io/kubeloop/trainer:0.1.0 oci sha256:abc 1 MiB linux/amd64 -\n")
    assert images.load(archive, "ghcr.io/kubeloop/trainer:0.1.0", Path("/run/c.sock")) is False
    calls = (fake_ctr / "calls").read_text().splitlines()
    assert calls == ["--address /run/c.sock --namespace k8s.io images list"]


def test_load_imports_under_the_references_repository_and_checks_the_result(fake_ctr):
    archive = _oci_archive(fake_ctr / "t.tar", "sha256:new")
    (fake_ctr / "lists").write_text("ghcr.io/kubeloop/trainer:0.1.0 oci sha256:old 1 MiB linux/amd64 -\n")
    with pytest.raises(SetupError, match="did not take"):  # the fake never changes what it lists
        images.load(archive, "ghcr.io/kubeloop/trainer:0.1.0", Path("/run/c.sock"))
    calls = (fake_ctr / "calls").read_text().splitlines()
    assert (
        f"--address /run/c.sock --namespace k8s.io images import --base-name ghcr.io/kubeloop/trainer {archive}"
        in calls
    )
