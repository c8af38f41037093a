"""Fixtures shared by the integration tests."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CRD_NAMES = ["trainingruns.kubeloop.dev", "modelversions.kubeloop.dev", "driftmonitors.kubeloop.dev"]


@pytest.fixture(scope="session")
def kubeloop_crds(cluster):
    """The kubeloop CRDs installed and Established, once per session (server-side apply: idempotent)."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    result = cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in CRD_NAMES], check=False
    )
    assert result.returncode == 0, f"CRDs not Established: {result.stderr}"
    return cluster
