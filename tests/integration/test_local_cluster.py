"""The local cluster is a real Kubernetes: real controllers act on what the node agent reports."""

from __future__ import annotations

import ipaddress
import json
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration


def apply(cluster, manifest: dict | list[dict]) -> None:
    docs = manifest if isinstance(manifest, list) else [manifest]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def get(cluster, *args: str) -> dict:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def wait_for(predicate, timeout: float = 90.0, interval: float = 0.5, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def job_condition(cluster, namespace: str, name: str) -> str | None:
    job = get(cluster, "job", name, "-n", namespace)
    for condition in job.get("status", {}).get("conditions") or []:
        if condition["type"] in ("Complete", "Failed") and condition["status"] == "True":
            return condition["type"]
    return None


@pytest.fixture
def namespace(cluster):
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def python_job(name: str, code: str, **pod_extra) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "main",
                            "image": "python:3.11-slim",
                            "command": ["python", "-c", code],
                            "terminationMessagePolicy": "FallbackToLogsOnError",
                            **pod_extra.pop("container", {}),
                        }
                    ],
                    **pod_extra,
                }
            },
        },
    }


def job_pod(cluster, namespace: str, job: str) -> dict:
    pods = get(cluster, "pods", "-n", namespace, "-l", f"job-name={job}")["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


def test_api_server_ready_and_node_ready(cluster):
    assert cluster.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"
    node = get(cluster, "node", "kubeloop-node")
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    assert ready == "True"


def test_job_completes_through_the_real_job_controller(cluster, namespace):
    code = "import os, pathlib; pathlib.Path('/dev/termination-log').write_text('done on ' + os.environ['POD_IP'])"
    job = python_job(
        "ok",
        code,
        container={"env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]},
    )
    apply(cluster, {**job, "metadata": {"name": "ok", "namespace": namespace}})
    assert wait_for(lambda: job_condition(cluster, namespace, "ok"), what="job ok to finish") == "Complete"
    pod = job_pod(cluster, namespace, "ok")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert terminated["message"] == f"done on {pod['status']['podIP']}"
    assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(cluster.pod_network.cidr)


def test_failing_job_reports_exit_code_and_termination_message(cluster, namespace):
    code = (
        "import pathlib, sys; pathlib.Path('/dev/termination-log').write_text('bad input: column x missing');"
        " sys.exit(3)"
    )
    apply(cluster, {**python_job("bad", code), "metadata": {"name": "bad", "namespace": namespace}})
    assert wait_for(lambda: job_condition(cluster, namespace, "bad"), what="job bad to finish") == "Failed"
    pod = job_pod(cluster, namespace, "bad")
    assert pod["status"]["phase"] == "Failed"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 3
    assert terminated["reason"] == "Error"
    assert terminated["message"] == "bad input: column x missing"


def test_fallback_to_logs_on_error(cluster, namespace):
    code = "import sys; print('traceback line 1'); print('ValueError: boom', flush=True); sys.exit(1)"
    apply(cluster, {**python_job("logs", code), "metadata": {"name": "logs", "namespace": namespace}})
    wait_for(lambda: job_condition(cluster, namespace, "logs"), what="job logs to finish")
    terminated = job_pod(cluster, namespace, "logs")["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 1
    assert terminated["message"].splitlines()[-1] == "ValueError: boom"


def test_env_from_configmap_secret_and_volumes(cluster, namespace):
    apply(
        cluster,
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "settings", "namespace": namespace},
                "data": {"mode": "fast", "task.json": '{"rows": 3}'},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "creds", "namespace": namespace},
                "stringData": {"password": "s3cr3t"},
            },
        ],
    )
    code = (
        "import os, json, pathlib;"
        "task = json.loads(pathlib.Path('/etc/kubeloop/task.json').read_text());"
        "token = pathlib.Path('/var/run/secrets/kubernetes.io/serviceaccount/token').read_text();"
        "pathlib.Path('/scratch/x').write_text('ok');"
        "out = dict(mode=os.environ['MODE'], pw=os.environ['PW'], ns=os.environ['NS'], rows=task['rows'],"
        " token=len(token) > 100, scratch=pathlib.Path('/scratch/x').read_text(), greeting=os.environ['GREETING']);"
        "pathlib.Path('/dev/termination-log').write_text(json.dumps(out))"
    )
    job = python_job(
        "env",
        code,
        container={
            "env": [
                {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "GREETING", "value": "hello $(MODE)"},
            ],
            "volumeMounts": [
                {"name": "task", "mountPath": "/etc/kubeloop", "readOnly": True},
                {"name": "scratch", "mountPath": "/scratch"},
            ],
        },
        volumes=[
            {
                "name": "task",
                "configMap": {"name": "settings", "items": [{"key": "task.json", "path": "task.json"}]},
            },
            {"name": "scratch", "emptyDir": {}},
        ],
    )
    apply(cluster, {**job, "metadata": {"name": "env", "namespace": namespace}})
    assert wait_for(lambda: job_condition(cluster, namespace, "env"), what="job env to finish") == "Complete"
    message = job_pod(cluster, namespace, "env")["status"]["containerStatuses"][0]["state"]["terminated"][
        "message"
    ]
    assert json.loads(message) == {
        "mode": "fast",
        "pw": "s3cr3t",
        "ns": namespace,
        "rows": 3,
        "token": True,
        "scratch": "ok",
        "greeting": "hello fast",
    }
    assert not Path("/scratch/x").exists(), "an emptyDir must not leak onto the host's path"


