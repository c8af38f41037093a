"""A real S3-compatible object store beside the cluster: versitygw with its posix backend, on loopback.

Artifacts then travel as `s3://bucket/key` exactly as they would on a real cluster. Each bucket is a directory
under the store's root, so tests can also inspect what was written.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from kubeloop_cluster.errors import SetupError
from kubeloop_cluster.ports import LOOPBACK, wait_listening


@dataclass(frozen=True)
class S3Store:
    """Where the store listens and how to reach it; `storage_options()` plugs straight into s3fs/fsspec."""

    endpoint_url: str
    access_key: str
    secret_key: str
    bucket: str
    root: str
    pid: int = 0
    pod_endpoint_url: str = ""  # how pods reach the store (the same address on the local cluster)

    @property
    def port(self) -> int:
        return int(self.endpoint_url.rsplit(":", 1)[1])

    def storage_options(self) -> dict:
        return {
            "key": self.access_key,
            "secret": self.secret_key,
            "client_kwargs": {"endpoint_url": self.endpoint_url},
        }

    def env(self, in_pod: bool = False) -> dict[str, str]:
        """The standard AWS variables that boto3, s3fs and the trainer read (for a pod: its endpoint)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.pod_endpoint_url
            if in_pod and self.pod_endpoint_url
            else self.endpoint_url,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def to_dict(self) -> dict:
        return asdict(self)


def prepare(
    binary: Path, root: Path, host: str, port: int, bucket: str
) -> tuple[list[str], dict[str, str], S3Store]:
    """The store's command line, its environment (the credentials) and how clients reach it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / bucket).mkdir(exist_ok=True)  # a bucket of the posix backend is a top-level directory
    # Local-only credentials for a store on this machine; generated per store so that nothing real is reused.
    access_key = "kubeloop" + os.urandom(4).hex()
    secret_key = os.urandom(20).hex()
    # Credentials through the environment keep them out of `ps` output.
    env = {"ROOT_ACCESS_KEY_ID": access_key, "ROOT_SECRET_ACCESS_KEY": secret_key}
    argv = [str(binary), "--port", f"{host}:{port}", "posix", str(root)]
    url = f"http://{host}:{port}"
    return argv, env, S3Store(url, access_key, secret_key, bucket, str(root), pod_endpoint_url=url)


def start(binary: Path, root: Path, port: int, bucket: str, log_path: Path, host: str = LOOPBACK) -> S3Store:
    """A standalone store, without a cluster (the tests' `s3` fixture)."""
    argv, env, store = prepare(binary, root, host, port, bucket)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    if not wait_listening(port, host=host, timeout=20):
        process.kill()
        raise SetupError(f"the S3 store (versitygw) did not start listening on {host}:{port}: see {log_path}")
    return dataclasses.replace(store, pid=process.pid)


def stop(store: S3Store) -> None:
    if store.pid:
        try:
            os.killpg(store.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
