"""Pod IPs from the node's pod network, one per pod, remembered across agent restarts.

An address is added to the pod network namespace when allocated and removed when released, so a pod's
processes can bind it and nothing else answers on it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

from kubeloop_cluster import podnet


class PodIPs:
    def __init__(
        self,
        path: Path,
        cidr: str,
        plumb: Callable[[str], None] = lambda ip: None,
        unplumb: Callable[[str], None] = lambda ip: None,
    ):
        self.path = path
        self.cidr = cidr
        self.plumb, self.unplumb = plumb, unplumb
        self.lock = threading.Lock()
        self.by_pod: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}

    @classmethod
    def in_namespace(cls, path: Path, cidr: str, netns: str) -> PodIPs:
        return cls(
            path,
            cidr,
            plumb=lambda ip: podnet.add_address(netns, ip),
            unplumb=lambda ip: podnet.remove_address(netns, ip),
        )

    def allocate(self, uid: str, existing: str | None = None) -> str:
        with self.lock:
            address = self.by_pod.get(uid)
            if address is None:
                taken = set(self.by_pod.values())
                if existing and existing not in taken and podnet.is_pod_ip(self.cidr, existing):
                    address = existing  # a pod that already had an IP keeps it
                else:
                    address = next(ip for ip in podnet.pod_ips(self.cidr) if ip not in taken)
                self.by_pod[uid] = address
                self._save()
            self.plumb(address)  # idempotent: after an agent restart the address may be gone or still there
            return address

    def release(self, uid: str) -> None:
        with self.lock:
            address = self.by_pod.pop(uid, None)
            if address is not None:
                self.unplumb(address)
                self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.by_pod))
