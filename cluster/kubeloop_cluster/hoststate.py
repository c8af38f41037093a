"""What a real node changes on its host, and how `cluster-down` puts it back.

The kubelet sets three kernel settings for the whole host (`vm.overcommit_memory=1`, `kernel.panic=10`,
`kernel.panic_on_oops=1`), creates cgroups under its cgroup root in every hierarchy, and leaves mounts
under its root directory (volumes) and containerd's (container root filesystems). Firewall rules, the
bridge and IP forwarding stay inside the node's network namespace (see nodenet), which `down` deletes.

Several local clusters may run at once (the test session's and the demo's): the host's own sysctl values are
recorded by the first to start and restored by the last to stop.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

KUBELET_SYSCTLS = ("vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops")
_CGROUP_FS = Path("/sys/fs/cgroup")


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def read_sysctls(keys=KUBELET_SYSCTLS) -> dict[str, str]:
    return {key: _sysctl_path(key).read_text().strip() for key in keys}


def record_sysctls(record: Path) -> None:
    """Keep the host's values, unless another running cluster already kept them (its kubelet changed them)."""
    if not record.exists():
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(read_sysctls()))


def restore_sysctls(record: Path) -> None:
    if not record.exists():
        return
    for key, value in json.loads(record.read_text()).items():
        _sysctl_path(key).write_text(value)
    record.unlink()


def mounts_under(*roots: Path) -> list[str]:
    """Mount points below any of `roots`, deepest first (the order they can be unmounted in)."""
    prefixes = [str(root.resolve()).rstrip("/") + "/" for root in roots]
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point.startswith(prefix) or point + "/" == prefix for prefix in prefixes):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def unmount_under(*roots: Path) -> None:
    for _ in range(3):  # a lazy unmount of a parent can reveal nothing new, but shared mounts may linger
        points = mounts_under(*roots)
        if not points:
            return
        for point in points:
            subprocess.run(["umount", "-l", point], capture_output=True)


def make_cgroups(root_name: str) -> None:
    """The kubelet's cgroup root must exist in every v1 hierarchy before it starts; a cpuset cgroup starts
    with no CPUs and no memory nodes, so it gets its parent's."""
    for hierarchy in _CGROUP_FS.iterdir():
        if hierarchy.name == "unified" or hierarchy.is_symlink() or not (hierarchy / "cgroup.procs").exists():
            continue
        top = hierarchy / root_name.strip("/")
        top.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if (top / name).exists() and not (top / name).read_text().strip():
                (top / name).write_text((hierarchy / name).read_text())


def remove_cgroups(root_name: str) -> None:
    """Remove the cgroup tree `/<root_name>` from every hierarchy, leaves first, once its tasks are gone."""
    for hierarchy in _CGROUP_FS.iterdir():
        top = hierarchy / root_name.strip("/")
        if not top.is_dir():
            continue
        for directory, _subdirs, _files in sorted(os.walk(top), key=lambda w: w[0].count("/"), reverse=True):
            for attempt in range(50):
                try:
                    os.rmdir(directory)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1 if attempt < 49 else 0)  # tasks still exiting
