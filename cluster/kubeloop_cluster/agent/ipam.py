"""Loopback pod IPs: each pod gets its own address in 127.1.0.0/16, remembered across agent restarts."""

from __future__ import annotations

import ipaddress
import json
import threading
from pathlib import Path

NETWORK = ipaddress.ip_network("127.1.0.0/16")


class LoopbackIPs:
    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()
        self.by_pod: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}

    def allocate(self, uid: str, existing: str | None = None) -> str:
        with self.lock:
            if uid in self.by_pod:
                return self.by_pod[uid]
            taken = set(self.by_pod.values())
            if existing and ipaddress.ip_address(existing) in NETWORK and existing not in taken:
                address = existing  # a pod that already had an IP keeps it
            else:
                address = next(str(ip) for ip in NETWORK.hosts() if str(ip) not in taken and ip.packed[-1] != 0)
            self.by_pod[uid] = address
            self._save()
            return address

    def release(self, uid: str) -> None:
        with self.lock:
            if self.by_pod.pop(uid, None) is not None:
                self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.by_pod))
