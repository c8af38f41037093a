"""Pure parts of the node agent: environment resolution, image table, probe thresholds, IPs, pod phase."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from kubeloop_cluster.agent import podenv
from kubeloop_cluster.agent.ipam import PodIPs
from kubeloop_cluster.agent.probes import ProbeState
from kubeloop_cluster.agent.status import pod_phase

POD = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "web"}},
    "spec": {"nodeName": "n", "serviceAccountName": "sa"},
    "status": {"podIP": "127.1.0.7", "hostIP": "127.0.0.1"},
}


def lookup(kind, name):
    data = {("configmap", "cm"): {"a": "1", "b": "2"}, ("secret", "s"): {"pw": "x"}}
    return data.get((kind, name))


def test_expand_follows_kubernetes_rules():
    env = {"A": "1"}
    assert podenv.expand("$(A)-$(B)-$$(A)", env) == "1-$(B)-$(A)"


def test_resolve_env_sources_in_order():
    container = {
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        "env": [
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
            {"name": "URL", "value": "http://$(IP):80/$(CM_A)"},
            {
                "name": "MEM",
                "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}},
            },
        ],
        "resources": {"limits": {"memory": "256Mi"}},
    }
    env = podenv.resolve(POD, container, lookup, {"PATH": "/bin"})
    assert env == {
        "PATH": "/bin",
        "CM_a": "1",
        "CM_b": "2",
        "IP": "127.1.0.7",
        "APP": "web",
        "PW": "x",
        "URL": "http://127.1.0.7:80/$(CM_A)",
        "MEM": "256",
    }


def test_missing_reference_is_an_error_unless_optional():
    required = {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}]}
    with pytest.raises(podenv.EnvError, match="nope"):
        podenv.resolve(POD, required, lookup, {})
    optional = {
        "env": [
            {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": True}}}
        ]
    }
    assert podenv.resolve(POD, optional, lookup, {}) == {}


def test_command_uses_explicit_command_or_the_image_table():
    table = {"ghcr.io/kubeloop/trainer": ["kubeloop-trainer"]}
    explicit = {"image": "x", "command": ["python", "-c", "$(CODE)"], "args": ["a"]}
    assert podenv.command(explicit, {"CODE": "print(1)"}, table) == ["python", "-c", "print(1)", "a"]
    implicit = {"image": "ghcr.io/kubeloop/trainer:0.1.0", "args": ["train"]}
    assert podenv.command(implicit, {}, table) == ["kubeloop-trainer", "train"]
    with pytest.raises(podenv.EnvError, match="explicit command"):
        podenv.command({"image": "nginx:1.27"}, {}, table)


def test_probe_thresholds():
    probe = {"periodSeconds": 1, "failureThreshold": 2, "successThreshold": 2, "initialDelaySeconds": 5}
    state = ProbeState(probe, started=100.0, success_default=False)
    assert not state.due(104.0) and state.due(105.0)
    assert state.record(True, 105.0) is False  # one success of two
    assert state.record(True, 106.0) is True
    assert state.record(False, 107.0) is True  # one failure of two
    assert state.record(False, 108.0) is False
    assert ProbeState(None, 0.0, success_default=False).result is True  # no probe: ready when running


def test_pod_ips_are_unique_plumbed_and_survive_restart(tmp_path: Path):
    plumbed: list[str] = []
    ips = PodIPs(tmp_path / "ips.json", "10.200.0.0/16", plumb=plumbed.append, unplumb=plumbed.remove)
    a, b = ips.allocate("a"), ips.allocate("b")
    assert (a, b) == ("10.200.1.1", "10.200.1.2"), "10.200.0.x is the node's own"
    assert plumbed == [a, b]
    assert PodIPs(tmp_path / "ips.json", "10.200.0.0/16").allocate("a") == a
    ips.release("a")
    assert plumbed == [b]
    assert ips.allocate("c", existing="10.200.9.9") == "10.200.9.9"
    assert ips.allocate("d", existing="10.99.0.5") == "10.200.1.1", (
        "an address outside the pod network is not kept"
    )


def _container(init=False, done=False, code=None, running=False, restarts=0):
    state = {"terminated": {"exitCode": code}} if code is not None else {}
    process = object() if running else None
    return SimpleNamespace(init=init, done=done, state=state, process=process, restarts=restarts)


@pytest.mark.parametrize(
    ("containers", "phase"),
    [
        ([_container(running=True)], "Running"),
        ([_container(done=True, code=0)], "Succeeded"),
        ([_container(done=True, code=1)], "Failed"),
        ([_container(init=True, done=True, code=1), _container()], "Failed"),
        ([_container(init=True, running=True), _container()], "Pending"),
        ([_container()], "Pending"),  # not started yet
        ([_container(restarts=1)], "Running"),  # in back-off before a restart, as the kubelet reports it
    ],
)
def test_pod_phase(containers, phase):
    assert pod_phase(SimpleNamespace(containers=containers)) == phase
