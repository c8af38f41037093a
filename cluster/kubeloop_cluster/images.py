"""Build the project's container images with buildah, without a registry and without network in the build.

Four cached pieces, each skipped when its key is already there:

- the base image: Debian minbase with Debian's python3 (debootstrap), the local stand-in for the Dockerfiles'
  `PYTHON_IMAGE` build argument (users keep `python:3.11-slim`); keyed by its recipe;
- a wheelhouse per requirements.txt, downloaded on the host with pip, because the build has no route to PyPI;
  keyed by the requirements, kubeloop's own build requirements and the target Python and glibc;
- the trainer and operator images, built from their unchanged Dockerfiles with `--network=none`, pip pointed
  at the wheelhouse through build arguments, and exported as OCI archives; keyed by every file the build reads;
- the pause (sandbox) and CoreDNS images, `FROM scratch` around one static binary.

`load` imports an archive into containerd's `k8s.io` namespace unless containerd has that reference at that
digest already. buildah's storage lives under the cache root, never in /var/lib/containers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml
from kubeloop.settings import Settings

from kubeloop_cluster import toolchain
from kubeloop_cluster.errors import SetupError
from kubeloop_cluster.paths import REPO_ROOT, cache_root

Log = Callable[[str], None]

WHEELHOUSE_MOUNT = "/wheelhouse"  # where a build's RUN steps see the wheelhouse (read-only)
BUILD_REVISION = "1"  # bump when the build flags below change what an image holds


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _digest(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class ImageRef:
    """A built image: the name it is loaded as, its OCI archive, and its manifest digest."""

    reference: str
    archive: Path
    digest: str


@dataclass(frozen=True)
class BaseRecipe:
    """The base image: `debootstrap --variant=minbase --include=<packages> <suite>`, trimmed, plus `python`."""

    suite: str = "bookworm"
    mirror: str = "http://deb.debian.org/debian"
    packages: tuple[str, ...] = ("python3", "python3-venv")
    python: str = "3.11"  # the suite's python3: the wheelhouse is resolved for it
    glibc: tuple[int, int] = (2, 36)  # the suite's libc6: the newest manylinux tag its wheels may carry
    revision: str = "1"  # bump when _make_rootfs or BASE_CONTAINERFILE change what the image holds

    def key(self) -> str:
        return _digest(json.dumps(asdict(self), sort_keys=True), BASE_CONTAINERFILE)[:12]

    def reference(self) -> str:
        return f"localhost/kubeloop/python-base:{self.key()}"


BASE = BaseRecipe()

BASE_CONTAINERFILE = """\
FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
CMD ["python3"]
"""

# Emptied in the rootfs: apt's package lists and downloaded packages, manuals and translations.
_TRIMMED = ("var/lib/apt/lists", "var/cache/apt", "usr/share/man", "usr/share/info", "usr/share/locale")
# Deleted: debootstrap's log, and the host's resolv.conf and hostname that it copied in (the runtime provides both).
_DROPPED = ("var/log/bootstrap.log", "etc/resolv.conf", "etc/hostname")


# -- paths and commands -------------------------------------------------------------------------------------


def images_root() -> Path:
    return cache_root() / "images"


def buildah_root() -> Path:
    return cache_root() / "buildah"


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if not path:
        raise SetupError(
            f"{name} is not installed, and the local images are built with it: apt-get install {package}"
        )
    return path


def _buildah(*args: str) -> list[str]:
    root = buildah_root()
    return [
        _tool("buildah", "buildah"),
        "--root",
        str(root / "storage"),
        "--runroot",
        str(root / "run"),
        "--storage-driver",
        "overlay",
        *args,
    ]


def _run(command: list[str], log_path: Path, what: str) -> None:
    """Run a step with its output appended to `log_path`; a failure is one line naming the log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = buildah_root() / "tmp"  # buildah stages exports in $TMPDIR: keep them in the cache, not /var/tmp
    tmp.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        result = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "TMPDIR": str(tmp)}, check=False
        )
    if result.returncode != 0:
        tail = log_path.read_text().strip().splitlines()[-1:] or ["(no output)"]
        raise SetupError(f"{what} failed: {tail[0]} (full log: {log_path})")


def _image_id(reference: str) -> str | None:
    """The ID of the image buildah's storage holds under `reference`, or None."""
    command = _buildah("inspect", "--type", "image", "--format", "{{.FromImageID}}", reference)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")  # mountinfo escapes spaces as \040
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def _remove(path: Path) -> None:
    """Delete a staging directory, unmounting first whatever a killed debootstrap left mounted in it."""
    if not path.exists():
        return
    for point in _mounts_under(path):
        subprocess.run(["umount", point], capture_output=True, check=False)
    if left := _mounts_under(path):
        raise SetupError(f"{left[0]} is still mounted, so {path} cannot be deleted: umount it and run again")
    shutil.rmtree(path)


