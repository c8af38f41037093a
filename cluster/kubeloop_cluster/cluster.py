"""The local cluster as one object: control plane, node agent and object store, up and down together.

`make cluster-up`, `make cluster-down` and the pytest session fixture all go through `LocalCluster`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from kubeloop_cluster import controlplane, objectstore, podnet, toolchain
from kubeloop_cluster.errors import SetupError
from kubeloop_cluster.objectstore import S3Store
from kubeloop_cluster.paths import cluster_dir
from kubeloop_cluster.podnet import PodNetwork
from kubeloop_cluster.ports import free_port, require_free

NODE_NAME = "kubeloop-node"
DEFAULT_BUCKET = "kubeloop"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _stop_group(pid: int, grace: float) -> None:
    """SIGTERM a process group, wait, then SIGKILL what is left."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class LocalCluster:
    """A real Kubernetes control plane with one node agent and an S3 store, all on loopback."""

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
    def pod_network(self) -> PodNetwork:
        return PodNetwork(**self._state()["network"])

    @property
    def s3(self) -> S3Store:
        state = self._state().get("s3")
        if not state:
            raise SetupError(f"cluster {self.name!r} is not up: run `make cluster-up`")
        return S3Store(**state)

    def is_up(self) -> bool:
        state = self._state()
        return bool(state) and _alive(state.get("agent_pid", 0)) and self._ready()

    def _ready(self) -> bool:
        if not self.kubeconfig.exists():
            return False
        result = self.kubectl("get", "--raw", "/readyz", check=False)
        return result.returncode == 0 and result.stdout.strip() == "ok"

    # -- lifecycle -----------------------------------------------------------------------------------------
    def up(self, log=None) -> LocalCluster:
        log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        binaries = self.binaries
        if self.is_up():
            log(f"cluster {self.name!r} is already up")
            return self
        self.down(quiet=True)  # clear what a crashed run left behind
        apiserver_port = self._apiserver_port or free_port()
        s3_port = self._s3_port or free_port()
        require_free(apiserver_port, "API server", "KUBELOOP_APISERVER_PORT")
        require_free(s3_port, "S3 store", "KUBELOOP_S3_PORT")
        self.dir.mkdir(parents=True, exist_ok=True)
        network = podnet.create(self.name)  # first, so that the API server's certificate names the node IP
        state = {"name": self.name, "apiserver_port": apiserver_port, "network": network.to_dict()}
        self._save(state)
        log(f"starting the control plane of {self.name!r} on 127.0.0.1:{apiserver_port} ...")
        controlplane.create(
            self.name, binaries, self.dir / "kwok", self.kubeconfig, apiserver_port, network.host_ip
        )
        controlplane.wait_ready(binaries["kubectl"], self.kubeconfig)
        store = objectstore.start(
            binaries["versitygw"], self.dir / "s3", s3_port, DEFAULT_BUCKET, self.dir / "versitygw.log"
        )
        store = dataclasses.replace(store, pod_endpoint_url=f"http://{network.host_ip}:{s3_port}")
        state["s3"] = store.to_dict()
        self._save(state)
        self.start_agent()
        log(
            f"cluster {self.name!r} is up: node {NODE_NAME} Ready on {network.host_ip}, S3 store at {store.endpoint_url}"
        )
        return self

    def kill_agent(self) -> None:
        """SIGKILL the node agent, as a crash would: its container processes die with it."""
        state = self._state()
        os.kill(state["agent_pid"], signal.SIGKILL)
        while _alive(state["agent_pid"]):
            try:  # reap it if it was our child (the test fixture's case)
                os.waitpid(state["agent_pid"], os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)

    def start_agent(self) -> None:
        state = self._state()
        state["agent_pid"] = self._start_agent()
        self._save(state)
        self._wait_node_ready()

    def _start_agent(self) -> int:
        state = self._state()
        network, apiserver_port, s3_port = (
            state["network"],
            state["apiserver_port"],
            S3Store(**state["s3"]).port,
        )
        log = (self.dir / "agent.log").open("ab")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kubeloop_cluster.agent.main",
                f"--kubeconfig={self.kubeconfig}",
                f"--state-dir={self.dir / 'agent'}",
                f"--node-name={NODE_NAME}",
                f"--netns={network['netns']}",
                f"--pod-cidr={network['cidr']}",
                f"--node-ip={network['host_ip']}",
                f"--forward={apiserver_port}=127.0.0.1:{apiserver_port}",
                f"--forward={s3_port}=127.0.0.1:{s3_port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the agent outlives `make cluster-up`
        )
        return process.pid

    def _wait_node_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        jsonpath = '{.status.conditions[?(@.type=="Ready")].status}'
        while time.monotonic() < deadline:
            result = self.kubectl("get", "node", NODE_NAME, "-o", f"jsonpath={jsonpath}", check=False)
            if result.stdout.strip() == "True":
                return
            if not _alive(self._state().get("agent_pid", 0)):
                break
            time.sleep(0.5)
        tail = (self.dir / "agent.log").read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise SetupError(
            f"the node agent did not report {NODE_NAME} Ready: {tail[0]} (log: {self.dir}/agent.log)"
        )

    def down(self, quiet: bool = False) -> None:
        state = self._state()
        if state.get("agent_pid"):
            _stop_group(state["agent_pid"], grace=40)  # the agent stops its pods on SIGTERM
        if state.get("s3"):
            objectstore.stop(S3Store(**state["s3"]))
        if (self.dir.exists() and self._binaries is not None) or (self.dir / "kwok").exists():
            controlplane.delete(self.name, self.binaries, self.dir / "kwok", self.kubeconfig)
        podnet.delete(self.name)
        shutil.rmtree(self.dir, ignore_errors=True)
        if not quiet:
            print(f"cluster {self.name!r} is down", file=sys.stderr)

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
