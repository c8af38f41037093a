"""The control plane, run by kwokctl's `binary` runtime from our own builds of the upstream binaries.

kwokctl writes the PKI, the service-account signing key and the kubeconfig, and starts etcd, kube-apiserver
(RBAC and admission on), kube-controller-manager (all default controllers: Job, Deployment, ReplicaSet,
EndpointSlice, garbage collector, service-account tokens, ...) and kube-scheduler as processes. Its fake-node
controller is disabled: our node agent runs the pods for real.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from kubeloop_cluster.errors import SetupError
from kubeloop_cluster.ports import LOOPBACK

_KWOK_CONFIG = """\
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  # Loopback only: nothing of the local cluster is reachable from another host.
  bindAddress: {bind}
  # Pods reach the API server through the node address of the pod network (see podnet).
  kubeApiserverCertSANs: [{node_ip}]
"""


def _kwokctl(
    binaries: dict[str, Path], workdir: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess:
    env = {**os.environ, "KWOK_WORKDIR": str(workdir)}
    result = subprocess.run([str(binaries["kwokctl"]), *args], env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise SetupError(f"kwokctl {args[0]} {args[1]} failed: {lines[-1] if lines else 'no output'}")
    return result


def create(
    name: str, binaries: dict[str, Path], workdir: Path, kubeconfig: Path, apiserver_port: int, node_ip: str
) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "kwok.yaml"
    config.write_text(_KWOK_CONFIG.format(bind=LOOPBACK, node_ip=node_ip))
    _kwokctl(
        binaries,
        workdir,
        "create",
        "cluster",
        f"--name={name}",
        f"--config={config}",
        "--runtime=binary",
        f"--kube-apiserver-binary={binaries['kube-apiserver']}",
        f"--kube-controller-manager-binary={binaries['kube-controller-manager']}",
        f"--kube-scheduler-binary={binaries['kube-scheduler']}",
        f"--etcd-binary={binaries['etcd']}",
        "--disable=kwok-controller",
        "--kube-authorization=true",
        "--kube-admission=true",
        f"--kube-apiserver-port={apiserver_port}",
        f"--kubeconfig={kubeconfig}",
        # No default route is needed: the API server advertises loopback.
        f"--extra-args=kube-apiserver=advertise-address={LOOPBACK}",
    )


def delete(name: str, binaries: dict[str, Path], workdir: Path, kubeconfig: Path) -> None:
    _kwokctl(
        binaries, workdir, "delete", "cluster", f"--name={name}", f"--kubeconfig={kubeconfig}", check=False
    )


def wait_ready(kubectl: Path, kubeconfig: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        result = subprocess.run(
            [str(kubectl), f"--kubeconfig={kubeconfig}", "get", "--raw", "/readyz"],
            capture_output=True,
            text=True,
        )
        if result.returncode == 0 and result.stdout.strip() == "ok":
            return
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
        last = last[0]
        time.sleep(0.5)
    raise SetupError(f"the API server did not become ready within {timeout:.0f}s: {last}")
