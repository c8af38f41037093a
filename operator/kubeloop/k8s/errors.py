"""Domain errors of the API layer: what went wrong, in terms the services can act on.

`k8s/` maps every `ApiException` and transport failure to one of these, so that services never inspect
HTTP status codes and the handlers can tell a retry (`TransientError`, `Conflict`) from a permanent refusal
(`Invalid`, `Forbidden`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class KubeError(Exception):
    """An API request failed; `status` is the HTTP status (0 when the server was not reached)."""

    message: str
    status: int = 0
    reason: str = ""
    causes: list[dict] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message


class NotFound(KubeError):
    """404: the object (or its kind) does not exist."""


class AlreadyExists(KubeError):
    """409 on create: an object of that name exists."""


class Conflict(KubeError):
    """409 on update: the object changed since it was read (resourceVersion mismatch); read again."""


class Invalid(KubeError):
    """422 or 400: the server refused the object; `causes` name the fields."""

    def fields(self) -> list[str]:
        return [c.get("field", "") for c in self.causes if c.get("field")]


class Forbidden(KubeError):
    """403: RBAC does not allow it (or an admission webhook refused it)."""


class Gone(KubeError):
    """410: a watch or list continuation expired."""


class TransientError(KubeError):
    """5xx, 429, a timeout or a broken connection: the same request may work later."""


_BY_STATUS: dict[int, type[KubeError]] = {
    400: Invalid,
    403: Forbidden,
    404: NotFound,
    410: Gone,
    422: Invalid,
}


def from_response(status: int, body: bytes | str | None, *, verb: str, what: str) -> KubeError:
    """The domain error for an HTTP error response with a metav1.Status body (or anything else)."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else (body or "")
    try:
        doc = json.loads(text) if text else {}
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    reason = str(doc.get("reason") or "")
    message = str(doc.get("message") or text.strip() or f"HTTP {status}")
    causes = list((doc.get("details") or {}).get("causes") or [])
    full = f"{verb} {what}: {message}"
    if status == 409:
        kind: type[KubeError] = AlreadyExists if reason == "AlreadyExists" else Conflict
    elif status == 429 or status >= 500:
        kind = TransientError
    else:
        kind = _BY_STATUS.get(status, KubeError)
    return kind(full, status=status, reason=reason, causes=causes)
