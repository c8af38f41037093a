"""The supervisor restarts what exits, keeps a held program stopped, and stops everything on request.
Real short-lived processes, no mocks."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from kubeloop_cluster.supervisor import Program, Supervisor


def run_until(supervisor: Supervisor, predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        supervisor.step()
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def starts(log: Path) -> int:
    return log.read_text().count("supervisor: starting") if log.exists() else 0


def test_a_program_that_exits_is_restarted_after_a_growing_backoff(tmp_path: Path):
    log = tmp_path / "quick.log"
    program = Program("quick", [sys.executable, "-c", "print('ran')"], str(log))
    supervisor = Supervisor([program], tmp_path)
    run_until(supervisor, lambda: starts(log) >= 3)
    assert log.read_text().count("ran") >= 2
    assert program.backoff > 0.5, "each quick exit doubles the wait before the next start"


def test_a_held_program_is_stopped_and_comes_back_when_released(tmp_path: Path):
    log = tmp_path / "sleeper.log"
    program = Program("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], str(log), grace=2)
    supervisor = Supervisor([program], tmp_path)
    run_until(supervisor, lambda: program.process is not None and program.process.poll() is None)
    first = program.process
    (tmp_path / "sleeper").touch()
    run_until(supervisor, lambda: first.poll() is not None)
    supervisor.step()
    assert program.process is first, "not restarted while held"
    (tmp_path / "sleeper").unlink()
    run_until(supervisor, lambda: program.process is not first and program.process.poll() is None)
    assert starts(log) == 2
    supervisor.stop_all()
    assert program.process.poll() is not None
