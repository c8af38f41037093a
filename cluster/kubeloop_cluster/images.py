"""The images the local node runs, built with buildah without a registry, and loaded into its containerd.

- trainer and operator: the repository's unchanged Dockerfiles, built with `--network=none` on the local Python
  base, pip pointed at a wheelhouse through build arguments (see `pythonbase`); named as users name them;
- pause (containerd's sandbox image) and CoreDNS: `FROM scratch` around one static binary.

Each is an OCI archive in the cache, keyed by a hash of everything its build reads, so an unchanged image is
never rebuilt. `load` imports an archive into containerd's `k8s.io` namespace unless the same digest is there.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import yaml
from kubeloop.settings import Settings

from kubeloop_cluster import buildah, pythonbase, toolchain
from kubeloop_cluster.buildah import Log
from kubeloop_cluster.errors import SetupError
from kubeloop_cluster.paths import REPO_ROOT

WHEELHOUSE_MOUNT = "/wheelhouse"  # where a build's RUN steps see the wheelhouse, read-only
BUILD_REVISION = "1"  # bump when the build flags change what an image holds


@dataclass(frozen=True)
class ImageRef:
    """A built image: the name it is loaded as, its OCI archive, and its manifest digest."""

    reference: str
    archive: Path
    digest: str


def _built(reference: str, archive: Path) -> ImageRef:
    return ImageRef(reference, archive, buildah.archive_digest(archive))


def _archive(name: str, key: str) -> Path:
    return buildah.images_dir() / "archives" / f"{name}-{key}.tar"


# -- the repository's images ----------------------------------------------------------------------------------


def trainer_reference() -> str:
    """The trainer image as the operator names it by default (the product's settings, where it is written once)."""
    return Settings.model_fields["trainer_image"].default


def operator_reference(root: Path = REPO_ROOT) -> str:
    """The operator image as the chart names it: image.repository, and image.tag or else the appVersion."""
    chart = root / "charts" / "kubeloop"
    image = yaml.safe_load((chart / "values.yaml").read_text())["image"]
    tag = image.get("tag") or yaml.safe_load((chart / "Chart.yaml").read_text())["appVersion"]
    return f"{image['repository']}:{tag}"


@dataclass(frozen=True)
class ProjectImage:
    """One of the repository's images: a directory with Dockerfile, Dockerfile.dockerignore, requirements.txt."""

    directory: str
    reference: Callable[[], str]


PROJECT_IMAGES = {
    "trainer": ProjectImage("trainer-image", trainer_reference),
    "operator": ProjectImage("operator-image", operator_reference),
}


class Instruction(NamedTuple):
    keyword: str  # upper case
    args: str


def instructions(dockerfile: str) -> list[Instruction]:
    """A Dockerfile's instructions, continuation lines joined, comments and parser directives dropped."""
    result = []
    pending = ""
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        result.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    if pending:
        raise SetupError(f"a Dockerfile ends in a line continuation: {pending.strip()[:80]}")
    return result


def copy_sources(dockerfile: str) -> list[str]:
    """The context paths COPY and ADD read (a `--from=<stage>` copy reads another stage, not the context)."""
    sources = []
    for keyword, args in instructions(dockerfile):
        words = args.split()
        if keyword in ("COPY", "ADD") and not any(word.startswith("--from=") for word in words):
            sources += [word for word in words if not word.startswith("--")][:-1]
    return sources


def context_files(root: Path, sources: Iterable[str]) -> list[str]:
    """The files under `sources` that git tracks or would add: what the build copies, caches left out."""
    argv = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *sources]
    result = subprocess.run(argv, cwd=root, capture_output=True, check=False)
    if result.returncode != 0:
        raise SetupError(
            f"git ls-files failed in {root}: images are keyed by tracked files, so build from a checkout"
        )
    return sorted(set(result.stdout.decode().split("\0")) - {""})


def image_key(root: Path, directory: str, *inputs: str) -> str:
    """A hash of every file the build reads (Dockerfile, ignore file, copied trees) and of its other `inputs`
    (reference, base image, wheelhouse): equal keys mean an equal image."""
    files = {f"{directory}/Dockerfile", f"{directory}/Dockerfile.dockerignore"}
    files.update(context_files(root, copy_sources((root / directory / "Dockerfile").read_text())))
    parts: list[str | bytes] = [BUILD_REVISION, *inputs]
    for name in sorted(files):
        path = root / name
        if path.is_file():  # a tracked file deleted in the work tree is not copied
            parts += [name, oct(path.stat().st_mode & 0o111), path.read_bytes()]
    return buildah.digest(*parts)[:16]


def bud_arguments(directory: Path, context: Path, base: str, wheelhouse: Path, reference: str) -> list[str]:
    """`buildah bud` for one of the repository's images: no network, the local base, pip on the wheelhouse."""
    return [
        "bud",
        "--isolation=oci",  # runc; chroot isolation cannot do --network=none
        "--network=none",
        "--pull=never",
        "--layers",  # a source change reruns only the steps after its COPY
        "--force-rm",
        "--file",
        str(directory / "Dockerfile"),
        "--ignorefile",
        str(directory / "Dockerfile.dockerignore"),
        "--build-arg",
        f"PYTHON_IMAGE={base}",
        "--build-arg",
        "PIP_NO_INDEX=1",
        "--build-arg",
        f"PIP_FIND_LINKS={WHEELHOUSE_MOUNT}",
        "--volume",
        f"{wheelhouse}:{WHEELHOUSE_MOUNT}:ro",
        "--tag",
        reference,
        str(context),
    ]


