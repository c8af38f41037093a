"""Turn what services raise into kopf's retry-or-give-up, and count each reconcile. Used by every handler."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import kopf

from kubeloop import observability
from kubeloop.k8s import Forbidden, Invalid, KubeError
from kubeloop.services.errors import GiveUp, Retry

# RBAC or a webhook may be fixed by an admin; retry, but not in a tight loop.
FORBIDDEN_DELAY = 60.0


@contextlib.contextmanager
def handling(kind: str, logger: logging.Logger, retry_delay: float) -> Iterator[None]:
    """Run a service call for one object of `kind`, mapping its errors onto kopf's:

    - Retry: TemporaryError after its delay (a wait, counted as a successful reconcile);
    - GiveUp and Invalid: PermanentError (the service has already said why in the status);
    - Forbidden: TemporaryError after a minute, logged as an error (an admin must grant the verb);
    - any other KubeError (conflicts, 5xx, timeouts): TemporaryError after `retry_delay`.
    """
    try:
        with observability.reconcile(kind):
            yield
    except Retry as e:
        raise kopf.TemporaryError(str(e), delay=e.delay) from e
    except GiveUp as e:
        raise kopf.PermanentError(str(e)) from e
    except Invalid as e:
        raise kopf.PermanentError(f"the API server refused a write: {e}") from e
    except Forbidden as e:
        logger.error("not allowed (check the operator's RBAC): %s", e)
        raise kopf.TemporaryError(str(e), delay=FORBIDDEN_DELAY) from e
    except KubeError as e:
        raise kopf.TemporaryError(str(e), delay=retry_delay) from e
