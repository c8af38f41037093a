"""Readiness and liveness probes with the kubelet's timing rules (initial delay, period, thresholds)."""

from __future__ import annotations

import http.client
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field


def _port(value, container: Mapping) -> int:
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    for port in container.get("ports") or []:
        if port.get("name") == value:
            return int(port["containerPort"])
    raise ValueError(f"named port {value!r} is not declared by the container")


def check(probe: Mapping, container: Mapping, pod_ip: str, env: Mapping[str, str]) -> bool:
    """One probe attempt: True on success."""
    timeout = probe.get("timeoutSeconds", 1)
    try:
        if "httpGet" in probe:
            get = probe["httpGet"]
            conn_class = (
                http.client.HTTPSConnection if get.get("scheme") == "HTTPS" else http.client.HTTPConnection
            )
            conn = conn_class(get.get("host") or pod_ip, _port(get["port"], container), timeout=timeout)
            try:
                headers = {h["name"]: h["value"] for h in get.get("httpHeaders") or []}
                conn.request("GET", get.get("path", "/"), headers=headers)
                return 200 <= conn.getresponse().status < 400
            finally:
                conn.close()
        if "tcpSocket" in probe:
            tcp = probe["tcpSocket"]
            with socket.create_connection(
                (tcp.get("host") or pod_ip, _port(tcp["port"], container)), timeout
            ):
                return True
        if "exec" in probe:
            result = subprocess.run(
                probe["exec"]["command"], env=dict(env), timeout=timeout, capture_output=True
            )
            return result.returncode == 0
    except (OSError, ValueError, subprocess.TimeoutExpired, http.client.HTTPException):
        return False
    return False


@dataclass
class ProbeState:
    """Follows one probe of one running container."""

    probe: Mapping | None
    started: float
    success_default: bool  # what the result is before the first check: False for readiness, True for liveness
    last: float = field(default=0.0)
    successes: int = 0
    failures: int = 0
    result: bool | None = None

    def __post_init__(self) -> None:
        if self.result is None:
            self.result = True if self.probe is None else self.success_default

    def due(self, now: float) -> bool:
        if self.probe is None:
            return False
        if now - self.started < self.probe.get("initialDelaySeconds", 0):
            return False
        return now - self.last >= self.probe.get("periodSeconds", 10)

    def record(self, ok: bool, now: float | None = None) -> bool:
        """Returns the probe's result after this attempt, applying success and failure thresholds."""
        self.last = time.monotonic() if now is None else now
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if self.successes >= self.probe.get("successThreshold", 1):
                self.result = True
        else:
            self.successes, self.failures = 0, self.failures + 1
            if self.failures >= self.probe.get("failureThreshold", 3):
                self.result = False
        return self.result
