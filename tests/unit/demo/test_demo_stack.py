"""The demo's process hygiene, without a cluster: the operator dies with the demo, even by SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

CHILD = """
import subprocess, sys, time
from kubeloop_demo.operator_process import _die_with_parent
p = subprocess.Popen(["sleep", "60"], preexec_fn=_die_with_parent, start_new_session=True)
print(p.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too: it only waits for its parent (init here) to reap it
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_a_child_started_like_the_operator_dies_with_a_killed_demo():
    demo = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        grandchild = int(demo.stdout.readline())
        assert _alive(grandchild)
        demo.send_signal(signal.SIGKILL)
        demo.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(grandchild) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(grandchild), "the operator would outlive a SIGKILLed demo"
    finally:
        demo.kill()
