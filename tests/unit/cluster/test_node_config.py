"""The real node's configuration files, built from the node's network: the settings REAL-NODE.md verified."""

from __future__ import annotations

import ipaddress
import json
import tomllib
from pathlib import Path

import yaml
from kubeloop_cluster import nodeconfig
from kubeloop_cluster.nodenet import NodeNetwork

NET = NodeNetwork("kubeloop-t", "klp0000", 201)


def test_addresses_of_the_node_network_do_not_overlap_and_stay_in_its_16():
    cidr = ipaddress.ip_network(NET.cidr)
    pods, services = ipaddress.ip_network(NET.pod_cidr), ipaddress.ip_network(NET.service_cidr)
    assert not pods.overlaps(services)
    for address in (NET.host_ip, NET.node_ip, NET.pod_gateway, NET.dns_ip, NET.apiserver_service_ip):
        assert ipaddress.ip_address(address) in cidr
    assert ipaddress.ip_address(NET.dns_ip) in services and ipaddress.ip_address(NET.pod_gateway) in pods
    # the API server allocates the first address of the range to the `kubernetes` Service
    assert NET.apiserver_service_ip == str(next(services.hosts()))
    assert ipaddress.ip_address(NET.host_ip) not in pods and ipaddress.ip_address(NET.node_ip) not in pods


def test_programs_run_in_the_node_network_namespace_only():
    argv = NET.in_node(["kubelet", "--v=1"])
    assert argv == ["nsenter", "--net=/run/netns/kubeloop-t", "--", "kubelet", "--v=1"]
    assert not any(flag.startswith(("--mount", "-m")) for flag in argv[:3]), (
        "the mount namespace stays the host's"
    )


def test_containerd_uses_cgroupfs_runc_and_restricted_oom_score_adjustment(tmp_path: Path):
    text = nodeconfig.containerd_config(
        tmp_path / "root",
        tmp_path / "state",
        tmp_path / "c.sock",
        tmp_path / "bin",
        tmp_path / "conf",
        "pause:1",
    )
    config = tomllib.loads(text)
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == "pause:1"
    assert cri["containerd"]["snapshotter"] == "overlayfs"
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert config["root"] == str(tmp_path / "root") and config["grpc"]["address"] == str(tmp_path / "c.sock")


def test_cni_bridge_gives_pods_the_node_pod_range(tmp_path: Path):
    config = json.loads(nodeconfig.cni_config(NET, tmp_path / "ipam"))
    bridge = config["plugins"][0]
    assert bridge["type"] == "bridge" and bridge["isGateway"] is True and bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.201.1.0/24", "gateway": "10.201.1.1"}]]
    assert bridge["ipam"]["dataDir"] == str(tmp_path / "ipam")


def test_kubelet_runs_on_cgroup_v1_with_cgroupfs_and_the_cluster_dns(tmp_path: Path):
    config = yaml.safe_load(
        nodeconfig.kubelet_config(
            NET,
            ca=tmp_path / "ca.crt",
            cert=tmp_path / "k.crt",
            key=tmp_path / "k.key",
            socket=tmp_path / "c.sock",
            cgroup_root="/kubeloop-t",
            resolv=tmp_path / "resolv.conf",
        )
    )
    assert config["cgroupDriver"] == "cgroupfs" and config["cgroupRoot"] == "/kubeloop-t"
    assert config["failCgroupV1"] is False and config["failSwapOn"] is False
    assert config["clusterDNS"] == ["10.201.128.10"] and config["clusterDomain"] == "cluster.local"
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["authorization"]["mode"] == "Webhook" and config["readOnlyPort"] == 0
    assert config["containerRuntimeEndpoint"] == f"unix://{tmp_path / 'c.sock'}"


def test_kube_proxy_uses_nftables_and_leaves_host_wide_conntrack_settings_alone(tmp_path: Path):
    config = yaml.safe_load(nodeconfig.kube_proxy_config(NET, tmp_path / "kp.kubeconfig"))
    assert config["mode"] == "nftables"
    assert config["conntrack"]["maxPerCore"] == 0
    assert config["conntrack"]["tcpEstablishedTimeout"] == "0s"
    assert config["clusterCIDR"] == NET.pod_cidr
