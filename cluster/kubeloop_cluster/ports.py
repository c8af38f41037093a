"""Loopback ports: pick free ones, and refuse taken ones with a message that says what to do."""

from __future__ import annotations

import socket
import time

from kubeloop_cluster.errors import SetupError

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def require_free(port: int, what: str, env_var: str, host: str = LOOPBACK) -> int:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            raise SetupError(
                f"port {port} on {host} for the {what} is already in use (another local cluster?): "
                f"run `make cluster-down`, or pick another port with {env_var}=<port>"
            ) from None
    return port


def wait_listening(port: int, host: str = LOOPBACK, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.1)
    return False
