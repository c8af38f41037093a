"""The local cluster's process supervisor: it keeps every component running, as systemd does on a real node.

`python -m kubeloop_cluster.supervisor <spec.json>` starts each program of the spec, restarts one that exits
(after a back-off that grows from 0.5 s to 10 s, and resets after a minute of running), and on SIGTERM stops
them in reverse order, each with SIGTERM, a grace period, then SIGKILL. Why restart: after the API server is
gone for ~30 s, kube-controller-manager and kube-scheduler exit when their leader election is lost, and a
cluster without them never finishes a rollout.

A file `<hold_dir>/<name>` keeps that program stopped (it is stopped if running): tests use it to take the API
server away for a while and give it back, as an outage would.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1


@dataclass
class Program:
    name: str
    argv: list[str]
    log: str
    env: dict[str, str] = field(default_factory=dict)
    grace: float = 10.0
    process: subprocess.Popen | None = None
    started: float = 0.0
    backoff: float = 0.5
    next_start: float = 0.0


def _die_with_parent() -> None:
    # The components die with the supervisor, even when it is SIGKILLed: nothing is left to sweep.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Supervisor:
    def __init__(self, programs: list[Program], hold_dir: Path):
        self.programs = programs
        self.hold_dir = hold_dir
        self.stopping = False

    def _held(self, program: Program) -> bool:
        return (self.hold_dir / program.name).exists()

    def _start(self, program: Program) -> None:
        with open(program.log, "ab") as log:
            log.write(f"--- supervisor: starting {program.name} at {time.ctime()}\n".encode())
            log.flush()
            program.process = subprocess.Popen(
                program.argv,
                env={**os.environ, **program.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        program.started = time.monotonic()

    @staticmethod
    def _stop(program: Program) -> None:
        process = program.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(program.grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def step(self) -> None:
        now = time.monotonic()
        for program in self.programs:
            running = program.process is not None and program.process.poll() is None
            if self._held(program):
                if running:
                    self._stop(program)
                continue
            if running:
                if now - program.started > 60:
                    program.backoff = 0.5
                continue
            if program.process is not None and program.next_start == 0.0:
                program.next_start = now + program.backoff  # it exited: wait before the restart
                program.backoff = min(program.backoff * 2, 10.0)
            if now >= program.next_start:
                program.next_start = 0.0
                self._start(program)

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "stopping", True))
        while not self.stopping:
            self.step()
            time.sleep(0.2)
        self.stop_all()

    def stop_all(self) -> None:
        """In reverse order of start: the node before the control plane, the API server before etcd."""
        for program in reversed(self.programs):
            self._stop(program)


def load(spec_path: Path) -> Supervisor:
    spec = json.loads(spec_path.read_text())
    programs = [Program(**program) for program in spec["programs"]]
    return Supervisor(programs, Path(spec["hold_dir"]))


def main() -> None:
    load(Path(sys.argv[1])).run()


if __name__ == "__main__":
    main()
