"""The local node agent: it registers one Ready Node and runs every pod bound to it as local processes.

The real scheduler binds pods to the node; the real Job, ReplicaSet and EndpointSlice controllers act on the
status the agent reports. Each pod gets its own IP in the node's pod network namespace (see `podnet`); its
processes join that namespace and bind the IP (they read it through the downward API `status.podIP`). Images are not pulled: a container runs its `command` and
`args` with the project's virtualenv first on PATH, or, without a command, the entrypoint the image table
(`images.ENTRYPOINTS`) gives for its image, which is the ENTRYPOINT of the project's own Dockerfile.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from kubeloop_cluster.agent import forward
from kubeloop_cluster.agent.images import ENTRYPOINTS
from kubeloop_cluster.agent.ipam import PodIPs
from kubeloop_cluster.agent.node import lease_manifest, node_manifest, node_status, now, now_micro
from kubeloop_cluster.agent.pod import PodWorker
from kubeloop_cluster.paths import REPO_ROOT

HEARTBEAT_SECONDS = 10
LEASE_SECONDS = 40
MERGE = "application/merge-patch+json"


class Agent:
    def __init__(
        self,
        kubeconfig: str,
        state_dir: Path,
        node_name: str,
        capacity: dict[str, str],
        network: dict[str, str],
        forwards: dict[int, tuple[str, int]],
    ):
        self.api_client = config.new_client_from_config(config_file=kubeconfig)
        self.core = client.CoreV1Api(self.api_client)
        self.coordination = client.CoordinationV1Api(self.api_client)
        self.state_dir = state_dir
        self.node_name = node_name
        self.capacity = capacity
        self.entrypoints = ENTRYPOINTS
        self.node_ip = network["host_ip"]
        self.netns_path = f"/run/netns/{network['netns']}"
        self.ips = PodIPs.in_namespace(state_dir / "ips.json", network["cidr"], network["netns"])
        self.forwards = forwards
        # What a container must still see when a volume covers its parent (e.g. an emptyDir at /tmp over a
        # clone in /tmp): the virtualenv the agent runs from, and the sources an editable install points at.
        self.project_paths = sorted({str(Path(sys.prefix)), str(REPO_ROOT)})
        self.workers: dict[str, PodWorker] = {}
        self.finished: set[str] = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self._processes_file = state_dir / "processes.json"
        self._processes: dict[str, list[int]] = {}
        host = self.api_client.configuration.host.removeprefix("https://").removeprefix("http://")
        self.apiserver_port = host.partition(":")[2] or "443"

    def log(self, message: str) -> None:
        print(f"{now()} {message}", flush=True)

    # -- node ----------------------------------------------------------------------------------------------
    def register(self) -> None:
        version = client.VersionApi(self.api_client).get_code().git_version
        try:
            self.core.create_node(node_manifest(self.node_name))
        except ApiException as error:
            if error.status != 409:
                raise
        self.transition = now()
        self.kubelet_version = version
        self.heartbeat()
        self.log(f"node {self.node_name} registered (Kubernetes {version})")

    def heartbeat(self) -> None:
        body = node_status(self.capacity, self.kubelet_version, self.node_ip, now(), self.transition)
        self.core.patch_node_status(self.node_name, body, _content_type=MERGE)
        node_uid = self.core.read_node(self.node_name).metadata.uid
        lease = lease_manifest(self.node_name, node_uid, LEASE_SECONDS)
        try:
            self.coordination.patch_namespaced_lease(
                self.node_name, "kube-node-lease", {"spec": {"renewTime": now_micro()}}, _content_type=MERGE
            )
        except ApiException as error:
            if error.status != 404:
                raise
            self.coordination.create_namespaced_lease("kube-node-lease", lease)

    def _heartbeats(self) -> None:
        while not self.stopping.wait(HEARTBEAT_SECONDS):
            try:
                self.heartbeat()
            except Exception as error:  # the API server may be restarting; try again next beat
                self.log(f"heartbeat failed: {error!r}")

    # -- what pod workers need -----------------------------------------------------------------------------
    def lookup(self, namespace: str):
        def read(kind: str, name: str) -> dict[str, str] | None:
            try:
                if kind == "configmap":
                    return self.core.read_namespaced_config_map(name, namespace).data or {}
                secret = self.core.read_namespaced_secret(name, namespace).data or {}
            except ApiException as error:
                if error.status == 404:
                    return None
                raise
            return {key: base64.b64decode(value).decode(errors="replace") for key, value in secret.items()}

        return read

    def token(self, pod: dict, source: dict) -> str:
        meta = pod["metadata"]
        spec = {
            "audiences": [source["audience"]] if source.get("audience") else None,
            "expirationSeconds": source.get("expirationSeconds", 3600),
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]},
        }
        account = pod["spec"].get("serviceAccountName") or "default"
        response = self.core.create_namespaced_service_account_token(
            account, meta["namespace"], {"spec": spec}
        )
        return response.status.token

    def base_env(self, pod: dict) -> dict[str, str]:
        venv_bin = str(Path(sys.executable).parent)
        return {
            "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/local/bin:/usr/bin:/bin')}",
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8",
            "HOSTNAME": pod["metadata"]["name"],
            # There is no kube-proxy: in-cluster clients reach the API server through the node address.
            "KUBERNETES_SERVICE_HOST": self.node_ip,
            "KUBERNETES_SERVICE_PORT": self.apiserver_port,
            "KUBERNETES_SERVICE_PORT_HTTPS": self.apiserver_port,
        }

    def patch_status(self, pod: dict, status: dict) -> None:
        meta = pod["metadata"]
        try:
            self.core.patch_namespaced_pod_status(
                meta["name"], meta["namespace"], {"status": status}, _content_type=MERGE
            )
        except ApiException as error:
            if error.status != 404:
                self.log(f"status of {meta['namespace']}/{meta['name']} not written: {error.reason}")

    def delete_pod(self, pod: dict) -> None:
        meta = pod["metadata"]
        body = client.V1DeleteOptions(
            grace_period_seconds=0, preconditions=client.V1Preconditions(uid=meta["uid"])
        )
        try:
            self.core.delete_namespaced_pod(meta["name"], meta["namespace"], body=body)
        except ApiException as error:
            if error.status not in (404, 409):
                self.log(f"final delete of {meta['namespace']}/{meta['name']} failed: {error.reason}")

    def event(self, pod: dict, reason: str, message: str) -> None:
        meta = pod["metadata"]
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "kind": "Pod",
                "apiVersion": "v1",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "reason": reason,
            "message": message,
            "type": "Warning" if reason == "Unhealthy" else "Normal",
            "source": {"component": "kubeloop-node-agent", "host": self.node_name},
            "firstTimestamp": now(),
            "lastTimestamp": now(),
            "count": 1,
        }
        try:
            self.core.create_namespaced_event(meta["namespace"], body)
        except ApiException:
            pass  # events are best effort, as in the kubelet

    # -- process records, so that a restarted agent can sweep what a killed one left ------------------------
    def remember_process(self, uid: str, pid: int) -> None:
        with self.lock:
            self._processes.setdefault(uid, []).append(pid)
            self._save_processes()

    def forget_process(self, uid: str, pid: int | None) -> None:
        with self.lock:
            if pid in self._processes.get(uid, []):
                self._processes[uid].remove(pid)
                self._save_processes()

    def _save_processes(self) -> None:
        self._processes_file.write_text(json.dumps(self._processes))

    def sweep_orphans(self) -> None:
        if not self._processes_file.exists():
            return
        for uid, groups in json.loads(self._processes_file.read_text()).items():
            for group in groups:
                try:
                    os.killpg(group, signal.SIGKILL)
                    self.log(f"killed orphan process group {group} of pod {uid}")
                except ProcessLookupError:
                    pass
        self._processes_file.write_text("{}")

    # -- pods ----------------------------------------------------------------------------------------------
    def forget(self, uid: str) -> None:
        with self.lock:
            self.workers.pop(uid, None)

    def dispatch(self, pod: dict, first_sight: bool = False) -> None:
        meta, status = pod["metadata"], pod.get("status") or {}
        uid = meta["uid"]
        with self.lock:
            worker = self.workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        terminal = status.get("phase") in ("Succeeded", "Failed")
        if meta.get("deletionTimestamp"):
            self.delete_pod(
                pod
            )  # no process runs for it (any more): the grace period has nothing to wait for
            self.ips.release(uid)
            return
        if terminal or uid in self.finished:
            return
        worker = PodWorker(self, pod, restarted=first_sight and bool(status.get("containerStatuses")))
        with self.lock:
            self.workers[uid] = worker
        worker.start()

    def _serialize(self, pod) -> dict:
        return self.api_client.sanitize_for_serialization(pod)

    def run(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.sweep_orphans()
        forward.start(self.node_ip, self.forwards)
        self.register()
        threading.Thread(target=self._heartbeats, daemon=True, name="heartbeat").start()
        selector = f"spec.nodeName={self.node_name}"
        seen_before = True
        while not self.stopping.is_set():
            try:
                pods = self.core.list_pod_for_all_namespaces(field_selector=selector)
                for pod in pods.items:
                    self.dispatch(self._serialize(pod), first_sight=seen_before)
                seen_before = False
                stream = watch.Watch().stream(
                    self.core.list_pod_for_all_namespaces,
                    field_selector=selector,
                    resource_version=pods.metadata.resource_version,
                    timeout_seconds=30,  # a periodic relist catches anything a watch missed
                )
                for event in stream:
                    if self.stopping.is_set():
                        break
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self.dispatch(self._serialize(event["object"]))
            except Exception as error:  # the API server may be restarting: relist after a pause
                if not self.stopping.is_set():
                    self.log(f"pod watch interrupted: {error!r}")
                    time.sleep(1)

    def stop(self, grace: float = 5.0) -> None:
        self.stopping.set()
        with self.lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.shutdown.set()
        for worker in workers:
            worker.join(timeout=grace + 5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubeloop-node-agent", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--node-name", default="kubeloop-node")
    parser.add_argument(
        "--netns", required=True, help="the pod network namespace (see kubeloop_cluster.podnet)"
    )
    parser.add_argument("--pod-cidr", required=True)
    parser.add_argument("--node-ip", required=True, help="the host side of the pod network")
    parser.add_argument(
        "--forward",
        action="append",
        default=[],
        metavar="PORT=HOST:PORT",
        help="relay node-ip:PORT to HOST:PORT (the API server and S3 store stay on loopback)",
    )
    parser.add_argument("--cpu", default=os.environ.get("KUBELOOP_NODE_CPU", "16"))
    parser.add_argument("--memory", default=os.environ.get("KUBELOOP_NODE_MEMORY", "64Gi"))
    parser.add_argument("--pods", default=os.environ.get("KUBELOOP_NODE_PODS", "110"))
    args = parser.parse_args(argv)
    capacity = {"cpu": args.cpu, "memory": args.memory, "pods": args.pods, "ephemeral-storage": "100Gi"}
    network = {"netns": args.netns, "cidr": args.pod_cidr, "host_ip": args.node_ip}
    forwards = {}
    for rule in args.forward:
        port, _, target = rule.partition("=")
        host, _, target_port = target.rpartition(":")
        forwards[int(port)] = (host, int(target_port))
    agent = Agent(args.kubeconfig, args.state_dir, args.node_name, capacity, network, forwards)

    def on_signal(signum, frame):
        agent.log(f"signal {signum}: stopping the pods' processes")
        threading.Thread(target=lambda: (agent.stop(), os._exit(0)), daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    agent.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
