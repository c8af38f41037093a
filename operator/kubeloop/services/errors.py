"""How services tell handlers what to do next, without importing kopf."""

from __future__ import annotations


class ServiceError(Exception):
    """Base class."""


class Retry(ServiceError):
    """Not done yet, nothing wrong: run again after `delay` seconds (e.g. waiting for the GC)."""

    outcome = "success"

    def __init__(self, message: str, delay: float = 10.0):
        super().__init__(message)
        self.delay = delay


class GiveUp(ServiceError):
    """Permanent: the object cannot make progress until a user changes it; the status says why.

    Not an operator error (the reconcile did its job: it recorded why), so it counts as a success."""

    outcome = "success"
