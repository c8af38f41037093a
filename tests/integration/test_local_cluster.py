"""The local cluster is a real Kubernetes: a real kubelet runs the project's images in containerd, kube-proxy
routes Services, CoreDNS resolves their names, and a supervisor keeps the control plane running."""

from __future__ import annotations

import ipaddress
import json
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from kubeloop.builders.security import NON_ROOT_UID, restricted_container, restricted_pod
from kubeloop.settings import Settings

TRAINER_IMAGE = Settings().trainer_image  # built from trainer-image/Dockerfile and loaded into the node

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
                            "image": TRAINER_IMAGE,
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
    assert ipaddress.ip_address(pod["status"]["podIP"]) in ipaddress.ip_network(cluster.network.pod_cidr)


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


# Answers every GET with the pod's name, so a client can tell which pod the Service chose.
WHOAMI_SERVER = (
    "import http.server, socket\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        body = socket.gethostname().encode()\n"
    "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def log_message(self, *args): pass\n"
    "http.server.ThreadingHTTPServer(('0.0.0.0', 8000), H).serve_forever()\n"
)


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
                                "image": TRAINER_IMAGE,
                                "command": ["python", "-c", WHOAMI_SERVER],
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


def test_containers_are_real_restricted_and_isolated(cluster, namespace):
    """The trainer image under the restricted profile the operator's builders give every pod: the runtime
    runs it as 65532, with a read-only root, in a PID namespace of its own, and `kubectl logs` has its output."""
    code = (
        "import json, os, pathlib\n"
        "try:\n"
        "    pathlib.Path('/kubeloop-probe').write_text('x'); root = 'writable'\n"
        "except OSError as error:\n"
        "    root = error.strerror\n"
        "pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        "print('hello from a container', flush=True)\n"
        "pathlib.Path('/dev/termination-log').write_text(json.dumps(dict(uid=os.getuid(), root=root, pids=pids)))\n"
    )
    job = python_job("real", code, container={"securityContext": restricted_container()})
    job["spec"]["template"]["spec"]["securityContext"] = restricted_pod()
    apply(cluster, {**job, "metadata": {"name": "real", "namespace": namespace}})
    assert wait_for(lambda: job_condition(cluster, namespace, "real"), what="job real") == "Complete"
    pod = job_pod(cluster, namespace, "real")
    status = pod["status"]["containerStatuses"][0]
    assert status["containerID"].startswith("containerd://")
    report = json.loads(status["state"]["terminated"]["message"])
    assert report["uid"] == NON_ROOT_UID
    assert report["root"] == "Read-only file system"
    assert report["pids"] == [1], "only its own process is visible: a PID namespace of its own"
    logs = cluster.kubectl("logs", "-n", namespace, pod["metadata"]["name"]).stdout
    assert logs.strip() == "hello from a container"


def answer(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except OSError:  # until kube-proxy has the Service's rules: ICMP unreachable
        return None


def test_service_routes_and_dns_resolves(cluster, namespace):
    """kube-proxy spreads requests to the ClusterIP over both pods; from a pod, the Service's DNS name works."""
    apply(cluster, http_deployment(namespace, "web", replicas=2))
    wait_for(lambda: available(cluster, namespace, "web"), what="deployment web Available")
    pods = {
        pod["metadata"]["name"] for pod in get(cluster, "pods", "-n", namespace, "-l", "app=web")["items"]
    }
    wait_for(lambda: len(endpoint_addresses(cluster, namespace, "web")) == 2, what="both endpoints")
    cluster_ip = get(cluster, "service", "web", "-n", namespace)["spec"]["clusterIP"]
    wait_for(
        lambda: answer(f"http://{cluster_ip}/"), timeout=30, what="kube-proxy to program the new ClusterIP"
    )
    answered: dict[str, int] = {}
    for _ in range(60):
        # a new connection each time: kube-proxy balances connections, not requests
        with urllib.request.urlopen(f"http://{cluster_ip}/", timeout=5) as response:
            name = response.read().decode()
        answered[name] = answered.get(name, 0) + 1
    assert set(answered) == pods, answered
    assert min(answered.values()) >= 10, f"both pods get a fair share of 60 connections: {answered}"

    code = (
        "import pathlib, urllib.request\n"
        f"body = urllib.request.urlopen('http://web.{namespace}.svc.cluster.local/', timeout=10).read()\n"
        "pathlib.Path('/dev/termination-log').write_bytes(body)\n"
    )
    apply(cluster, {**python_job("client", code), "metadata": {"name": "client", "namespace": namespace}})
    assert wait_for(lambda: job_condition(cluster, namespace, "client"), what="job client") == "Complete"
    message = job_pod(cluster, namespace, "client")["status"]["containerStatuses"][0]["state"]["terminated"]
    assert message["message"] in pods


def test_port_forward_reaches_a_server_listening_in_its_pod(cluster, namespace):
    apply(cluster, http_deployment(namespace, "web"))
    wait_for(lambda: available(cluster, namespace, "web"), what="deployment web Available")
    pod = get(cluster, "pods", "-n", namespace, "-l", "app=web")["items"][0]["metadata"]["name"]
    with cluster.port_forward(namespace, f"pod/{pod}", 8000) as local_port:
        answer = urllib.request.urlopen(f"http://127.0.0.1:{local_port}/", timeout=5).read().decode()
    assert answer == pod


def test_the_supervisor_restarts_the_control_plane_after_an_api_server_outage(cluster, namespace):
    """Without the API server for 35 s, kube-controller-manager and kube-scheduler lose their leases and exit;
    the supervisor restarts all three, and the cluster schedules and runs new work again."""
    starts_before = {
        name: cluster.log_path(name).read_text().count("supervisor: starting")
        for name in ("kube-controller-manager", "kube-scheduler")
    }
    cluster.hold("kube-apiserver")
    try:
        wait_for(lambda: not cluster.ready(), timeout=30, what="the API server to stop")
        outage = time.monotonic()
        wait_for(lambda: time.monotonic() - outage > 35, timeout=60, interval=1, what="a 35 s outage")
    finally:
        cluster.release("kube-apiserver")
    wait_for(cluster.ready, timeout=90, what="the API server to be back")
    restarted = {
        name: cluster.log_path(name).read_text().count("supervisor: starting") for name in starts_before
    }
    code = "import pathlib; pathlib.Path('/dev/termination-log').write_text('after')"
    apply(cluster, {**python_job("after", code), "metadata": {"name": "after", "namespace": namespace}})
    assert (
        wait_for(lambda: job_condition(cluster, namespace, "after"), timeout=120, what="job after")
        == "Complete"
    )
    assert all(restarted[name] > starts_before[name] for name in starts_before), (starts_before, restarted)
