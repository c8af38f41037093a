"""The security context every container the operator creates runs under: the `restricted` Pod Security profile."""

from __future__ import annotations

from typing import Any


def restricted_container() -> dict[str, Any]:
    """A fresh dict each call, so that a builder's caller can never alter another manifest's context."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
