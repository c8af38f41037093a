"""Pure builders of the node's configuration files: containerd, CNI, kubelet, kube-proxy, kubeconfigs.

The settings are the ones REAL-NODE.md records as working on this project's machines: cgroupfs (the hosts
have cgroup v1 hierarchies), runc, overlayfs, and `restrict_oom_score_adj`, without which every sandbox fails
to start on a VM that lacks CAP_SYS_RESOURCE.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import yaml

from kubeloop_cluster.nodenet import NodeNetwork

NODE_NAME = "kubeloop-node"
CLUSTER_DOMAIN = "cluster.local"


def containerd_config(
    root: Path, state: Path, socket: Path, cni_bin: Path, cni_conf: Path, sandbox: str
) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{root}"
state = "{state}"
# The plugin writes under /opt; nothing of this node needs it.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{socket}"

[{cri}]
  sandbox_image = "{sandbox}"
  # Required on these VMs: without CAP_SYS_RESOURCE runc cannot raise oom_score_adj.
  restrict_oom_score_adj = true
  enable_selinux = false
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{cni_conf}"
"""


def cni_config(network: NodeNetwork, ipam_dir: Path) -> str:
    return json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": "kubeloop",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(ipam_dir),
                        "ranges": [[{"subnet": network.pod_cidr, "gateway": network.pod_gateway}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        },
        indent=2,
    )


def kubelet_config(
    network: NodeNetwork, *, ca: Path, cert: Path, key: Path, socket: Path, cgroup_root: str, resolv: Path
) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(ca)},
            },
            "authorization": {"mode": "Webhook"},
            "address": network.node_ip,
            "tlsCertFile": str(cert),
            "tlsPrivateKeyFile": str(key),
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "containerRuntimeEndpoint": f"unix://{socket}",
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": cgroup_root,
            # The hosts run cgroup v1 hierarchies, and may have swap.
            "failCgroupV1": False,
            "failSwapOn": False,
            "clusterDomain": CLUSTER_DOMAIN,
            "clusterDNS": [network.dns_ip],
            "resolvConf": str(resolv),
            "serializeImagePulls": False,
            # Images are built locally and never pulled: never collect them, whatever the disk holds.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "nodeStatusReportFrequency": "10s",
            "maxPods": 110,
        }
    )


def kube_proxy_config(network: NodeNetwork, kubeconfig: Path) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "mode": "nftables",
            "hostnameOverride": NODE_NAME,
            "clusterCIDR": network.pod_cidr,
            "bindAddress": network.node_ip,
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            # Pod -> ClusterIP -> pod on the same bridge answers from the pod's address unless the
            # connection is masqueraded; masquerading all keeps conntrack on one path.
            "nftables": {"masqueradeAll": True},
            # The conntrack table size and timeouts are host-wide: leave them as the host has them.
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
        }
    )


def _data(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def kubeconfig(server: str, ca: Path, cert: Path, key: Path, user: str) -> str:
    """A self-contained kubeconfig (certificates embedded), so that it still works when copied elsewhere."""
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "kubeloop", "cluster": {"server": server, "certificate-authority-data": _data(ca)}}
            ],
            "users": [
                {
                    "name": user,
                    "user": {"client-certificate-data": _data(cert), "client-key-data": _data(key)},
                }
            ],
            "contexts": [{"name": "kubeloop", "context": {"cluster": "kubeloop", "user": user}}],
            "current-context": "kubeloop",
        }
    )
