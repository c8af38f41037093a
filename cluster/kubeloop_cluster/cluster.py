"""The local cluster as one object: control plane, one real node and an object store, up and down together.

`make cluster-up`, `make cluster-down`, the demo and the pytest session fixture all go through `LocalCluster`.
Every program runs under one supervisor process (see supervisor), which restarts what exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from kubeloop_cluster import (
    controlplane,
    coredns,
    hostpackages,
    hoststate,
    images,
    node,
    nodenet,
    objectstore,
    pki,
    toolchain,
)
from kubeloop_cluster.errors import SetupError
from kubeloop_cluster.nodeconfig import NODE_NAME, kubeconfig
from kubeloop_cluster.nodenet import NodeNetwork
from kubeloop_cluster.objectstore import S3Store
from kubeloop_cluster.paths import cache_root, cluster_dir
from kubeloop_cluster.ports import LOOPBACK, free_port, require_free

__all__ = ["NODE_NAME", "LocalCluster"]

DEFAULT_BUCKET = "kubeloop"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a zombie child of ours is not alive
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


def _pgrep(pattern: str) -> list[int]:
    result = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(pid) for pid in result.stdout.split()]


def _sysctl_record() -> Path:
    return cache_root() / "host-sysctls.json"


class LocalCluster:
    """A real Kubernetes control plane with one real node (containerd, kubelet, kube-proxy) and an S3 store."""

    def __init__(self, name: str = "kubeloop", apiserver_port: int | None = None, s3_port: int | None = None):
        self.name = name
        self.dir = cluster_dir(name)
        self.kubeconfig = self.dir / "kubeconfig"
        self._state_file = self.dir / "cluster.json"
        self._apiserver_port = apiserver_port
        self._s3_port = s3_port
        self._binaries: dict[str, Path] | None = None

    # -- state ---------------------------------------------------------------------------------------------
    def _state(self) -> dict:
        return json.loads(self._state_file.read_text()) if self._state_file.exists() else {}

    def _save(self, state: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._state_file.write_text(json.dumps(state, indent=2))
        self._state_file.chmod(0o600)  # it holds the local store's credentials

    @property
    def binaries(self) -> dict[str, Path]:
        if self._binaries is None:
            self._binaries = toolchain.ensure_all()
        return self._binaries

    def tool(self, name: str) -> Path:
        return self.binaries[name]

    @property
    def network(self) -> NodeNetwork:
        return NodeNetwork(**self._state()["network"])

    @property
    def node_paths(self) -> node.NodePaths:
        return node.NodePaths.of(self.dir, self.name)

    @property
    def s3(self) -> S3Store:
        state = self._state().get("s3")
        if not state:
            raise SetupError(f"cluster {self.name!r} is not up: run `make cluster-up`")
        return S3Store(**state)

    def is_up(self) -> bool:
        state = self._state()
        return bool(state) and _alive(state.get("supervisor_pid", 0)) and self.ready()

    def ready(self) -> bool:
        if not self.kubeconfig.exists():
            return False
        result = self.kubectl("get", "--raw", "/readyz", check=False)
        return result.returncode == 0 and result.stdout.strip() == "ok"

    # -- lifecycle -----------------------------------------------------------------------------------------
    def up(self, log=None) -> LocalCluster:
        log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        hostpackages.ensure(log)
        binaries = self.binaries
        node_images = images.ensure_all(log)
        if self.is_up():
            log(f"cluster {self.name!r} is already up")
            return self
        self.down(quiet=True)  # clear what a crashed run left behind
        try:
            self._up(binaries, node_images, log)
        except BaseException:
            self.down(quiet=True)  # a failed `up` leaves the host as it found it
            raise
        return self

    def _up(self, binaries: dict[str, Path], node_images: dict[str, images.ImageRef], log) -> None:
        started = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        hoststate.record_sysctls(_sysctl_record())
        network = nodenet.create(self.name)
        hoststate.make_cgroups(node.cgroup_root(self.name))
        apiserver_port = require_free(
            self._apiserver_port or free_port(network.host_ip),
            "API server",
            "KUBELOOP_APISERVER_PORT",
            network.host_ip,
        )
        s3_port = require_free(
            self._s3_port or free_port(network.host_ip), "S3 store", "KUBELOOP_S3_PORT", network.host_ip
        )
        server = f"https://{network.host_ip}:{apiserver_port}"
        ca = self._write_pki(network)
        self._write_kubeconfigs(server, ca)
        paths = self.node_paths
        node.write_config(
            paths, network, binaries, self.dir / "pki", self.name, node_images["pause"].reference
        )
        s3_argv, s3_env, store = objectstore.prepare(
            binaries["versitygw"], self.dir / "s3", network.host_ip, s3_port, DEFAULT_BUCKET
        )
        cp_paths = controlplane.ControlPlanePaths(
            self.dir / "pki",
            self.dir / "etcd",
            self.dir / "kcm.kubeconfig",
            self.dir / "scheduler.kubeconfig",
        )
        programs = [
            *controlplane.programs(binaries, cp_paths, network, apiserver_port, (free_port(), free_port())),
            {"name": "s3", "argv": s3_argv, "env": s3_env},
            *node.programs(paths, network, binaries),
        ]
        state = {
            "name": self.name,
            "apiserver_port": apiserver_port,
            "network": network.to_dict(),
            "s3": store.to_dict(),
        }
        self._save(state)
        log(
            f"starting the control plane of {self.name!r} on {server} and node {NODE_NAME} on {network.node_ip} ..."
        )
        state["supervisor_pid"] = self._start_supervisor(programs)
        self._save(state)
        controlplane.wait_ready(binaries["kubectl"], self.kubeconfig)
        self._wait_socket(paths.socket)
        for image in node_images.values():
            images.load(image.archive, image.reference, paths.socket)
        self._wait_node_ready()
        self.apply_manifests(coredns.manifests(node_images["coredns"].reference, network.dns_ip))
        self.kubectl(
            "-n", coredns.NAMESPACE, "rollout", "status", f"deployment/{coredns.NAME}", "--timeout=120s"
        )
        log(
            f"cluster {self.name!r} is up in {time.monotonic() - started:.0f}s: node {NODE_NAME} Ready on "
            f"{network.node_ip}, pods in {network.pod_cidr}, Services in {network.service_cidr}, "
            f"S3 store at {store.endpoint_url}"
        )

    def _write_pki(self, network: NodeNetwork) -> Path:
        directory = self.dir / "pki"
        authority = pki.CertificateAuthority(directory)
        authority.issue(
            "apiserver",
            "kube-apiserver",
            server_names=(
                network.host_ip,
                network.apiserver_service_ip,
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
        )
        authority.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",))
        authority.issue(
            "kubelet-serving",
            f"system:node:{NODE_NAME}",
            ("system:nodes",),
            server_names=(network.node_ip, NODE_NAME),
        )
        for stem, user, groups in (
            ("admin", "kubernetes-admin", ("system:masters",)),
            ("kcm", "system:kube-controller-manager", ()),
            ("scheduler", "system:kube-scheduler", ()),
            ("kubelet", f"system:node:{NODE_NAME}", ("system:nodes",)),
            ("kube-proxy", "system:kube-proxy", ()),
        ):
            authority.issue(stem, user, groups)
        pki.service_account_keys(directory)
        return authority.cert_path

    def _write_kubeconfigs(self, server: str, ca: Path) -> None:
        pem = self.dir / "pki"
        paths = self.node_paths
        paths.dir.mkdir(parents=True, exist_ok=True)
        for stem, target in (
            ("admin", self.kubeconfig),
            ("kcm", self.dir / "kcm.kubeconfig"),
            ("scheduler", self.dir / "scheduler.kubeconfig"),
            ("kubelet", paths.kubelet_kubeconfig),
            ("kube-proxy", paths.proxy_kubeconfig),
        ):
            target.write_text(kubeconfig(server, ca, pem / f"{stem}.crt", pem / f"{stem}.key", stem))
            target.chmod(0o600)

    def _start_supervisor(self, programs: list[dict]) -> int:
        logs = self.dir / "logs"
        logs.mkdir(exist_ok=True)
        (self.dir / "hold").mkdir(exist_ok=True)
        for program in programs:
            program["log"] = str(logs / f"{program['name']}.log")
        spec = self.dir / "supervisor.json"
        spec.write_text(json.dumps({"programs": programs, "hold_dir": str(self.dir / "hold")}, indent=2))
        spec.chmod(0o600)  # it holds the store's credentials
        with (logs / "supervisor.log").open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "kubeloop_cluster.supervisor", str(spec)],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the cluster outlives `make cluster-up`
            )
        return process.pid

    def log_path(self, program: str) -> Path:
        return self.dir / "logs" / f"{program}.log"

    def _wait_socket(self, socket: Path, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if socket.exists():
                return
            time.sleep(0.2)
        raise SetupError(
            f"containerd did not open {socket} within {timeout:.0f}s (log: {self.log_path('containerd')})"
        )

    def _wait_node_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        jsonpath = '{.status.conditions[?(@.type=="Ready")].status}'
        while time.monotonic() < deadline:
            result = self.kubectl("get", "node", NODE_NAME, "-o", f"jsonpath={jsonpath}", check=False)
            if result.stdout.strip() == "True":
                return
            time.sleep(0.5)
        tail = self.log_path("kubelet").read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise SetupError(
            f"the kubelet did not report {NODE_NAME} Ready: {tail[0]} (log: {self.log_path('kubelet')})"
        )

    def apply_manifests(self, manifests: list[dict]) -> None:
        self.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(manifests))

    @contextlib.contextmanager
    def port_forward(self, namespace: str, target: str, port: int) -> Iterator[int]:
        """`kubectl port-forward` to `target` (e.g. `pod/x`, `svc/y`) on a free local port, for the block."""
        local = free_port()
        process = subprocess.Popen(
            [
                str(self.binaries["kubectl"]),
                f"--kubeconfig={self.kubeconfig}",
                "-n",
                namespace,
                "port-forward",
                f"--address={LOOPBACK}",
                target,
                f"{local}:{port}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            first = process.stdout.readline() if process.stdout else ""
            if not first.startswith("Forwarding from"):
                raise SetupError(f"kubectl port-forward {target} failed: {first.strip() or 'no output'}")
            yield local
        finally:
            process.terminate()
            process.wait(10)

    # -- faults, for tests -----------------------------------------------------------------------------------
    def hold(self, program: str) -> None:
        """Stop one program and keep it stopped (the supervisor sees the hold file) until `release`."""
        (self.dir / "hold" / program).touch()

    def release(self, program: str) -> None:
        (self.dir / "hold" / program).unlink(missing_ok=True)

    def down(self, quiet: bool = False) -> None:
        state = self._state()
        supervisor_pid = state.get("supervisor_pid", 0)
        if supervisor_pid and _alive(supervisor_pid):
            self._remove_pods()
            try:
                os.killpg(supervisor_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and _alive(supervisor_pid):
                time.sleep(0.1)
            try:
                os.killpg(supervisor_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._kill_node_leftovers()
        hoststate.unmount_under(self.dir, self.node_paths.containerd_root)
        hoststate.remove_cgroups(node.cgroup_root(self.name))
        nodenet.delete(self.name)
        if not self._others_running():
            hoststate.restore_sysctls(_sysctl_record())
        if self.dir.exists():
            subprocess.run(["rm", "-rf", "--one-file-system", str(self.dir)], capture_output=True)
        if not quiet:
            print(f"cluster {self.name!r} is down", file=sys.stderr)

    def _remove_pods(self) -> None:
        """Stop the kubelet, then every pod sandbox, while containerd still runs: volumes, netns and shims go."""
        socket = self.node_paths.socket
        self.hold("kubelet")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _pgrep(f"kubelet --config={self.node_paths.dir}"):
            time.sleep(0.2)
        if socket.exists():
            subprocess.run(
                [
                    str(self.binaries["crictl"]),
                    f"--runtime-endpoint=unix://{socket}",
                    "--timeout=30s",
                    "rmp",
                    "--all",
                    "--force",
                ],
                capture_output=True,
                timeout=120,
            )

    def _kill_node_leftovers(self) -> None:
        """Container shims and processes that outlived a crashed containerd: everything in the node's cgroups,
        and the shims that served its socket."""
        root = node.cgroup_root(self.name).strip("/")
        pids: set[int] = set()
        for hierarchy in ("pids", "memory", "cpu"):
            top = Path("/sys/fs/cgroup") / hierarchy / root
            if top.is_dir():
                for procs in top.rglob("cgroup.procs"):
                    pids.update(int(pid) for pid in procs.read_text().split())
        pids.update(_pgrep(f"containerd-shim.*{self.node_paths.socket}"))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _others_running(self) -> bool:
        clusters = cache_root() / "clusters"
        for state_file in clusters.glob("*/cluster.json") if clusters.is_dir() else ():
            if state_file.parent == self.dir:
                continue
            try:
                if _alive(json.loads(state_file.read_text()).get("supervisor_pid", 0)):
                    return True
            except (OSError, ValueError):
                continue
        return False

    # -- clients -------------------------------------------------------------------------------------------
    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(self.binaries["kubectl"]), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
        )
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(result.returncode, result.args, result.stdout, result.stderr)
        return result

    def service_account_kubeconfig(self, namespace: str, account: str, path: Path, hours: int = 12) -> Path:
        """A kubeconfig that authenticates only with a token the API server issues for the ServiceAccount,
        so a process using it has exactly that account's RBAC (no client certificate of the admin)."""
        token = self.kubectl(
            "create", "token", account, "-n", namespace, f"--duration={hours}h"
        ).stdout.strip()
        admin = yaml.safe_load(self.kubeconfig.read_text())
        server = admin["clusters"][0]["cluster"]
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "local", "cluster": server}],
            "users": [{"name": account, "user": {"token": token}}],
            "contexts": [
                {"name": account, "context": {"cluster": "local", "user": account, "namespace": namespace}}
            ],
            "current-context": account,
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def env(self) -> dict[str, str]:
        """What a client process needs: the kubeconfig and the store's AWS variables."""
        return {"KUBECONFIG": str(self.kubeconfig), **self.s3.env()}
