"""Start one container process: join the pod network, mount the pod's volumes at their paths, then exec.

Run by the agent as `python -m kubeloop_cluster.agent.launch SPEC.json`. The private mount namespace lets the
command see `/dev/termination-log`, `/var/run/secrets/kubernetes.io/serviceaccount` or `/etc/kubeloop` exactly
where the pod spec puts them, without touching what other pods see. The process then becomes the command
itself (exec), so its pid, signals and exit code are the container's.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1
_CLONE_NEWNS, _CLONE_NEWNET = 0x00020000, 0x40000000
_MS_RDONLY, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str, target: str, read_only: bool) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    elif not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()  # a bind mount of a file needs a file to cover
    _check(_libc.mount(source.encode(), target.encode(), None, _MS_BIND, None), f"bind {source} on {target}")
    if read_only:
        flags = _MS_BIND | _MS_REMOUNT | _MS_RDONLY
        _check(_libc.mount(None, target.encode(), None, flags, None), f"remount {target} read-only")


def _keep_visible(paths: list[str], mounts: list[dict]) -> list[tuple[int, str]]:
    """Open the project's paths that a volume is about to cover (a clone under /tmp, with an emptyDir at /tmp),
    so they can be bound back on top: the container runs the project's own virtualenv and sources."""
    covered = [path for path in paths if any(path.startswith(m["target"].rstrip("/") + "/") for m in mounts)]
    return [(os.open(path, os.O_PATH | os.O_DIRECTORY), path) for path in covered]


def main(spec_path: str) -> None:
    with open(spec_path) as handle:
        spec = json.load(handle)
    # Die with the agent: a killed agent must not leave container processes behind.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if spec.get("netns"):  # join the node's pod network, where this pod's IP lives
        fd = os.open(spec["netns"], os.O_RDONLY)
        _check(_libc.setns(fd, _CLONE_NEWNET), f"join network namespace {spec['netns']}")
        os.close(fd)
    if spec["mounts"]:
        _check(_libc.unshare(_CLONE_NEWNS), "unshare the mount namespace")
        _check(_libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "make / private")
        kept = _keep_visible(spec.get("keepVisible", []), spec["mounts"])
        for mount in spec["mounts"]:
            _mount(mount["source"], mount["target"], mount["readOnly"])
        for fd, path in kept:
            _mount(f"/proc/self/fd/{fd}", path, read_only=False)
            os.close(fd)
    os.chdir(spec["cwd"])
    try:
        os.execvpe(spec["argv"][0], spec["argv"], spec["env"])
    except OSError as error:
        message = f"cannot start {spec['argv'][0]!r}: {error.strerror}"
        print(message, file=sys.stderr, flush=True)
        with open(spec["terminationLog"], "w") as log:
            log.write(message)
        sys.exit(127)


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except OSError as error:
        print(f"container setup failed: {error}", file=sys.stderr, flush=True)
        sys.exit(128)