def archive_digest(archive: Path) -> str:
    """The manifest digest in an OCI archive's index.json: what containerd records for the imported image."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise SetupError(f"{archive} has no index.json; delete it and run again")
        manifests = json.load(member)["manifests"]
    if len(manifests) != 1:
        raise SetupError(f"{archive} holds {len(manifests)} manifests, not one; delete it and run again")
    return manifests[0]["digest"]


def _export(reference: str, archive: Path, log_path: Path) -> ImageRef:
    """Write the image as an OCI archive named `reference` (atomically), and drop older archives of it."""
    partial = archive.with_name(archive.name + ".partial")
    partial.unlink(missing_ok=True)
    archive.parent.mkdir(parents=True, exist_ok=True)
    _run(
        _buildah("push", "--quiet", reference, f"oci-archive:{partial}:{reference}"),
        log_path,
        f"exporting {reference}",
    )
    partial.rename(archive)
    name = archive.stem.rsplit("-", 1)[0]
    for older in archive.parent.glob(f"{name}-*"):
        if older.stem != archive.stem:
            older.unlink()
    return ImageRef(reference, archive, archive_digest(archive))


# -- the base image -----------------------------------------------------------------------------------------


def _make_rootfs(recipe: BaseRecipe, rootfs: Path, log_path: Path) -> None:
    _run(
        [
            _tool("debootstrap", "debootstrap"),
            "--variant=minbase",
            f"--include={','.join(recipe.packages)}",
            recipe.suite,
            str(rootfs),
            recipe.mirror,
        ],
        log_path,
        f"debootstrap of {recipe.suite}",
    )
    for relative in _TRIMMED:
        for child in (rootfs / relative).glob("*"):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    for relative in _DROPPED:
        (rootfs / relative).unlink(missing_ok=True)
    # The Dockerfiles run `python -m venv`, like the official images; Debian names the interpreter python3.
    python = rootfs / "usr/bin/python"
    if not python.is_symlink() and not python.exists():
        python.symlink_to("python3")
    needed = [
        "usr/bin/python3",
        "usr/sbin/useradd",
        "usr/sbin/groupadd",
        f"usr/lib/python{recipe.python}/venv",
    ]
    missing = [path for path in needed if not (rootfs / path).exists()]
    if missing:
        raise SetupError(
            f"the {recipe.suite} base lacks {', '.join(missing)}: add its package to BaseRecipe.packages"
        )


def ensure_base(log: Log | None = None, recipe: BaseRecipe = BASE) -> str:
    """The base image's reference in buildah's storage, built first (about a minute) if it is not there."""
    log = log or _stderr
    reference = recipe.reference()
    if _image_id(reference):
        return reference
    if os.geteuid() != 0:
        raise SetupError("the base image is made with debootstrap, which needs root: run as root")
    started = time.monotonic()
    log(f"building the base image {reference} (debootstrap {recipe.suite}, about a minute) ...")
    staging = images_root() / f"base-{recipe.key()}.partial"
    log_path = images_root() / f"base-{recipe.key()}.log"
    _remove(staging)
    (staging / "rootfs").mkdir(parents=True)
    try:
        _make_rootfs(recipe, staging / "rootfs", log_path)
        # Devices and kernel filesystems come from the runtime; --one-file-system skips anything left mounted.
        pack = ["tar", "--numeric-owner", "--one-file-system", "--exclude=./dev/*", "--exclude=./proc/*"]
        pack += ["--exclude=./sys/*", "-C", str(staging / "rootfs"), "-cf", str(staging / "rootfs.tar"), "."]
        _run(pack, log_path, "packing the base rootfs")
        (staging / "Containerfile").write_text(BASE_CONTAINERFILE)
        _run(
            _buildah("bud", "--network=none", "--pull=never", "--tag", reference, str(staging)),
            log_path,
            f"importing {reference}",
        )
    finally:
        _remove(staging)
    log(f"built {reference} in {time.monotonic() - started:.0f}s")
    return reference


# -- the wheelhouse -----------------------------------------------------------------------------------------


def build_requires(root: Path = REPO_ROOT) -> list[str]:
    """kubeloop's own build requirements (`pip install /src` builds it in an isolated environment)."""
    return tomllib.loads((root / "pyproject.toml").read_text())["build-system"]["requires"]