def ensure_image(name: str, log: Log | None = None, root: Path = REPO_ROOT) -> ImageRef:
    """The trainer or operator image as an OCI archive, built (a minute or two) only when an input changed."""
    log = log or buildah.stderr_log
    image = PROJECT_IMAGES[name]
    reference = image.reference()
    directory = root / image.directory
    requirements = directory / "requirements.txt"
    wheels = pythonbase.wheelhouse_key(requirements.read_text(), pythonbase.build_requires(root))
    archive = _archive(name, image_key(root, image.directory, reference, pythonbase.BASE.reference(), wheels))
    if archive.is_file():
        return _built(reference, archive)
    base = pythonbase.ensure_base(log)
    wheelhouse = pythonbase.ensure_wheelhouse(requirements, log, root=root)
    started = time.monotonic()
    log(f"building {reference} from {image.directory}/Dockerfile ...")
    buildah.build(reference, bud_arguments(directory, root, base, wheelhouse, reference), archive)
    log(f"built {reference} in {time.monotonic() - started:.0f}s")
    return _built(reference, archive)


# -- single-binary images -------------------------------------------------------------------------------------

PAUSE_CONTAINERFILE = """\
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
"""

# Non-root, like the upstream image (which binds port 53 by a file capability): the Corefile picks a port > 1024.
COREDNS_CONTAINERFILE = """\
FROM scratch
COPY coredns /coredns
USER 65532:65532
ENTRYPOINT ["/coredns"]
"""


def _binary(path: Path) -> bytes:
    if not path.is_file():
        raise SetupError(f"{path} does not exist: build it first (kubeloop-cluster build)")
    return path.read_bytes()


def _scratch_image(name: str, binary: Path, containerfile: str, reference: str, log: Log) -> ImageRef:
    """An image of one static binary. File times are fixed, so one binary always gives one digest."""
    archive = _archive(name, buildah.digest(BUILD_REVISION, containerfile, reference, _binary(binary))[:16])
    if archive.is_file():
        return _built(reference, archive)
    staging = buildah.images_dir() / "staging" / archive.stem
    buildah.remove_staging(staging)
    staging.mkdir(parents=True)
    try:
        shutil.copy2(binary, staging / name)
        (staging / "Containerfile").write_text(containerfile)
        bud = ["bud", "--network=none", "--pull=never", "--timestamp=0", "--tag", reference, str(staging)]
        buildah.build(reference, bud, archive)
    finally:
        buildah.remove_staging(staging)
    log(f"built {reference}")
    return _built(reference, archive)


def pause_image(binary: Path, log: Log | None = None) -> ImageRef:
    """containerd's sandbox image, tagged with a hash of the binary."""
    tag = buildah.digest(PAUSE_CONTAINERFILE, _binary(binary))[:12]
    reference = f"localhost/kubeloop/pause:{tag}"
    return _scratch_image("pause", binary, PAUSE_CONTAINERFILE, reference, log or buildah.stderr_log)


def coredns_image(binary: Path, version: str | None = None, log: Log | None = None) -> ImageRef:
    """CoreDNS, tagged with its pinned version (by default the toolchain's)."""
    reference = f"localhost/kubeloop/coredns:{version or toolchain.TOOLS['coredns'].version()}"
    return _scratch_image("coredns", binary, COREDNS_CONTAINERFILE, reference, log or buildah.stderr_log)


def ensure_all(log: Log | None = None) -> dict[str, ImageRef]:
    """Every image the local node runs, keyed by name: trainer, operator, pause, coredns."""
    refs = {name: ensure_image(name, log) for name in PROJECT_IMAGES}
    refs["pause"] = pause_image(toolchain.binary("pause"), log)
    refs["coredns"] = coredns_image(toolchain.binary("coredns"), log=log)
    return refs


# -- containerd -----------------------------------------------------------------------------------------------


def _ctr(socket: Path, *args: str) -> str:
    argv = [buildah.tool("ctr", "containerd"), "--address", str(socket), "--namespace", "k8s.io", *args]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SetupError(
            f"ctr {' '.join(args[:2])} on {socket} failed: {tail}; is the cluster's containerd up?"
        )
    return result.stdout


def containerd_digest(reference: str, containerd_socket: Path) -> str | None:
    """The digest containerd's `k8s.io` namespace holds under `reference`, or None."""
    for line in _ctr(containerd_socket, "images", "list").splitlines()[1:]:  # REF TYPE DIGEST SIZE ...
        fields = line.split()
        if fields and fields[0] == reference:
            return fields[2]
    return None


def load(archive: Path, reference: str, containerd_socket: Path) -> bool:
    """Import an OCI archive into containerd's `k8s.io` namespace as `reference`, unpacked for the kubelet.

    Returns False, having done nothing, when containerd already holds `reference` at the archive's digest.
    """
    digest = buildah.archive_digest(archive)
    if containerd_digest(reference, containerd_socket) == digest:
        return False
    repository, _, _ = (
        reference.rpartition(":") if ":" in reference.rsplit("/", 1)[-1] else (reference, "", "")
    )
    # --base-name imports only the archive's images named <repository>:<tag>, so nothing else sneaks in.
    _ctr(containerd_socket, "images", "import", "--base-name", repository, str(archive))
    if containerd_digest(reference, containerd_socket) != digest:
        raise SetupError(
            f"containerd did not take {archive} as {reference}: delete the archive and run again"
        )
    return True
