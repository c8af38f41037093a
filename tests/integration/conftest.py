"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def kubeloop_crds(cluster):
    """The kubeloop CRDs installed and Established, once per session (server-side apply: idempotent)."""
    from kubeloop_demo.stack import install_crds

    install_crds(cluster)
    return cluster
