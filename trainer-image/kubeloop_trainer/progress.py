"""Progress lines on stdout: the training pod's log is how a user follows a run."""

from __future__ import annotations

import sys
import time

_START = time.monotonic()


def progress(message: str) -> None:
    """Print one timestamped progress line (seconds since start) and flush it at once."""
    print(f"[kubeloop-trainer {time.monotonic() - _START:7.2f}s] {message}", file=sys.stdout, flush=True)


def warn(message: str) -> None:
    print(f"[kubeloop-trainer] warning: {message}", file=sys.stderr, flush=True)
