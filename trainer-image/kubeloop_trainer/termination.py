"""Writing the termination message, which is how the operator learns the outcome of a training pod."""

from __future__ import annotations

from collections.abc import Mapping

from kubeloop.contract import (
    DEFAULT_TERMINATION_LOG,
    TERMINATION_LOG_ENV,
    TrainerFailed,
    TrainerSucceeded,
    render_termination_message,
)

from kubeloop_trainer.progress import warn


def termination_path(env: Mapping[str, str], override: str | None = None) -> str:
    return override or env.get(TERMINATION_LOG_ENV) or DEFAULT_TERMINATION_LOG


def write_termination(path: str, summary: TrainerSucceeded | TrainerFailed) -> str:
    """Write the summary (at most 4096 bytes) to ``path``; outside a pod the path may not exist."""
    text = render_termination_message(summary)
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        warn(f"could not write the termination message to {path}: {e}")
    return text
