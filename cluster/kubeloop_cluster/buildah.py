"""buildah against the cache's own storage: build, export as an OCI archive, look up; and the staging helpers.

Storage, run state and temporary files live under `<cache_root>/buildah`, never in /var/lib/containers, so the
local images never mix with anything else on the host and `rm -rf` of the cache removes them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

from kubeloop_cluster.errors import SetupError
from kubeloop_cluster.paths import cache_root

Log = Callable[[str], None]


def stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def root() -> Path:
    """buildah's storage, run state and temporary files."""
    return cache_root() / "buildah"


def images_dir() -> Path:
    """The OCI archives, wheelhouses and build logs."""
    return cache_root() / "images"


def digest(*parts: str | bytes) -> str:
    """A cache key: the SHA-256 of `parts`, each one delimited."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode() if isinstance(part, str) else part)
        hasher.update(b"\0")
    return hasher.hexdigest()


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if not path:
        raise SetupError(f"{name} is not installed, and the local images need it: apt-get install {package}")
    return path


def command(*args: str) -> list[str]:
    """A buildah command line on the cache's storage (overlay works here; isolation is chosen per build)."""
    return [
        tool("buildah", "buildah"),
        "--root",
        str(root() / "storage"),
        "--runroot",
        str(root() / "run"),
        "--storage-driver",
        "overlay",
        *args,
    ]


def run(argv: list[str], log_path: Path, what: str) -> None:
    """Run one step with its output appended to `log_path`; a failure is one line naming the log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = root() / "tmp"  # buildah stages exports in $TMPDIR: keep them in the cache, not in /var/tmp
    tmp.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        env = {**os.environ, "TMPDIR": str(tmp)}
        result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    if result.returncode != 0:
        tail = log_path.read_text().strip().splitlines()[-1:] or ["(no output)"]
        raise SetupError(f"{what} failed: {tail[0]} (full log: {log_path})")


def image_id(reference: str) -> str | None:
    """The ID of the image the storage holds under `reference`, or None."""
    argv = command("inspect", "--type", "image", "--format", "{{.FromImageID}}", reference)
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def archive_digest(archive: Path) -> str:
    """The manifest digest in an OCI archive's index.json: what containerd records for the imported image."""
    with tarfile.open(archive) as tar:
        index = tar.extractfile("index.json")
        if index is None:
            raise SetupError(f"{archive} has no index.json; delete it and run again")
        manifests = json.load(index)["manifests"]
    if len(manifests) != 1:
        raise SetupError(f"{archive} holds {len(manifests)} manifests, not one; delete it and run again")
    return manifests[0]["digest"]


def build(reference: str, bud_arguments: list[str], archive: Path) -> None:
    """`buildah bud`, then export `reference` to `archive` (atomically, named `reference` inside).

    `archive` is `<name>-<key>.tar`: older archives and logs of the same name are deleted, and so is the image
    this build replaced, with the layers only it used. The storage keeps one image per name, plus the layers of
    earlier build stages that the next build may reuse.
    """
    log_path = archive.with_suffix(".log")
    replaced = image_id(reference)
    run(command(*bud_arguments), log_path, f"building {reference}")
    partial = archive.with_name(archive.name + ".partial")
    partial.unlink(missing_ok=True)
    run(
        command("push", "--quiet", reference, f"oci-archive:{partial}:{reference}"),
        log_path,
        f"exporting {reference}",
    )
    partial.rename(archive)
    name = archive.stem.rsplit("-", 1)[0]
    for older in archive.parent.glob(f"{name}-*"):
        if (
            older.suffix in (".tar", ".log")
            and older.stem.rsplit("-", 1)[0] == name
            and older.stem != archive.stem
        ):
            older.unlink(missing_ok=True)
    if replaced and replaced != image_id(reference):
        subprocess.run(command("rmi", replaced), capture_output=True, check=False)


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")  # mountinfo escapes a space as \040
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def remove_staging(path: Path) -> None:
    """Delete a staging directory, first unmounting whatever a killed debootstrap left mounted in it."""
    if not path.exists():
        return
    for point in _mounts_under(path):
        subprocess.run(["umount", point], capture_output=True, check=False)
    if left := _mounts_under(path):
        raise SetupError(f"{left[0]} is still mounted, so {path} cannot be deleted: umount it and run again")
    shutil.rmtree(path)
