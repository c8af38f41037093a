"""Pure builders of the pod status the agent reports, in the shape the kubelet writes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubeloop_cluster.agent.node import now

if TYPE_CHECKING:
    from kubeloop_cluster.agent.pod import Container, PodWorker


def container_status(container: Container) -> dict:
    status = {
        "name": container.name,
        "image": container.spec.get("image", ""),
        "imageID": "",
        "containerID": f"kubeloop://{container.workdir.name}/{container.name}/{container.restarts}",
        "ready": container.ready,
        "started": container.process is not None,
        "restartCount": container.restarts,
        "state": container.state,
    }
    if container.last_state:
        status["lastState"] = container.last_state
    return status


def pod_phase(worker: PodWorker) -> str:
    main = [c for c in worker.containers if not c.init]
    init = [c for c in worker.containers if c.init]
    if any(_failed(c) and c.done for c in init):
        return "Failed"
    if main and all(c.done for c in main):
        return "Succeeded" if all(not _failed(c) for c in main) else "Failed"
    if all(c.done for c in init) and any(c.process is not None or c.done or c.restarts for c in main):
        return "Running"
    return "Pending"


def _failed(container: Container) -> bool:
    return (container.state.get("terminated") or {}).get("exitCode", 0) != 0


def _condition(worker: PodWorker, kind: str, ok: bool) -> dict:
    status = "True" if ok else "False"
    previous = worker.conditions_since.get(kind)
    if previous is None or previous[0] != status:
        worker.conditions_since[kind] = (status, now())
    return {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": worker.conditions_since[kind][1],
    }


def pod_status(worker: PodWorker) -> dict:
    main = [c for c in worker.containers if not c.init]
    phase = pod_phase(worker)
    initialized = all(c.done for c in worker.containers if c.init)
    ready = phase == "Running" and all(c.ready for c in main)
    conditions = [
        _condition(worker, "PodReadyToStartContainers", worker.config_error is None),
        _condition(worker, "Initialized", initialized),
        _condition(worker, "Ready", ready),
        _condition(worker, "ContainersReady", ready),
        {
            "type": "PodScheduled",
            "status": "True",
            "lastProbeTime": None,
            "lastTransitionTime": worker.started_at,
        },
    ]
    host_ip = worker.agent.node_ip
    status = {
        "phase": phase,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": worker.ip,
        "podIPs": [{"ip": worker.ip}],
        "startTime": worker.started_at,
        "conditions": conditions,
        "containerStatuses": worker.container_statuses(init=False),
    }
    if any(c.init for c in worker.containers):
        status["initContainerStatuses"] = worker.container_statuses(init=True)
    if worker.config_error:
        status["message"] = worker.config_error
    return status
