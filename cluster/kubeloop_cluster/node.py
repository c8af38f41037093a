"""The real node: containerd + runc, the kubelet and kube-proxy, each inside the node's network namespace.

`write_config` lays out the node's files under the cluster's directory; `programs` says what the supervisor
runs. containerd's root (the image store) lives outside the cluster's directory, one per cluster name, so that
images imported once survive `cluster-down` and the next `cluster-up` starts without importing them again.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from kubeloop_cluster import nodeconfig
from kubeloop_cluster.nodenet import NodeNetwork
from kubeloop_cluster.paths import cache_root

CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")


@dataclass(frozen=True)
class NodePaths:
    dir: Path  # the cluster's node directory
    containerd_root: Path

    @classmethod
    def of(cls, cluster_dir: Path, cluster: str) -> NodePaths:
        return cls(cluster_dir / "node", cache_root() / "containerd" / cluster)

    @property
    def socket(self) -> Path:
        return self.dir / "containerd.sock"

    @property
    def containerd_state(self) -> Path:
        return self.dir / "containerd-state"

    @property
    def kubelet_root(self) -> Path:
        return self.dir / "kubelet"

    @property
    def cni_bin(self) -> Path:
        return self.dir / "cni-bin"

    @property
    def cni_conf(self) -> Path:
        return self.dir / "cni-conf"

    @property
    def kubelet_kubeconfig(self) -> Path:
        return self.dir / "kubelet.kubeconfig"

    @property
    def proxy_kubeconfig(self) -> Path:
        return self.dir / "kube-proxy.kubeconfig"


def cgroup_root(cluster: str) -> str:
    return f"/kubeloop-{cluster}"


def write_config(
    paths: NodePaths, network: NodeNetwork, binaries: dict[str, Path], pki: Path, cluster: str, sandbox: str
) -> None:
    for directory in (paths.dir, paths.cni_bin, paths.cni_conf, paths.kubelet_root, paths.containerd_root):
        directory.mkdir(parents=True, exist_ok=True)
    for plugin in CNI_PLUGINS:
        target = paths.cni_bin / plugin
        if not target.exists():
            target.symlink_to(binaries[plugin])
    (paths.dir / "containerd.toml").write_text(
        nodeconfig.containerd_config(
            paths.containerd_root,
            paths.containerd_state,
            paths.socket,
            paths.cni_bin,
            paths.cni_conf,
            sandbox,
        )
    )
    (paths.cni_conf / "10-kubeloop.conflist").write_text(nodeconfig.cni_config(network, paths.dir / "ipam"))
    # Pods with the Default DNS policy get no resolver: there is no route off the machine to ask one.
    resolv = paths.dir / "resolv.conf"
    resolv.write_text("# the local node has no upstream resolver\n")
    (paths.dir / "kubelet.yaml").write_text(
        nodeconfig.kubelet_config(
            network,
            ca=pki / "ca.crt",
            cert=pki / "kubelet-serving.crt",
            key=pki / "kubelet-serving.key",
            socket=paths.socket,
            cgroup_root=cgroup_root(cluster),
            resolv=resolv,
        )
    )
    (paths.dir / "kube-proxy.yaml").write_text(nodeconfig.kube_proxy_config(network, paths.proxy_kubeconfig))


def programs(paths: NodePaths, network: NodeNetwork, binaries: dict[str, Path]) -> list[dict]:
    return [
        {
            "name": "containerd",
            "argv": network.in_node(
                [shutil.which("containerd") or "containerd", f"--config={paths.dir / 'containerd.toml'}"]
            ),
            "grace": 20.0,
        },
        {
            "name": "kubelet",
            "argv": network.in_node(
                [
                    str(binaries["kubelet"]),
                    f"--config={paths.dir / 'kubelet.yaml'}",
                    f"--kubeconfig={paths.kubelet_kubeconfig}",
                    f"--hostname-override={nodeconfig.NODE_NAME}",
                    f"--node-ip={network.node_ip}",
                    f"--root-dir={paths.kubelet_root}",
                    f"--cert-dir={paths.dir / 'kubelet-pki'}",
                    "--v=1",
                ]
            ),
            "grace": 20.0,
        },
        {
            "name": "kube-proxy",
            "argv": network.in_node(
                [str(binaries["kube-proxy"]), f"--config={paths.dir / 'kube-proxy.yaml'}", "--v=1"]
            ),
        },
    ]
