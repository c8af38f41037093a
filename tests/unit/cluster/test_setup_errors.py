"""Bad setup ends in one line that names the cause and the fix, and exit code 2, never a traceback."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest
from kubeloop_cluster import cli, toolchain


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kubeloop_cluster.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_go_is_one_clear_line(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path), "KUBELOOP_CACHE": str(tmp_path / "cache")}
    result = run_cli("build", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kubeloop-cluster: Go is not installed") and "install Go" in lines[0]


def test_port_in_use_is_one_clear_line_and_leaves_the_host_as_it_was(tmp_path):
    if toolchain.cache_dir("kubernetes").is_dir() is False:
        pytest.skip("needs the built tools (make tools); the port is checked after the build")
    links_before = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))  # every address, the node's veth among them
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "KUBELOOP_APISERVER_PORT": str(port), "KUBELOOP_CLUSTER": "port-clash"}
        result = run_cli("up", env=env)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"kubeloop-cluster: port {port} on 10\.\d+\.0\.1 for the API server is already in use \(another local "
        r"cluster\?\): run `make cluster-down`, or pick another port with KUBELOOP_APISERVER_PORT=<port>",
        last,
    ), last
    assert "Traceback" not in result.stderr
    assert subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout == links_before


def test_failed_build_is_one_clear_line(tmp_path, monkeypatch, capsys):
    module = tmp_path / "broken"
    module.mkdir()
    (module / "go.mod").write_text(
        "module kubeloop.dev/broken\n\ngo 1.24.0\n\nrequire example.invalid/nothing v1.0.0\n"
    )
    (module / "go.sum").write_text("")
    monkeypatch.setattr(toolchain, "TOOLS_SOURCES", tmp_path)
    monkeypatch.setattr(
        toolchain,
        "TOOLS",
        {
            "broken": toolchain.GoTool(
                "broken", "example.invalid/nothing", {"nothing": "example.invalid/nothing"}
            )
        },
    )
    monkeypatch.setattr(toolchain, "BINARIES", {"nothing": "broken"})
    monkeypatch.setenv("KUBELOOP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GOFLAGS", "-mod=readonly")
    monkeypatch.setenv("GOPROXY", "off")
    assert cli.main(["build"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("kubeloop-cluster: building nothing failed: ")
    assert "full log: " in err[-1]
    assert not any(line.startswith("Traceback") for line in err)
