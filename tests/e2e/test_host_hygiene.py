"""`cluster-down` leaves the host as `cluster-up` found it: kernel settings, firewall, links, routes, mounts and
cgroups. A cluster of its own, so the comparison is of this cluster's up and down only. It sits with the
end-to-end tests, which run before the integration tests start the session's cluster: the host's own kernel
settings are then in force, and the kubelet's changes to them are seen and undone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from kubeloop_cluster import hoststate
from kubeloop_cluster.cluster import LocalCluster
from kubeloop_cluster.paths import cache_root

pytestmark = pytest.mark.e2e


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def host_snapshot() -> dict[str, object]:
    return {
        "sysctls": hoststate.read_sysctls((*hoststate.KUBELET_SYSCTLS, "net.ipv4.ip_forward")),
        "nftables": _run("nft", "list", "ruleset"),
        "iptables": _run("iptables-save").splitlines()[1:-1],  # without the timestamped comment lines
        "links": sorted(line.split(":")[1].strip() for line in _run("ip", "-o", "link").splitlines()),
        "routes": _run("ip", "route"),
        "netns": _run("ip", "netns", "list"),
        "mounts": sorted(line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()),
        "cgroups": sorted(str(p) for p in Path("/sys/fs/cgroup").glob("*/kubeloop-hygiene")),
    }


def test_cluster_down_restores_the_host():
    alone = not list((cache_root() / "clusters").glob("*/cluster.json"))
    before = host_snapshot()
    hygiene = LocalCluster("hygiene")
    try:
        hygiene.up()
        during = host_snapshot()
        assert during["links"] != before["links"], "the node's veth is on the host while it runs"
        assert during["cgroups"], "the kubelet made its cgroup tree"
        if alone:  # the kubelet's own values are in force: a missing restore would be seen below
            assert during["sysctls"]["kernel.panic_on_oops"] == "1", during["sysctls"]
    finally:
        hygiene.down()
    after = host_snapshot()
    for key in before:
        assert after[key] == before[key], f"{key} differs after cluster-down"
