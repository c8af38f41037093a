"""Where a training Job stands, and what its trainer reported. Pure: Job and Pod dicts in.

The Job's terminal conditions (`Complete`, `Failed`) decide; the interim ones Kubernetes sets first
(`SuccessCriteriaMet`, `FailureTarget`) are not terminal yet, because the pods may still be terminating.
The trainer's summary is the termination message of its container: for a success, the pod that
succeeded; for a failure, the pod that failed last.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from kubeloop.contract import TrainerFailed, TrainerSucceeded, parse_termination_message

JobPhase = Literal["Running", "Succeeded", "Failed"]


@dataclass(frozen=True)
class KilledByRuntime:
    """The container runtime ended the trainer (the kernel's OOM killer at its memory limit): the trainer
    never had a chance to write a summary, and whatever its log says is not why it stopped."""

    reason: str
    message: str


Report = TrainerSucceeded | TrainerFailed | KilledByRuntime | str | None


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@dataclass(frozen=True)
class JobState:
    phase: JobPhase
    attempts: int
    reason: str = ""
    message: str = ""
    start_time: datetime | None = None
    completion_time: datetime | None = None


def _condition(job: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_ and c.get("status") == "True":
            return c
    return None


def job_state(job: Mapping[str, Any]) -> JobState:
    status = job.get("status") or {}
    attempts = (
        int(status.get("active") or 0) + int(status.get("failed") or 0) + int(status.get("succeeded") or 0)
    )
    start = parse_time(status.get("startTime"))
    done = _condition(job, "Complete")
    if done is not None:
        end = parse_time(status.get("completionTime")) or parse_time(done.get("lastTransitionTime"))
        return JobState("Succeeded", attempts, "Complete", done.get("message") or "", start, end)
    failed = _condition(job, "Failed")
    if failed is not None:
        return JobState(
            "Failed",
            attempts,
            failed.get("reason") or "Failed",
            failed.get("message") or "",
            start,
            parse_time(failed.get("lastTransitionTime")),
        )
    return JobState("Running", attempts, start_time=start)


def _terminated(pod: Mapping[str, Any], container: str) -> Mapping[str, Any] | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == container:
            return (status.get("state") or {}).get("terminated")
    return None


def _memory_limit(pod: Mapping[str, Any], container: str) -> str | None:
    for spec in (pod.get("spec") or {}).get("containers") or []:
        if spec.get("name") == container:
            return ((spec.get("resources") or {}).get("limits") or {}).get("memory")
    return None


def trainer_report(pods: Iterable[Mapping[str, Any]], phase: JobPhase, container: str) -> Report:
    """The parsed summary of the deciding pod; its raw text if it is not a summary; None if there is none."""
    finished = []
    for pod in pods:
        terminated = _terminated(pod, container)
        if terminated is None:
            continue
        ok = terminated.get("exitCode") == 0
        if (phase == "Succeeded") == ok:
            finished.append((terminated.get("finishedAt") or "", terminated, pod))
    if not finished:
        return None
    _, terminated, pod = max(finished, key=lambda item: item[0])
    if terminated.get("reason") == "OOMKilled":
        limit = _memory_limit(pod, container)
        return KilledByRuntime(
            "OOMKilled",
            f"the trainer used more memory than its limit ({limit or 'none set'}) and was OOMKilled: raise "
            "spec.training.resources.limits.memory (and requests.memory), or train on less data",
        )
    text = (terminated.get("message") or "").strip()
    if not text:
        reason = terminated.get("reason") or "no termination message"
        return f"the trainer exited with code {terminated.get('exitCode')} ({reason}) without a summary"
    try:
        return parse_termination_message(text)
    except ValidationError:
        return text[-2000:]  # the end of its log (FallbackToLogsOnError), or whatever it wrote