def http_deployment(namespace: str, name: str, replicas: int = 1) -> list[dict]:
    labels = {"app": name}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "terminationGracePeriodSeconds": 5,
                        "containers": [
                            {
                                "name": "web",
                                "image": "python:3.11-slim",
                                "command": ["python", "-m", "http.server", "8000", "--bind", "$(POD_IP)"],
                                "env": [
                                    {
                                        "name": "POD_IP",
                                        "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                                    }
                                ],
                                "ports": [{"name": "http", "containerPort": 8000}],
                                "readinessProbe": {
                                    "httpGet": {"path": "/", "port": "http"},
                                    "periodSeconds": 1,
                                },
                                "livenessProbe": {"httpGet": {"path": "/", "port": 8000}, "periodSeconds": 2},
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
    ]


def available(cluster, namespace: str, name: str) -> bool:
    deployment = get(cluster, "deployment", name, "-n", namespace)
    conditions = {c["type"]: c["status"] for c in deployment.get("status", {}).get("conditions") or []}
    return (
        conditions.get("Available") == "True"
        and deployment["status"].get("readyReplicas") == deployment["spec"]["replicas"]
    )


def endpoint_addresses(cluster, namespace: str, service: str) -> list[str]:
    slices = get(cluster, "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={service}")
    return sorted(
        address
        for item in slices["items"]
        for endpoint in item.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready")
        for address in endpoint["addresses"]
    )


def test_deployment_becomes_available_and_its_endpoint_answers(cluster, namespace):
    apply(cluster, http_deployment(namespace, "web", replicas=2))
    wait_for(lambda: available(cluster, namespace, "web"), what="deployment web Available")
    pods = get(cluster, "pods", "-n", namespace, "-l", "app=web")["items"]
    pod_ips = sorted(pod["status"]["podIP"] for pod in pods)
    assert len(set(pod_ips)) == 2, "each pod has its own IP"
    assert wait_for(lambda: endpoint_addresses(cluster, namespace, "web") == pod_ips, what="EndpointSlice")
    for ip in pod_ips:
        with urllib.request.urlopen(f"http://{ip}:8000/", timeout=5) as response:
            assert response.status == 200


def test_crd_with_structural_schema_rejects_invalid_object(cluster):
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.smoke.kubeloop.dev"},
        "spec": {
            "group": "smoke.kubeloop.dev",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["size"],
                                    "properties": {"size": {"type": "integer", "minimum": 1, "maximum": 10}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    apply(cluster, crd)
    cluster.kubectl("wait", "--for=condition=Established", "crd/widgets.smoke.kubeloop.dev", "--timeout=30s")
    bad = {
        "apiVersion": "smoke.kubeloop.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 99},
    }
    result = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(bad), check=False)
    assert result.returncode != 0
    assert "spec.size" in result.stderr and "should be less than or equal to 10" in result.stderr


def test_rbac_is_enforced_and_service_account_tokens_work(cluster, namespace, tmp_path):
    cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    kubeconfig = cluster.service_account_kubeconfig(namespace, "reader", tmp_path / "reader.kubeconfig")

    def as_reader(*args: str):
        return cluster.kubectl(f"--kubeconfig={kubeconfig}", *args, check=False)

    who = json.loads(as_reader("auth", "whoami", "-o", "json").stdout)
    assert who["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:reader"
    denied = as_reader("get", "pods", "-n", namespace)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    cluster.kubectl("create", "role", "pod-reader", "--verb=list", "--resource=pods", "-n", namespace)
    cluster.kubectl(
        "create",
        "rolebinding",
        "reader",
        "--role=pod-reader",
        f"--serviceaccount={namespace}:reader",
        "-n",
        namespace,
    )
    wait_for(
        lambda: as_reader("get", "pods", "-n", namespace).returncode == 0,
        timeout=15,
        what="the RoleBinding to take effect",
    )
    assert as_reader("get", "secrets", "-n", namespace).returncode != 0, "only what the Role grants"


def processes_with(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_killed_agent_leaves_no_orphans_and_no_pods_stuck_running(cluster, namespace):
    marker = f"marker-{uuid.uuid4().hex}"
    sleeper = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sleeper", "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "python:3.11-slim",
                    "command": ["python", "-c", "import time, sys; time.sleep(600)", marker],
                }
            ],
        },
    }
    apply(cluster, [sleeper, *http_deployment(namespace, "web")])
    wait_for(lambda: available(cluster, namespace, "web"), what="deployment web Available")
    wait_for(lambda: processes_with(marker), what="the sleeper's process")
    web_before = get(cluster, "pods", "-n", namespace, "-l", "app=web")["items"][0]

    cluster.kill_agent()
    wait_for(
        lambda: not processes_with(marker), timeout=10, what="the sleeper's process to die with the agent"
    )
    cluster.start_agent()

    def sleeper_phase():
        phase = get(cluster, "pod", "sleeper", "-n", namespace)["status"]["phase"]
        return phase if phase != "Running" else None

    assert wait_for(sleeper_phase, what="the sleeper to leave Running") == "Failed"
    state = get(cluster, "pod", "sleeper", "-n", namespace)["status"]["containerStatuses"][0]["state"]
    assert state["terminated"]["reason"] == "ContainerStatusUnknown"
    assert not processes_with(marker)

    def web_restarted():
        pod = get(cluster, "pod", web_before["metadata"]["name"], "-n", namespace)
        status = pod["status"]["containerStatuses"][0]
        return status["restartCount"] >= 1 and status["ready"]

    wait_for(web_restarted, what="the web pod to be restarted and Ready again")
    wait_for(lambda: available(cluster, namespace, "web"), what="deployment web Available again")


def test_deleting_a_pod_sends_sigterm_then_sigkill_after_the_grace_period(cluster, namespace):
    marker = f"marker-{uuid.uuid4().hex}"
    stubborn = (
        "import signal, time, pathlib;"
        "signal.signal(signal.SIGTERM, lambda *a: pathlib.Path('/tmp/' + __import__('sys').argv[1]).touch());"
        "time.sleep(600)"
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "stubborn", "namespace": namespace},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [
                {"name": "main", "image": "python:3.11-slim", "command": ["python", "-c", stubborn, marker]}
            ],
        },
    }
    apply(cluster, pod)
    wait_for(lambda: processes_with(marker), what="the stubborn process")
    started = time.monotonic()
    cluster.kubectl("delete", "pod", "stubborn", "-n", namespace, "--wait=true", "--timeout=30s")
    elapsed = time.monotonic() - started
    assert Path(f"/tmp/{marker}").exists(), "the process received SIGTERM first"
    Path(f"/tmp/{marker}").unlink()
    assert not processes_with(marker), "SIGKILL ended it after the grace period"
    assert elapsed >= 2, f"the grace period was honoured (took {elapsed:.1f}s)"


