"""The control plane's programs: etcd, kube-apiserver, kube-controller-manager and kube-scheduler, built from
their Go modules, with certificates from `pki`, run and restarted by the supervisor.

The API server listens on the host side of the node's veth (10.N.0.1), never on a routed interface: the host's
clients, the kubelet and the pods (through the `kubernetes` Service) all reach it there.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from kubeloop_cluster.errors import SetupError
from kubeloop_cluster.nodenet import NodeNetwork
from kubeloop_cluster.ports import LOOPBACK


@dataclass(frozen=True)
class ControlPlanePaths:
    pki: Path
    etcd_data: Path
    kcm_kubeconfig: Path
    scheduler_kubeconfig: Path

    def pem(self, stem: str) -> tuple[str, str]:
        return str(self.pki / f"{stem}.crt"), str(self.pki / f"{stem}.key")


def programs(
    binaries: dict[str, Path],
    paths: ControlPlanePaths,
    network: NodeNetwork,
    apiserver_port: int,
    etcd_ports: tuple[int, int],
) -> list[dict]:
    """(name, argv) of each program, in start order."""
    client_port, peer_port = etcd_ports
    etcd_client, etcd_peer = f"http://{LOOPBACK}:{client_port}", f"http://{LOOPBACK}:{peer_port}"
    ca = str(paths.pki / "ca.crt")
    serving_cert, serving_key = paths.pem("apiserver")
    kubelet_client_cert, kubelet_client_key = paths.pem("apiserver-kubelet-client")
    return [
        {
            "name": "etcd",
            "argv": [
                str(binaries["etcd"]),
                "--name=kubeloop",
                f"--data-dir={paths.etcd_data}",
                f"--listen-client-urls={etcd_client}",
                f"--advertise-client-urls={etcd_client}",
                f"--listen-peer-urls={etcd_peer}",
                f"--initial-advertise-peer-urls={etcd_peer}",
                f"--initial-cluster=kubeloop={etcd_peer}",
                # A throwaway development cluster: losing the last writes on a host crash is fine.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        },
        {
            "name": "kube-apiserver",
            "argv": [
                str(binaries["kube-apiserver"]),
                f"--etcd-servers={etcd_client}",
                f"--bind-address={network.host_ip}",
                f"--advertise-address={network.host_ip}",
                f"--secure-port={apiserver_port}",
                f"--tls-cert-file={serving_cert}",
                f"--tls-private-key-file={serving_key}",
                f"--client-ca-file={ca}",
                f"--kubelet-client-certificate={kubelet_client_cert}",
                f"--kubelet-client-key={kubelet_client_key}",
                "--kubelet-preferred-address-types=InternalIP",
                f"--service-account-key-file={paths.pki / 'sa.pub'}",
                f"--service-account-signing-key-file={paths.pki / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={network.service_cidr}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--profiling=false",
            ],
        },
        {
            "name": "kube-controller-manager",
            "argv": [
                str(binaries["kube-controller-manager"]),
                f"--kubeconfig={paths.kcm_kubeconfig}",
                f"--authentication-kubeconfig={paths.kcm_kubeconfig}",
                f"--authorization-kubeconfig={paths.kcm_kubeconfig}",
                "--secure-port=0",
                f"--root-ca-file={ca}",
                f"--service-account-private-key-file={paths.pki / 'sa.key'}",
                f"--cluster-signing-cert-file={ca}",
                f"--cluster-signing-key-file={paths.pki / 'ca.key'}",
                "--use-service-account-credentials=true",
                f"--service-cluster-ip-range={network.service_cidr}",
                "--profiling=false",
            ],
        },
        {
            "name": "kube-scheduler",
            "argv": [
                str(binaries["kube-scheduler"]),
                f"--kubeconfig={paths.scheduler_kubeconfig}",
                f"--authentication-kubeconfig={paths.scheduler_kubeconfig}",
                f"--authorization-kubeconfig={paths.scheduler_kubeconfig}",
                "--secure-port=0",
                "--profiling=false",
            ],
        },
    ]


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
