"""`kubeloop-operator` as a local child process, as the chart's Deployment would run it: one implementation
for the demo (`stack.py`) and the operator's integration tests (`tests/integration/operator_fixtures.py`).

The process gets the chart's environment (`operator_env`), a kubeconfig holding only the chart's
ServiceAccount token, its health and metrics endpoints on free loopback ports, and its log in a file. The
tests restart it (SIGKILL, as a node failure would) with extra settings; every start is counted and marked
in the log.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from kubeloop_cluster.cluster import LocalCluster

OPERATOR_BIN = str(Path(sys.executable).with_name("kubeloop-operator"))
PR_SET_PDEATHSIG = 1


class OperatorError(RuntimeError):
    """The operator exited or did not become healthy; the message says where its log is."""


def _die_with_parent() -> None:
    """In the operator's child process: receive SIGKILL when the parent dies, even by SIGKILL, so that no
    operator is left acting on a cluster nobody watches (a normal exit stops it in order first)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def operator_env(cluster: LocalCluster, *, pod_name: str, store_credentials: bool) -> dict[str, str]:
    """The environment the chart's Deployment gives the operator (default values: cluster-wide), for the
    local cluster. Cluster-wide on purpose: with KUBELOOP_NAMESPACES set, kopf first tries to list namespaces,
    which the chart's RBAC does not grant, and waits about a minute before it falls back.

    `store_credentials` adds the object store's AWS_* variables, as `operator.s3.existingSecret` +
    `operator.s3.endpointUrl` would: the DriftMonitor reads reference profiles from the artifact store
    (training and serving pods get their credentials from a Secret, not from the operator)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBELOOP_", "AWS_", "KUBECONFIG"))}
    env.update(
        {
            "KUBELOOP_ARTIFACT_ROOT": f"s3://{cluster.s3.bucket}/artifacts",
            "KUBELOOP_LOG_LEVEL": "INFO",
            "KUBELOOP_RETRY_DELAY": "2",
            "KUBELOOP_POD_NAME": pod_name,
        }
    )
    if store_credentials:
        env.update(cluster.s3.env())
    return env


class OperatorProcess:
    """`kubeloop-operator` as a child process in its own process group, with its log in `log_path`.

    `die_with_parent` makes the kernel SIGKILL the operator when this process dies, however it dies.
    `start(**extra)` adds settings for that start only; `extra` and `starts` say how it was last started."""

    def __init__(
        self, kubeconfig: Path, log_path: Path, env: dict[str, str], *, die_with_parent: bool = False
    ):
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.env = env
        self.die_with_parent = die_with_parent
        self.health_port = _free_port()
        self.metrics_port = _free_port()
        self.process: subprocess.Popen | None = None
        self.extra: dict[str, str] = {}
        self.starts = 0

    # lifecycle
    def start(self, wait: bool = True, timeout: float = 90.0, **extra: str) -> OperatorProcess:
        if self.running:
            raise OperatorError(f"kubeloop-operator is already running (pid {self.process.pid})")
        self.extra = dict(extra)
        env = {
            **self.env,
            "KUBECONFIG": str(self.kubeconfig),
            "KUBELOOP_BIND_ADDRESS": "127.0.0.1",
            "KUBELOOP_HEALTH_PORT": str(self.health_port),
            "KUBELOOP_METRICS_PORT": str(self.metrics_port),
            **extra,
        }
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== operator start #{self.starts} {sorted(extra.items())} =====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [OPERATOR_BIN],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches the parent only; it stops the operator in order
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )
        if wait:
            self.wait_ready(timeout)
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise OperatorError(
                    f"kubeloop-operator exited with code {self.process.returncode}: see {self.log_path}\n"
                    + self.tail()
                )
            try:
                if self.get(self.health_port, "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise OperatorError(
            f"kubeloop-operator did not become healthy in {timeout:.0f}s: see {self.log_path}\n" + self.tail()
        )

    def kill(self) -> None:
        """SIGKILL to the whole process group, as a node failure or an OOM kill would: no cleanup runs."""
        if self.running:
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)

    def stop(self, grace: float = 30.0) -> None:
        """SIGTERM, so that kopf stops in order; SIGKILL after `grace` seconds."""
        if not self.running:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to end by itself (e.g. at a crash point); returns its exit code."""
        assert self.process is not None, "start() first"
        return self.process.wait(timeout=timeout)

    def restart(self, **extra: str) -> OperatorProcess:
        self.kill()
        return self.start(**extra)

    # observation
    @staticmethod
    def get(port: int, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()

    def metrics(self) -> str:
        return self.get(self.metrics_port, "/metrics")[1]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log().splitlines()[-lines:])
