"""Build the upstream binaries from their Go modules, once, into a cache keyed by version.

Each tool has a tiny module under `cluster/tools/<name>/` (a go.mod that requires, and for Kubernetes replaces,
the upstream modules, plus its go.sum). No upstream source lives in the repository: `go build` fetches the
modules from the Go module proxy. The cache key is the module's pinned version plus a hash of go.mod, go.sum,
the Go version and the link flags, so a second run builds nothing and a version bump builds afresh.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from kubeloop_cluster.errors import SetupError
from kubeloop_cluster.paths import TOOLS_SOURCES, tools_root


@dataclass(frozen=True)
class GoTool:
    """One tool module: which upstream module it pins, and which commands it builds under which names."""

    module_dir: str
    upstream: str  # "" for the project's own module (the pause binary): its version is its content hash
    commands: dict[str, str]  # binary name -> Go package
    version_flags: tuple[str, ...] = field(default=())  # `-X` variables that take the pinned version

    @property
    def source(self) -> Path:
        return TOOLS_SOURCES / self.module_dir

    def version(self) -> str:
        if not self.upstream:
            return "local"
        gomod = (self.source / "go.mod").read_text()
        match = re.search(rf"^\s*(?:require\s+)?{re.escape(self.upstream)}\s+(v\S+)", gomod, re.M)
        if not match:
            raise SetupError(f"{self.source}/go.mod does not require {self.upstream}; restore it from git")
        return match.group(1)

    def ldflags(self) -> str:
        version = self.version()
        flags = ["-s", "-w"]
        for variable in self.version_flags:
            value = version
            if variable.endswith("gitMajor"):
                value = version.lstrip("v").split(".")[0]
            elif variable.endswith("gitMinor"):
                value = version.lstrip("v").split(".")[1]
            elif variable.endswith("gitTreeState"):
                value = "clean"
            flags.append(f"-X {variable}={value}")
        return " ".join(flags)


_K8S_VERSION_VARS = tuple(
    f"{package}.{name}"
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
    for name in ("gitVersion", "gitMajor", "gitMinor", "gitTreeState")
)

TOOLS: dict[str, GoTool] = {
    "kubernetes": GoTool(
        module_dir="kubernetes",
        upstream="k8s.io/kubernetes",
        commands={
            "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
            "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
            "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
            "kubectl": "k8s.io/kubernetes/cmd/kubectl",
            "kubelet": "k8s.io/kubernetes/cmd/kubelet",
            "kube-proxy": "k8s.io/kubernetes/cmd/kube-proxy",
        },
        version_flags=_K8S_VERSION_VARS,
    ),
    "etcd": GoTool(
        module_dir="etcd",
        upstream="go.etcd.io/etcd/server/v3",
        commands={"etcd": "go.etcd.io/etcd/server/v3"},
    ),
    "helm": GoTool(
        module_dir="helm",
        upstream="helm.sh/helm/v3",
        commands={"helm": "helm.sh/helm/v3/cmd/helm"},
        version_flags=("helm.sh/helm/v3/internal/version.version",),
    ),
    "versitygw": GoTool(
        module_dir="versitygw",
        upstream="github.com/versity/versitygw",
        commands={"versitygw": "github.com/versity/versitygw/cmd/versitygw"},
    ),
    "cni": GoTool(
        module_dir="cni",
        upstream="github.com/containernetworking/plugins",
        commands={
            plugin.rsplit("/", 1)[1]: f"github.com/containernetworking/plugins/plugins/{plugin}"
            for plugin in ("main/bridge", "ipam/host-local", "main/loopback", "meta/portmap")
        },
    ),
    "crictl": GoTool(
        module_dir="crictl",
        upstream="sigs.k8s.io/cri-tools",
        commands={"crictl": "sigs.k8s.io/cri-tools/cmd/crictl"},
    ),
    "coredns": GoTool(
        module_dir="coredns",
        upstream="github.com/coredns/coredns",
        commands={"coredns": "github.com/coredns/coredns"},
    ),
    "pause": GoTool(module_dir="pause", upstream="", commands={"pause": "."}),
}

BINARIES: dict[str, str] = {binary: tool for tool, spec in TOOLS.items() for binary in spec.commands}


def _go() -> str:
    go = shutil.which("go")
    if not go:
        raise SetupError(
            "Go is not installed, and the local cluster builds kube-apiserver and friends from their Go modules: "
            "install Go >= 1.24 (apt-get install golang-go, or https://go.dev/dl) and run again"
        )
    return go


def _go_version(go: str) -> str:
    return subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()


def cache_dir(name: str, go: str | None = None) -> Path:
    tool = TOOLS[name]
    go = go or _go()
    digest = hashlib.sha256()
    for part in sorted(tool.source.iterdir()):  # go.mod, go.sum and the Go files that name the commands
        digest.update(part.name.encode() + b"\0" + part.read_bytes())
    digest.update(_go_version(go).encode())
    digest.update(tool.ldflags().encode())
    return tools_root() / f"{name}-{tool.version()}-{digest.hexdigest()[:12]}"


def _build(name: str, go: str, target: Path, log) -> None:
    tool = TOOLS[name]
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    log_path = target.with_name(target.name + ".build.log")
    env = {**os.environ, "CGO_ENABLED": os.environ.get("CGO_ENABLED", "0")}
    for binary, package in tool.commands.items():
        started = time.monotonic()
        log(f"building {binary} {tool.version()} from {package} (cold builds take minutes) ...")
        with log_path.open("a") as out:
            result = subprocess.run(
                [
                    go,
                    "build",
                    "-trimpath",
                    f"-ldflags={tool.ldflags()}",
                    "-o",
                    str(staging / binary),
                    package,
                ],
                cwd=tool.source,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if result.returncode != 0:
            tail = log_path.read_text().strip().splitlines()[-1:] or ["(no output)"]
            raise SetupError(f"building {binary} failed: {tail[0]} (full log: {log_path})")
        log(f"built {binary} in {time.monotonic() - started:.0f}s")
    staging.rename(target)  # atomic: a half-built directory is never mistaken for a cached one


def ensure(name: str, log=None) -> Path:
    """The directory holding the tool's binaries, building them first if the cache does not have them."""
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    go = _go()
    target = cache_dir(name, go)
    if not target.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
        _build(name, go, target, log)
    return target


def ensure_all(log=None) -> dict[str, Path]:
    """Paths of every binary, keyed by binary name."""
    dirs = {name: ensure(name, log) for name in TOOLS}
    return {binary: dirs[tool] / binary for binary, tool in BINARIES.items()}


def binary(name: str) -> Path:
    """The path of one built binary, e.g. `binary("helm")`; builds its tool if needed."""
    if name not in BINARIES:
        raise SetupError(f"unknown tool {name!r}; known: {', '.join(sorted(BINARIES))}")
    return ensure(BINARIES[name]) / name
