"""The security contexts of every pod and container the operator creates: the `restricted` Pod Security profile."""

from __future__ import annotations

from typing import Any

# A fixed numeric non-root user, so `runAsNonRoot` is verifiable without a passwd lookup in the image.
NON_ROOT_UID = 65532


def restricted_pod() -> dict[str, Any]:
    """The pod-level context of training Jobs and model servers; a fresh dict each call."""
    return {
        "runAsNonRoot": True,
        "runAsUser": NON_ROOT_UID,
        "runAsGroup": NON_ROOT_UID,
        "fsGroup": NON_ROOT_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


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
