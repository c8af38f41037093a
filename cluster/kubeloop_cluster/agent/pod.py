"""One pod's life on the local node: start its containers as processes, probe them, restart them by policy,
report everything in the pod status, and stop them on deletion with SIGTERM, the grace period, then SIGKILL."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kubeloop_cluster.agent import podenv, volumes
from kubeloop_cluster.agent.node import now
from kubeloop_cluster.agent.probes import ProbeState, check
from kubeloop_cluster.agent.status import container_status, pod_phase, pod_status

if TYPE_CHECKING:
    from kubeloop_cluster.agent.main import Agent

MAX_MESSAGE = 4096  # the kubelet's limit on a termination message
FALLBACK_LINES = 80  # FallbackToLogsOnError: the last lines of the log, as the kubelet does
BACKOFF_CAP = 30.0  # seconds; shorter than the kubelet's 300 s, so local tests recover quickly


@dataclass
class Container:
    spec: dict
    init: bool
    workdir: Path
    env: dict = field(default_factory=dict)
    process: subprocess.Popen | None = None
    restarts: int = 0
    state: dict = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict = field(default_factory=dict)
    readiness: ProbeState | None = None
    liveness: ProbeState | None = None
    not_before: float = 0.0
    done: bool = False  # exited and will not be restarted

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def termination_log(self) -> Path:
        return self.workdir / f"{self.name}.termination-log"

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def ready(self) -> bool:
        return self.process is not None and bool(self.readiness and self.readiness.result)


class PodWorker(threading.Thread):
    def __init__(self, agent: Agent, pod: dict, restarted: bool = False):
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.agent = agent
        self.pod = pod
        self.uid = meta["uid"]
        self.workdir = agent.state_dir / "pods" / self.uid
        self.deleting = threading.Event()
        self.shutdown = threading.Event()
        self.restarted = restarted  # the agent restarted while this pod was running
        self.containers: list[Container] = []
        self.conditions_since: dict[str, tuple[str, str]] = {}
        self.started_at = (pod.get("status") or {}).get("startTime") or now()
        self.reported: dict | None = None
        self.config_error: str | None = None

    # -- inputs from the agent -----------------------------------------------------------------------------
    def update(self, pod: dict) -> None:
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            self.deleting.set()

    @property
    def namespace(self) -> str:
        return self.pod["metadata"]["namespace"]

    @property
    def pod_name(self) -> str:
        return self.pod["metadata"]["name"]

    # -- main loop -----------------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._run()
        except Exception as error:  # a bug here must not take the whole agent down
            self.agent.log(f"pod {self.namespace}/{self.pod_name}: worker failed: {error!r}")
            self._kill_all(0)
        finally:
            self.agent.forget(self.uid)

    def _run(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ip = self.agent.ips.allocate(self.uid, (self.pod.get("status") or {}).get("podIP"))
        self.pod.setdefault("status", {})["podIP"] = self.ip
        spec = self.pod["spec"]
        self.containers = [Container(c, True, self.workdir) for c in spec.get("initContainers") or []]
        self.containers += [Container(c, False, self.workdir) for c in spec["containers"]]
        if self.restarted:
            self._adopt_previous()
        while not self._prepare():
            if self._wait(2.0):
                break
        while not self.shutdown.is_set():
            if self.deleting.is_set():
                self._terminate()
                return
            self._step()
            self._report()
            if pod_phase(self) in ("Succeeded", "Failed"):
                self.agent.finished.add(self.uid)  # a stale event must never start it again
                return
            self._wait(0.25)
        self._kill_all(2)

    def _wait(self, seconds: float) -> bool:
        """Sleep, but wake on deletion or shutdown; True if woken."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.deleting.is_set() or self.shutdown.is_set():
                return True
            time.sleep(min(0.05, seconds))
        return False

    def _adopt_previous(self) -> None:
        """The agent died while this pod ran, and its processes died with it: count them as exited."""
        statuses = (self.pod.get("status") or {}).get("containerStatuses") or []
        by_name = {status["name"]: status for status in statuses}
        for container in self.containers:
            previous = by_name.get(container.name)
            if previous is None:
                continue
            container.restarts = previous.get("restartCount", 0)
            if "terminated" in (previous.get("state") or {}):
                container.state = previous["state"]
                container.done = not self._restarts(container, previous["state"]["terminated"]["exitCode"])
            elif "running" in (previous.get("state") or {}):
                message = "the node agent restarted, and the container's process ended with it"
                self._exited(container, 137, "ContainerStatusUnknown", message)

    def _prepare(self) -> bool:
        """Volumes and environments; False (with the reason in status) while a reference is missing."""
        try:
            self.volumes = volumes.materialise(
                self.pod, self.workdir / "volumes", self.agent.lookup(self.namespace), self.agent.token
            )
            base = self.agent.base_env(self.pod)
            for container in self.containers:
                container.env = podenv.resolve(
                    self.pod, container.spec, self.agent.lookup(self.namespace), base
                )
        except podenv.EnvError as error:
            self.config_error = str(error)
            for container in self.containers:
                container.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(error)}}
            self._report()
            return False
        self.config_error = None
        return True

    # -- containers ----------------------------------------------------------------------------------------
    def _step(self) -> None:
        pending_init = [c for c in self.containers if c.init and not c.done]
        runnable = pending_init[:1] if pending_init else [c for c in self.containers if not c.init]
        clock = time.monotonic()
        for container in runnable:
            if container.done:
                continue
            if container.process is None:
                if clock >= container.not_before:
                    self._start(container)
                continue
            code = container.process.poll()
            if code is not None:
                self._exited(container, code)
                continue
            self._probe(container, clock)

    def _start(self, container: Container) -> None:
        container.termination_log.write_text("")
        try:
            argv = podenv.command(container.spec, container.env, self.agent.entrypoints)
        except podenv.EnvError as error:
            container.state = {"waiting": {"reason": "CreateContainerError", "message": str(error)}}
            return
        with container.log.open("ab") as log:
            container.process = subprocess.Popen(
                self._launcher(container, argv, "launch"),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, so that SIGTERM reaches its children too
            )
        self.agent.remember_process(self.uid, container.process.pid)
        started = time.monotonic()
        container.state = {"running": {"startedAt": now()}}
        container.readiness = ProbeState(container.spec.get("readinessProbe"), started, success_default=False)
        container.liveness = ProbeState(container.spec.get("livenessProbe"), started, success_default=True)
        self.agent.event(
            self.pod, "Started", f"Started container {container.name} as pid {container.process.pid}"
        )

    def _launcher(self, container: Container, argv: list[str], purpose: str) -> list[str]:
        """The command that runs `argv` inside the container: its network, volumes and environment."""
        launch = {
            "argv": argv,
            "env": container.env,
            "cwd": container.spec.get("workingDir") or str(self.workdir),
            "mounts": volumes.mounts(container.spec, self.volumes, container.termination_log),
            "terminationLog": str(container.termination_log),
            "netns": self.agent.netns_path,
            "keepVisible": self.agent.project_paths,
        }
        spec_path = self.workdir / f"{container.name}.{purpose}.json"
        spec_path.write_text(json.dumps(launch))
        spec_path.chmod(0o600)  # the environment may hold secret values
        return [sys.executable, "-m", "kubeloop_cluster.agent.launch", str(spec_path)]

    def _pre_stop(self, container: Container, budget: float) -> None:
        """Run the preStop hook before SIGTERM, within the grace period, as the kubelet does: a server
        sleeps there until the endpoint lists stop naming it, so no request reaches a closed socket."""
        hook = (container.spec.get("lifecycle") or {}).get("preStop")
        if not hook or budget <= 0:
            return
        if "sleep" in hook:
            time.sleep(min(float(hook["sleep"]["seconds"]), budget))
        elif "httpGet" in hook:
            check(
                {"httpGet": hook["httpGet"], "timeoutSeconds": budget}, container.spec, self.ip, container.env
            )
        elif "exec" in hook:
            argv = [podenv.expand(part, container.env) for part in hook["exec"]["command"]]
            try:
                subprocess.run(
                    self._launcher(container, argv, "prestop"), timeout=budget, capture_output=True
                )
            except subprocess.TimeoutExpired:
                pass

    def _probe(self, container: Container, clock: float) -> None:
        for state, kind in ((container.readiness, "Readiness"), (container.liveness, "Liveness")):
            if state and state.due(clock):
                ok = state.record(check(state.probe, container.spec, self.ip, container.env))
                if not ok and kind == "Liveness":
                    self.agent.event(
                        self.pod, "Unhealthy", f"Liveness probe of {container.name} failed; killing it"
                    )
                    self._kill(container, self.pod["spec"].get("terminationGracePeriodSeconds", 30))

    def _message(self, container: Container, code: int) -> str:
        message = (
            container.termination_log.read_text(errors="replace")
            if container.termination_log.exists()
            else ""
        )
        policy = container.spec.get("terminationMessagePolicy", "File")
        if not message.strip() and code != 0 and policy == "FallbackToLogsOnError" and container.log.exists():
            lines = container.log.read_text(errors="replace").splitlines()[-FALLBACK_LINES:]
            message = "\n".join(lines)
        return message[-MAX_MESSAGE:]

    def _restarts(self, container: Container, code: int) -> bool:
        policy = self.pod["spec"].get("restartPolicy", "Always")
        if container.init:
            return code != 0 and policy != "Never"
        return policy == "Always" or (policy == "OnFailure" and code != 0)

    def _exited(
        self, container: Container, code: int, reason: str | None = None, message: str | None = None
    ) -> None:
        if code < 0:  # killed by a signal: report it as a shell would, 128 + signal
            code = 128 - code
        self.agent.forget_process(self.uid, container.process.pid if container.process else None)
        started = (container.state.get("running") or {}).get("startedAt")
        terminated = {
            "exitCode": code,
            "reason": reason or ("Completed" if code == 0 else "Error"),
            "startedAt": started,
            "finishedAt": now(),
        }
        text = self._message(container, code) if message is None else message
        if text:
            terminated["message"] = text
        container.process = None
        container.state = {"terminated": terminated}
        if self._restarts(container, code) and not self.deleting.is_set():
            container.last_state = {"terminated": terminated}
            container.not_before = time.monotonic() + min(BACKOFF_CAP, 2.0**container.restarts)
            container.restarts += 1
            container.state = {"waiting": {"reason": "CrashLoopBackOff" if code else "Completed"}}
        else:
            container.done = True

    def _kill(self, container: Container, grace: float) -> None:
        process = container.process
        if process is None:
            return
        started = time.monotonic()
        self._pre_stop(container, grace)
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=max(0.0, grace - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            process.wait()
        try:
            os.killpg(process.pid, signal.SIGKILL)  # stray children of the group
        except ProcessLookupError:
            pass
        self._exited(container, process.returncode)

    def _kill_all(self, grace: float) -> None:
        for container in self.containers:
            if container.process is not None:
                self._kill(container, grace)

    def _terminate(self) -> None:
        meta = self.pod["metadata"]
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = self.pod["spec"].get("terminationGracePeriodSeconds", 30)
        self.agent.event(self.pod, "Killing", f"Stopping the pod's containers (grace period {grace}s)")
        threads = [
            threading.Thread(target=self._kill, args=(c, grace))
            for c in self.containers
            if c.process is not None
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._report()
        self.agent.delete_pod(self.pod)
        self.agent.ips.release(self.uid)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- status --------------------------------------------------------------------------------------------
    def container_statuses(self, init: bool) -> list[dict]:
        return [container_status(c) for c in self.containers if c.init == init]

    def _report(self) -> None:
        status = pod_status(self)
        if status != self.reported:
            self.agent.patch_status(self.pod, status)
            self.reported = status