def pip_target(recipe: BaseRecipe = BASE) -> list[str]:
    """`pip download` flags for wheels that run on the base: its CPython, and every manylinux tag its glibc meets."""
    major, minor = recipe.glibc
    platforms = [f"manylinux_{major}_{m}_x86_64" for m in range(minor, 4, -1)]
    platforms += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    abi = "cp" + recipe.python.replace(".", "")
    target = [
        "--only-binary=:all:",
        "--python-version",
        recipe.python,
        "--implementation",
        "cp",
        "--abi",
        abi,
    ]
    for platform in platforms:
        target += ["--platform", platform]
    return target


def wheelhouse_key(requirements: str, requires: Iterable[str], recipe: BaseRecipe = BASE) -> str:
    return _digest(requirements, *requires, *pip_target(recipe))[:16]


def ensure_wheelhouse(
    requirements: Path, log: Log | None = None, recipe: BaseRecipe = BASE, root: Path = REPO_ROOT
) -> Path:
    """A directory with every wheel `requirements` pins, plus kubeloop's build requirements."""
    log = log or _stderr
    requires = build_requires(root)
    target = images_root() / "wheelhouse" / wheelhouse_key(requirements.read_text(), requires, recipe)
    if target.is_dir():
        return target
    started = time.monotonic()
    log(f"downloading the wheels of {requirements} ...")
    staging = target.with_name(target.name + ".partial")
    _remove(staging)
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", *pip_target(recipe)]
    command += ["--requirement", str(requirements), *requires, "--dest", str(staging)]
    _run(command, target.with_name(target.name + ".log"), f"pip download for {requirements}")
    staging.rename(target)
    log(f"downloaded {len(list(target.iterdir()))} wheels in {time.monotonic() - started:.0f}s")
    return target


# -- the project's images -----------------------------------------------------------------------------------


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

    name: str
    directory: str
    reference: Callable[[], str]


PROJECT_IMAGES = {
    "trainer": ProjectImage("trainer", "trainer-image", trainer_reference),
    "operator": ProjectImage("operator", "operator-image", operator_reference),
}


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """A Dockerfile's (KEYWORD, arguments), continuation lines joined, comments dropped."""
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
        result.append((keyword.upper(), args.strip()))
        pending = ""
    return result


def copy_sources(dockerfile: str) -> list[str]:
    """The context paths that COPY and ADD read (a `--from=<stage>` copy reads another stage, not the context)."""
    sources = []
    for keyword, args in instructions(dockerfile):
        words = args.split()
        if keyword in ("COPY", "ADD") and not any(word.startswith("--from=") for word in words):
            sources += [word for word in words if not word.startswith("--")][:-1]
    return sources


def context_files(root: Path, sources: Iterable[str]) -> list[str]:
    """The files under `sources` that git tracks or would add: what the build copies, caches left out."""
    command = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *sources]
    result = subprocess.run(command, cwd=root, capture_output=True, check=False)
    if result.returncode != 0:
        raise SetupError(
            f"git ls-files failed in {root}: images are keyed by tracked files, so build from a checkout"
        )
    return sorted(set(result.stdout.decode().split("\0")) - {""})


def image_key(root: Path, directory: str, *build: str) -> str:
    """A hash of every file the image's build reads (Dockerfile, ignore file, copied trees) and of `build`, the
    build's other inputs (reference, base image, wheelhouse): equal keys mean an equal image."""
    dockerfile = root / directory / "Dockerfile"
    files = {f"{directory}/Dockerfile", f"{directory}/Dockerfile.dockerignore"}
    files.update(context_files(root, copy_sources(dockerfile.read_text())))
    parts: list[str | bytes] = [BUILD_REVISION, *build]
    for name in sorted(files):
        path = root / name
        if path.is_file():  # a tracked file deleted in the work tree is not copied
            parts += [name, oct(path.stat().st_mode & 0o111), path.read_bytes()]
    return _digest(*parts)[:16]


