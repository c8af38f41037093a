"""Session fixtures: the real local cluster and the S3-compatible store, started once per test session.

Set KUBELOOP_KEEP_CLUSTER=1 to leave the test cluster running after the session (for debugging it with
`kubectl --kubeconfig ~/.cache/kubeloop/clusters/pytest/kubeconfig`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from kubeloop_cluster import objectstore, toolchain
from kubeloop_cluster.cluster import LocalCluster
from kubeloop_cluster.ports import free_port


@pytest.fixture(scope="session")
def cluster():
    local = LocalCluster(os.environ.get("KUBELOOP_TEST_CLUSTER", "pytest"))
    local.up()
    yield local
    if not os.environ.get("KUBELOOP_KEEP_CLUSTER"):
        local.down(quiet=True)


@pytest.fixture(scope="session")
def s3():
    """A standalone S3 store (versitygw, posix backend) on a free loopback port, without a cluster."""
    with tempfile.TemporaryDirectory(prefix="kubeloop-s3-") as root:
        store = objectstore.start(
            toolchain.binary("versitygw"),
            Path(root) / "data",
            free_port(),
            "kubeloop",
            Path(root) / "versitygw.log",
        )
        yield store
        objectstore.stop(store)
