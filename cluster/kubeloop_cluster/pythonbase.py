"""What the project's Dockerfiles build on here: a Debian base image with Debian's Python, and a wheelhouse.

The base is the local stand-in for the Dockerfiles' `PYTHON_IMAGE` build argument (users keep
`python:3.11-slim`): `debootstrap --variant=minbase` with python3 and python3-venv, trimmed, plus the `python`
name the Dockerfiles call. The build has no network, so the pinned wheels are downloaded on the host first, for
the base's Python and glibc. Both are cached: the base by its recipe, a wheelhouse by what it is resolved from.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import tomllib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from kubeloop_cluster import buildah
from kubeloop_cluster.buildah import Log
from kubeloop_cluster.errors import SetupError
from kubeloop_cluster.paths import REPO_ROOT

CONTAINERFILE = """\
FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
CMD ["python3"]
"""

# Emptied in the rootfs: apt's package lists and downloaded packages, manuals and translations.
_TRIMMED = ("var/lib/apt/lists", "var/cache/apt", "usr/share/man", "usr/share/info", "usr/share/locale")
# Deleted: debootstrap's log, and the host's resolv.conf and hostname it copied in (the runtime provides both).
_DROPPED = ("var/log/bootstrap.log", "etc/resolv.conf", "etc/hostname")


@dataclass(frozen=True)
class BaseRecipe:
    """`debootstrap --variant=minbase --include=<packages> <suite> <dir> <mirror>`, trimmed, plus `python`."""

    suite: str = "bookworm"
    mirror: str = "http://deb.debian.org/debian"
    packages: tuple[str, ...] = ("python3", "python3-venv")
    python: str = "3.11"  # the suite's python3: the wheelhouse is resolved for it
    glibc: tuple[int, int] = (2, 36)  # the suite's libc6: the newest manylinux tag its wheels may carry
    revision: str = "1"  # bump when _make_rootfs changes what the image holds

    def key(self) -> str:
        return buildah.digest(json.dumps(asdict(self), sort_keys=True), CONTAINERFILE)[:12]

    def reference(self) -> str:
        return f"localhost/kubeloop/python-base:{self.key()}"


BASE = BaseRecipe()


def _make_rootfs(recipe: BaseRecipe, rootfs: Path, log_path: Path) -> None:
    debootstrap = buildah.tool("debootstrap", "debootstrap")
    argv = [debootstrap, "--variant=minbase", f"--include={','.join(recipe.packages)}", recipe.suite]
    buildah.run([*argv, str(rootfs), recipe.mirror], log_path, f"debootstrap of {recipe.suite}")
    for relative in _TRIMMED:
        for child in (rootfs / relative).glob("*"):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    for relative in _DROPPED:
        (rootfs / relative).unlink(missing_ok=True)
    # The Dockerfiles run `python -m venv`, as on the official images; Debian names the interpreter python3.
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
    log = log or buildah.stderr_log
    reference = recipe.reference()
    if buildah.image_id(reference):
        return reference
    if os.geteuid() != 0:
        raise SetupError("the base image is made with debootstrap, which needs root: run as root")
    started = time.monotonic()
    log(f"building the base image {reference} (debootstrap {recipe.suite}, about a minute) ...")
    staging = buildah.images_dir() / f"base-{recipe.key()}.partial"
    log_path = buildah.images_dir() / f"base-{recipe.key()}.log"
    buildah.remove_staging(staging)
    (staging / "rootfs").mkdir(parents=True)
    try:
        _make_rootfs(recipe, staging / "rootfs", log_path)
        # Devices and kernel filesystems come from the runtime; --one-file-system skips anything left mounted.
        pack = ["tar", "--numeric-owner", "--one-file-system", "--exclude=./dev/*", "--exclude=./proc/*"]
        pack += ["--exclude=./sys/*", "-C", str(staging / "rootfs"), "-cf", str(staging / "rootfs.tar"), "."]
        buildah.run(pack, log_path, "packing the base rootfs")
        (staging / "Containerfile").write_text(CONTAINERFILE)
        bud = buildah.command("bud", "--network=none", "--pull=never", "--tag", reference, str(staging))
        buildah.run(bud, log_path, f"importing {reference}")
    finally:
        buildah.remove_staging(staging)
    log(f"built {reference} in {time.monotonic() - started:.0f}s")
    return reference


def build_requires(root: Path = REPO_ROOT) -> list[str]:
    """kubeloop's own build requirements: `pip install /src` builds it in an isolated environment."""
    return tomllib.loads((root / "pyproject.toml").read_text())["build-system"]["requires"]


def pip_target(recipe: BaseRecipe = BASE) -> list[str]:
    """`pip download` flags for wheels that run on the base: its CPython, and every manylinux tag its glibc meets
    (pip on the host would otherwise pick wheels for the host's own Python and glibc)."""
    major, minor = recipe.glibc
    platforms = [f"manylinux_{major}_{m}_x86_64" for m in range(minor, 4, -1)]
    platforms += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"]
    target = ["--only-binary=:all:", "--python-version", recipe.python, "--implementation", "cp"]
    target += ["--abi", "cp" + recipe.python.replace(".", "")]
    for platform in platforms:
        target += ["--platform", platform]
    return target


def wheelhouse_key(requirements: str, requires: Iterable[str], recipe: BaseRecipe = BASE) -> str:
    return buildah.digest(requirements, *requires, *pip_target(recipe))[:16]


def ensure_wheelhouse(
    requirements: Path, log: Log | None = None, recipe: BaseRecipe = BASE, root: Path = REPO_ROOT
) -> Path:
    """A directory with every wheel `requirements` pins, plus kubeloop's build requirements."""
    log = log or buildah.stderr_log
    requires = build_requires(root)
    target = buildah.images_dir() / "wheelhouse" / wheelhouse_key(requirements.read_text(), requires, recipe)
    if target.is_dir():
        return target
    started = time.monotonic()
    log(f"downloading the wheels of {requirements} ...")
    staging = target.with_name(target.name + ".partial")
    buildah.remove_staging(staging)
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", *pip_target(recipe)]
    argv += ["--requirement", str(requirements), *requires, "--dest", str(staging)]
    buildah.run(argv, target.with_name(target.name + ".log"), f"pip download for {requirements}")
    staging.rename(target)
    log(f"downloaded {len(list(target.iterdir()))} wheels in {time.monotonic() - started:.0f}s")
    return target