def bud_arguments(directory: Path, context: Path, base: str, wheelhouse: Path, reference: str) -> list[str]:
    """`buildah bud` for one project image: no network, the base as PYTHON_IMAGE, pip pointed at the wheelhouse."""
    return [
        "bud",
        "--isolation=oci",  # chroot isolation cannot do --network=none
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
    """The trainer or operator image as an OCI archive, built (minutes when cold) only if an input changed."""
    log = log or _stderr
    image = PROJECT_IMAGES[name]
    reference = image.reference()
    directory = root / image.directory
    requirements = directory / "requirements.txt"
    wheels = wheelhouse_key(requirements.read_text(), build_requires(root))
    key = image_key(root, image.directory, reference, BASE.reference(), wheels)
    archive = images_root() / "archives" / f"{name}-{key}.tar"
    if archive.is_file():
        return ImageRef(reference, archive, archive_digest(archive))
    base = ensure_base(log)
    wheelhouse = ensure_wheelhouse(requirements, log, root=root)
    started = time.monotonic()
    log(f"building {reference} from {image.directory}/Dockerfile (minutes when cold) ...")
    log_path = archive.with_suffix(".log")
    replaced = _image_id(reference)
    _run(
        _buildah(*bud_arguments(directory, root, base, wheelhouse, reference)),
        log_path,
        f"building {reference}",
    )
    built = _export(reference, archive, log_path)
    if replaced and replaced != _image_id(reference):
        # Drop the image this build replaced (and the layers only it used): storage keeps one image per name,
        # plus the build stage's layers for the next build to reuse.
        subprocess.run(_buildah("rmi", replaced), capture_output=True, check=False)
    log(f"built {reference} in {time.monotonic() - started:.0f}s")
    return built


# -- single-binary images -----------------------------------------------------------------------------------

PAUSE_CONTAINERFILE = """\
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
"""

# Non-root like the upstream image (which listens on 53 by a file capability instead): the Corefile picks a port
# above 1024.
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
    """An image holding one static binary; file times are fixed, so one binary always gives one digest."""
    key = _digest(BUILD_REVISION, containerfile, reference, _binary(binary))[:16]
    archive = images_root() / "archives" / f"{name}-{key}.tar"
    if archive.is_file():
        return ImageRef(reference, archive, archive_digest(archive))
    staging = images_root() / f"{name}-{key}.partial"
    _remove(staging)
    staging.mkdir(parents=True)
    try:
        shutil.copy2(binary, staging / name)
        (staging / "Containerfile").write_text(containerfile)
        log_path = archive.with_suffix(".log")
        command = _buildah(
            "bud", "--network=none", "--pull=never", "--timestamp=0", "--tag", reference, str(staging)
        )
        _run(command, log_path, f"building {reference}")
        built = _export(reference, archive, log_path)
    finally:
        _remove(staging)
    log(f"built {reference}")
    return built


def pause_image(binary: Path, log: Log | None = None) -> ImageRef:
    """The sandbox image (containerd's `sandbox_image`), named by a hash of the binary."""
    key = _digest(PAUSE_CONTAINERFILE, _binary(binary))[:12]
    return _scratch_image(
        "pause", binary, PAUSE_CONTAINERFILE, f"localhost/kubeloop/pause:{key}", log or _stderr
    )


def coredns_image(binary: Path, version: str | None = None, log: Log | None = None) -> ImageRef:
    """CoreDNS for Service names, named by its pinned version (default: the toolchain's)."""
    version = version or toolchain.TOOLS["coredns"].version()
    reference = f"localhost/kubeloop/coredns:{version}"
    return _scratch_image("coredns", binary, COREDNS_CONTAINERFILE, reference, log or _stderr)


def ensure_all(log: Log | None = None) -> dict[str, ImageRef]:
    """Every image the local node runs, keyed by name: trainer, operator, pause, coredns."""
    refs = {name: ensure_image(name, log) for name in PROJECT_IMAGES}
    refs["pause"] = pause_image(toolchain.binary("pause"), log)
    refs["coredns"] = coredns_image(toolchain.binary("coredns"), log=log)
    return refs


# -- containerd -----------------------------------------------------------------------------------------------


def _ctr(socket: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [_tool("ctr", "containerd"), "--address", str(socket), "--namespace", "k8s.io", *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SetupError(
            f"ctr {args[0]} {args[1]} against {socket} failed: {tail}; is the cluster's containerd up?"
        )
    return result


def containerd_digest(reference: str, containerd_socket: Path) -> str | None:
    """The digest containerd's `k8s.io` namespace holds under `reference`, or None."""
    for line in _ctr(containerd_socket, "images", "list").stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == reference:
            return fields[2]
    return None


def load(archive: Path, reference: str, containerd_socket: Path) -> bool:
    """Import an OCI archive into containerd's `k8s.io` namespace as `reference`, unpacked for the kubelet.

    Returns False, having done nothing, when containerd already holds `reference` at the archive's digest.
    """
    digest = archive_digest(archive)
    if containerd_digest(reference, containerd_socket) == digest:
        return False
    repository = reference.rsplit(":", 1)[0] if ":" in reference.rsplit("/", 1)[-1] else reference
    _ctr(containerd_socket, "images", "import", "--base-name", repository, str(archive))
    if containerd_digest(reference, containerd_socket) != digest:
        raise SetupError(
            f"containerd did not take {archive} as {reference}; delete the archive and run again"
        )
    return True
