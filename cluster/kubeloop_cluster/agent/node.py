"""Pure builders of the agent's Node, its status and its Lease."""

from __future__ import annotations

import datetime as dt
import os
import platform

AGENT_VERSION = "kubeloop-agent://0.1.0"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_manifest(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubeloop.dev/node-agent": "true",
            },
        },
        "spec": {},
    }


def node_status(
    capacity: dict[str, str], kubelet_version: str, node_ip: str, heartbeat: str, transition: str
) -> dict:
    conditions = [
        ("Ready", "True", "KubeletReady", "the kubeloop node agent is running pods as local processes"),
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "no memory pressure"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "no PID pressure"),
    ]
    return {
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [
                {
                    "type": kind,
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "lastHeartbeatTime": heartbeat,
                    "lastTransitionTime": transition,
                }
                for kind, status, reason, message in conditions
            ],
            "addresses": [
                {"type": "InternalIP", "address": node_ip},
                {"type": "Hostname", "address": platform.node() or "localhost"},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {
                "machineID": "kubeloop",
                "systemUUID": "kubeloop",
                "bootID": str(os.getpid()),
                "kernelVersion": platform.release(),
                "osImage": "kubeloop local node agent",
                "containerRuntimeVersion": AGENT_VERSION,
                "kubeletVersion": kubelet_version,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
    }


def lease_manifest(node: str, node_uid: str, duration_seconds: int) -> dict:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node,
            "namespace": "kube-node-lease",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid}],
        },
        "spec": {"holderIdentity": node, "leaseDurationSeconds": duration_seconds, "renewTime": now_micro()},
    }
