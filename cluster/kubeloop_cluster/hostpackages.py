"""The Debian packages the local cluster needs on the host, installed by `make tools` when they are missing.

Debian's policy-rc.d keeps the packages from starting their daemons; the cluster runs its own containerd.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from kubeloop_cluster.errors import SetupError

# command -> the Debian package that provides it
COMMANDS = {
    "containerd": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "nft": "nftables",
    "iptables": "iptables",
    "conntrack": "conntrack",
    "nsenter": "util-linux",
    "ip": "iproute2",
    "buildah": "buildah",
    "debootstrap": "debootstrap",
}


def missing() -> list[str]:
    return sorted({package for command, package in COMMANDS.items() if shutil.which(command) is None})


def ensure(log) -> None:
    """Install what is missing with apt-get (as root), or fail with one line naming the packages."""
    packages = missing()
    if not packages:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SetupError(
            f"the local cluster needs these Debian packages: apt-get install {' '.join(packages)}"
        )
    log(f"installing Debian packages: {' '.join(packages)} ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise SetupError(f"`{' '.join(command[:2])}` failed for {' '.join(packages)}: {tail[0]}")
    still = missing()
    if still:
        raise SetupError(f"apt-get installed nothing that provides: {' '.join(still)}")
