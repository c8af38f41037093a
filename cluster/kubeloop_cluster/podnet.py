"""The node's pod network: a network namespace that holds the pod IPs, joined to the host by a veth pair.

Why not loopback pod IPs: the API server refuses loopback addresses (127.0.0.0/8) in EndpointSlices, so the real
EndpointSlice controller could never list such pods. Pod IPs therefore live in a network namespace of the
cluster's own (10.N.0.0/16), a private test network that never leaves this machine: the namespace has no default
route, and the host reaches it only through the veth. Every pod's processes join the namespace and bind their
own pod IP; the host side of the veth (10.N.0.1) is the node's address, where the agent forwards the API server
and the S3 store, which themselves stay bound to 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass

from kubeloop_cluster.errors import SetupError

_FIRST_SUBNET, _LAST_SUBNET = 200, 254


@dataclass(frozen=True)
class PodNetwork:
    netns: str
    host_interface: str
    host_ip: str
    cidr: str

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.netns}"

    def to_dict(self) -> dict:
        return asdict(self)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise SetupError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def _used_subnets() -> set[int]:
    output = _ip("-4", "-o", "addr", "show").stdout
    return {int(match) for match in re.findall(r"inet 10\.(\d+)\.", output)}


def names(cluster: str) -> tuple[str, str]:
    digest = hashlib.sha256(cluster.encode()).hexdigest()[:8]
    return f"kubeloop-{cluster}", f"klp{digest}"  # an interface name has at most 15 characters


def create(cluster: str) -> PodNetwork:
    if shutil.which("ip") is None:
        raise SetupError("the `ip` command (iproute2) is missing: apt-get install iproute2")
    netns, host_if = names(cluster)
    delete(cluster)
    used = _used_subnets()
    free = [n for n in range(_FIRST_SUBNET, _LAST_SUBNET + 1) if n not in used]
    if not free:
        raise SetupError(
            f"no free pod subnet in 10.{_FIRST_SUBNET}-{_LAST_SUBNET}.0.0/16: run `make cluster-down`"
        )
    subnet = free[0]
    host_ip, node_side = f"10.{subnet}.0.1", f"10.{subnet}.0.2"
    result = _ip("netns", "add", netns, check=False)
    if result.returncode != 0:
        raise SetupError(
            f"cannot create the pod network namespace {netns}: {result.stderr.strip()} "
            "(the local cluster needs root, or CAP_NET_ADMIN and CAP_SYS_ADMIN)"
        )
    _ip("link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", netns)
    _ip("addr", "add", f"{host_ip}/16", "dev", host_if)
    _ip("link", "set", host_if, "up")
    _ip("-n", netns, "addr", "add", f"{node_side}/16", "dev", "eth0")
    _ip("-n", netns, "link", "set", "eth0", "up")
    _ip("-n", netns, "link", "set", "lo", "up")
    return PodNetwork(netns, host_if, host_ip, f"10.{subnet}.0.0/16")


def delete(cluster: str) -> None:
    netns, host_if = names(cluster)
    _ip("link", "del", host_if, check=False)
    _ip("netns", "del", netns, check=False)


def is_pod_ip(cidr: str, address: str) -> bool:
    """Pod addresses: the /16 less 10.N.0.x, which belongs to the node."""
    ip = ipaddress.ip_address(address)
    return ip in ipaddress.ip_network(cidr) and ip.packed[2] != 0 and ip.packed[3] not in (0, 255)


def pod_ips(cidr: str):
    return (str(ip) for ip in ipaddress.ip_network(cidr).hosts() if is_pod_ip(cidr, str(ip)))


def add_address(netns: str, address: str) -> None:
    result = _ip("-n", netns, "addr", "add", f"{address}/32", "dev", "eth0", check=False)
    if result.returncode != 0 and not re.search(r"File exists|already assigned", result.stderr):
        raise SetupError(f"cannot add pod IP {address}: {result.stderr.strip()}")


def remove_address(netns: str, address: str) -> None:
    _ip("-n", netns, "addr", "del", f"{address}/32", "dev", "eth0", check=False)