def test_a_volume_over_the_project_keeps_the_project_visible(cluster, namespace):
    """An emptyDir over the clone's parent (as an emptyDir at /tmp covers a clone in /tmp) hides neither the
    virtualenv the container runs nor the sources; the rest of the directory is the empty volume."""
    from kubeloop_cluster.paths import REPO_ROOT

    parent = str(REPO_ROOT.parent)
    code = (
        "import os, pathlib, kubeloop_cluster;"
        f"entries = sorted(os.listdir({parent!r}));"
        "pathlib.Path('/dev/termination-log').write_text(','.join(entries))"
    )
    job = python_job(
        "covered",
        code,
        container={"volumeMounts": [{"name": "scratch", "mountPath": parent}]},
        volumes=[{"name": "scratch", "emptyDir": {}}],
    )
    apply(cluster, {**job, "metadata": {"name": "covered", "namespace": namespace}})
    assert wait_for(lambda: job_condition(cluster, namespace, "covered"), what="job covered") == "Complete"
    message = job_pod(cluster, namespace, "covered")["status"]["containerStatuses"][0]["state"]["terminated"]
    assert message["message"] == REPO_ROOT.name, "only the project is visible in the covering volume"


def test_pre_stop_hook_runs_before_sigterm(cluster, namespace):
    marker = f"marker-{uuid.uuid4().hex}"
    prestop, term = Path(f"/tmp/{marker}.prestop"), Path(f"/tmp/{marker}.term")
    server = (
        "import signal, sys, time, pathlib;"
        f"signal.signal(signal.SIGTERM, lambda *a: (pathlib.Path('{term}').write_text("
        f"str(pathlib.Path('{prestop}').exists())), sys.exit(0)));"
        "time.sleep(600)"
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hooked", "namespace": namespace},
        "spec": {
            "terminationGracePeriodSeconds": 10,
            "containers": [
                {
                    "name": "main",
                    "image": "python:3.11-slim",
                    "command": ["python", "-c", server, marker],
                    "lifecycle": {
                        "preStop": {"exec": {"command": ["python", "-c", f"open('{prestop}', 'w').close()"]}}
                    },
                }
            ],
        },
    }
    apply(cluster, pod)
    wait_for(lambda: processes_with(marker), what="the hooked process")
    cluster.kubectl("delete", "pod", "hooked", "-n", namespace, "--wait=true", "--timeout=30s")
    try:
        assert term.read_text() == "True", "SIGTERM came after the preStop hook had run"
    finally:
        prestop.unlink(missing_ok=True)
        term.unlink(missing_ok=True)
