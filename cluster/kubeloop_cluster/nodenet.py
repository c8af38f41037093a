"""The node's network: a network namespace of its own, as a kind node's container has, joined to the host by
a veth pair.

containerd, the kubelet and kube-proxy run inside that namespace, so the pods' bridge, kube-proxy's nftables
rules and the node's IP forwarding all live there and vanish with it: the host's own firewall and its
`net.ipv4.ip_forward` are never touched. The namespace has no default route, so nothing is routed off the
machine. The host reaches pods and Services through one route to the cluster's /16 via the node.

Addresses of cluster N (a free 10.N.0.0/16):
  10.N.0.1     host side of the veth: the API server and the S3 store listen here
  10.N.0.2     the node (kubelet, kube-proxy)
  10.N.1.0/24  pods, on the bridge `cni0` inside the node's namespace (gateway 10.N.1.1)
  10.N.128.0/17  Services (the API server's ClusterIP is 10.N.128.1, DNS 10.N.128.10)
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass

from kubeloop_cluster.errors import SetupError

_FIRST_SUBNET, _LAST_SUBNET = 200, 254


@dataclass(frozen=True)
class NodeNetwork:
    netns: str
    host_interface: str
    subnet: int

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"

    @property
    def host_ip(self) -> str:
        return f"10.{self.subnet}.0.1"

    @property
    def node_ip(self) -> str:
        return f"10.{self.subnet}.0.2"

    @property
    def cidr(self) -> str:
        return f"10.{self.subnet}.0.0/16"

    @property
    def pod_cidr(self) -> str:
        return f"10.{self.subnet}.1.0/24"

    @property
    def pod_gateway(self) -> str:
        return f"10.{self.subnet}.1.1"

    @property
    def service_cidr(self) -> str:
        return f"10.{self.subnet}.128.0/17"

    @property
    def apiserver_service_ip(self) -> str:
        """The `kubernetes` Service's ClusterIP: the first address of the Service range."""
        return f"10.{self.subnet}.128.1"

    @property
    def dns_ip(self) -> str:
        return f"10.{self.subnet}.128.10"

    def in_node(self, argv: list[str]) -> list[str]:
        """`argv` run inside the node's network namespace and nothing else: the mount namespace stays the
        host's, so the kubelet's volume mounts are the ones containerd bind-mounts into containers."""
        return ["nsenter", f"--net={self.netns_path}", "--", *argv]

    def to_dict(self) -> dict:
        return asdict(self)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise SetupError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def _used_subnets() -> set[int]:
    output = _ip("-4", "-o", "addr", "show").stdout + _ip("-4", "route", "show").stdout
    return {int(match) for match in re.findall(r"\b10\.(\d+)\.", output)}


def names(cluster: str) -> tuple[str, str]:
    digest = hashlib.sha256(cluster.encode()).hexdigest()[:8]
    return f"kubeloop-{cluster}", f"klp{digest}"  # an interface name has at most 15 characters


def _sysctl_in(netns: str, key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    result = subprocess.run(
        ["ip", "netns", "exec", netns, "sh", "-c", f"echo {value} > {path}"], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SetupError(f"cannot set {key}={value} in the node's network namespace: {result.stderr.strip()}")


def create(cluster: str) -> NodeNetwork:
    for command, package in (("ip", "iproute2"), ("nsenter", "util-linux")):
        if shutil.which(command) is None:
            raise SetupError(f"the `{command}` command is missing: apt-get install {package}")
    netns, host_if = names(cluster)
    delete(cluster)
    used = _used_subnets()
    free = [n for n in range(_FIRST_SUBNET, _LAST_SUBNET + 1) if n not in used]
    if not free:
        raise SetupError(
            f"no free subnet in 10.{_FIRST_SUBNET}-{_LAST_SUBNET}.0.0/16: run `make cluster-down`"
        )
    network = NodeNetwork(netns, host_if, free[0])
    result = _ip("netns", "add", netns, check=False)
    if result.returncode != 0:
        raise SetupError(
            f"cannot create the node's network namespace {netns}: {result.stderr.strip()} "
            "(the local cluster needs root, or CAP_NET_ADMIN and CAP_SYS_ADMIN)"
        )
    _ip("link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", netns)
    _ip("addr", "add", f"{network.host_ip}/24", "dev", host_if)
    _ip("link", "set", host_if, "up")
    _ip("-n", netns, "addr", "add", f"{network.node_ip}/24", "dev", "eth0")
    _ip("-n", netns, "link", "set", "eth0", "up")
    _ip("-n", netns, "link", "set", "lo", "up")
    # Pods and ClusterIPs are reached through the node; the node forwards, inside its own namespace only.
    _ip("route", "add", network.cidr, "via", network.node_ip, "dev", host_if)
    _sysctl_in(netns, "net.ipv4.ip_forward", "1")
    return network


def delete(cluster: str) -> None:
    netns, host_if = names(cluster)
    _ip("link", "del", host_if, check=False)  # takes the host route with it
    _ip("netns", "del", netns, check=False)
