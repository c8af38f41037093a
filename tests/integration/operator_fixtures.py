"""Run the real operator against the local cluster, under the chart's RBAC, as the chart would.

- The CRDs from `crds/`, and the chart's ServiceAccount and RBAC rendered by `helm template` and applied.
- A kubeconfig holding only a token the API server issued for that ServiceAccount: the operator has exactly
  the chart's permissions, never the admin's.
- `kubeloop-operator` as a subprocess with its log in a file (printed when a test fails), SIGKILL and
  restart helpers, and its health and metrics endpoints on free loopback ports.

Load this module as a plugin in a test module (the directory is on pytest's pythonpath), and import the
helpers by name:

    pytest.register_assert_rewrite("operator_fixtures")
    from operator_fixtures import apply, condition, get, training_run, wait_finished

    pytest_plugins = ["operator_fixtures"]

One operator process serves the whole session; a test that kills or reconfigures it (`operator.kill()`,
`operator.start(KUBELOOP_...=...)`) gets it back running with the default settings afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
import yaml
from sklearn.datasets import load_iris

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kubeloop"
OPERATOR_NAMESPACE = "kubeloop-system"
RELEASE = "kubeloop"
OPERATOR_BIN = str(Path(sys.executable).with_name("kubeloop-operator"))
S3_SECRET = "kubeloop-s3"


# -- cluster setup ----------------------------------------------------------------------------------------
def helm_template(cluster, *templates: str, sets: tuple[str, ...] = ()) -> list[dict]:
    args = [str(cluster.tool("helm")), "template", RELEASE, str(CHART), "--namespace", OPERATOR_NAMESPACE]
    for template in templates:
        args += ["--show-only", f"templates/{template}"]
    for value in sets:
        args += ["--set", value]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def server_side_apply(cluster, objects: list[dict]) -> None:
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump_all(objects)
    )


def install_crds(cluster) -> None:
    # One implementation with the demo: it polls, because a CRD just applied may briefly read as NotFound.
    from kubeloop_demo.stack import install_crds as install

    install(cluster)


def install_rbac(cluster, sets: tuple[str, ...] = ()) -> str:
    """Apply the chart's ServiceAccount and RBAC; returns the ServiceAccount's name."""
    cluster.kubectl("create", "namespace", OPERATOR_NAMESPACE, check=False)
    objects = helm_template(cluster, "serviceaccount.yaml", "rbac.yaml", sets=sets)
    server_side_apply(cluster, objects)
    return next(o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount")


def s3_fs(cluster):
    return fsspec.filesystem("s3", skip_instance_cache=True, **cluster.s3.storage_options())


def upload(cluster, key: str, data: bytes) -> str:
    """Put `data` in the cluster's bucket; returns its s3:// URI."""
    s3_fs(cluster).pipe_file(f"{cluster.s3.bucket}/{key}", data)
    return f"s3://{cluster.s3.bucket}/{key}"


# -- the operator process ---------------------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OperatorProcess:
    """`kubeloop-operator` as a child process, with its log in `log_path`."""

    def __init__(self, kubeconfig: Path, log_path: Path, env: dict[str, str]):
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.base_env = env
        self.health_port = _free_port()
        self.metrics_port = _free_port()
        self.process: subprocess.Popen | None = None
        self.extra: dict[str, str] = {}
        self.starts = 0

    # lifecycle
    def start(self, wait: bool = True, **extra: str) -> OperatorProcess:
        assert not self.running, "the operator is already running"
        self.extra = dict(extra)
        env = {
            **self.base_env,
            "KUBECONFIG": str(self.kubeconfig),
            "KUBELOOP_BIND_ADDRESS": "127.0.0.1",
            "KUBELOOP_HEALTH_PORT": str(self.health_port),
            "KUBELOOP_METRICS_PORT": str(self.metrics_port),
            **extra,
        }
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== operator start #{self.starts} {sorted(extra.items())} =====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [OPERATOR_BIN], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        if wait:
            self.wait_ready()
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.running, f"the operator exited ({self.process.returncode}):\n{self.tail()}"
            try:
                if self.get(self.health_port, "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the operator did not become healthy in {timeout}s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL, as a node failure or an OOM kill would: no cleanup runs."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to end by itself (e.g. at a crash point); returns its exit code."""
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def restart(self, **extra: str) -> OperatorProcess:
        self.kill()
        return self.start(**extra)

    # observation
    @staticmethod
    def get(port: int, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()

    def metrics(self) -> str:
        return self.get(self.metrics_port, "/metrics")[1]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 80) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


def operator_env(cluster) -> dict[str, str]:
    """The environment the chart's Deployment would give the operator, for the local cluster."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBELOOP_", "AWS_", "KUBECONFIG"))}
    env.update(
        {
            "KUBELOOP_ARTIFACT_ROOT": f"s3://{cluster.s3.bucket}/artifacts",
            "KUBELOOP_LOG_LEVEL": "INFO",
            "KUBELOOP_RETRY_DELAY": "2",
            "KUBELOOP_POD_NAME": "operator-under-test",
            # the operator itself does not need the store; the training pods get it from a Secret
        }
    )
    return env


@pytest.fixture(scope="session")
def operator_setup(cluster, tmp_path_factory) -> dict[str, Any]:
    """CRDs, the chart's RBAC, and a kubeconfig with the ServiceAccount's token only."""
    install_crds(cluster)
    account = install_rbac(cluster)
    workdir = tmp_path_factory.mktemp("operator")
    kubeconfig = cluster.service_account_kubeconfig(
        OPERATOR_NAMESPACE, account, workdir / "operator.kubeconfig"
    )
    return {"account": account, "kubeconfig": kubeconfig, "workdir": workdir}


@pytest.fixture(scope="session")
def operator_session(cluster, operator_setup) -> Iterator[OperatorProcess]:
    process = OperatorProcess(
        operator_setup["kubeconfig"], operator_setup["workdir"] / "operator.log", operator_env(cluster)
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture
def operator(operator_session) -> Iterator[OperatorProcess]:
    """The session's operator, running with default settings; its log of this test is shown on failure."""
    if not operator_session.running or operator_session.extra:
        operator_session.kill()
        operator_session.start()
    offset = len(operator_session.log())
    yield operator_session
    # pytest shows a teardown's output only when the test failed
    print(f"----- operator log during the test ({operator_session.log_path}) -----")
    print(operator_session.log()[offset:][-20000:])
    if not operator_session.running or operator_session.extra:
        operator_session.kill()
        operator_session.start()


@pytest.fixture(scope="session")
def registry_context(operator_setup):
    """The operator's services in the test process, under the same ServiceAccount token: for calling the
    registry's API (`promote()`) the way a completed rollout does."""
    from kubeloop.k8s import EventRecorder, Kube
    from kubeloop.services.context import Context
    from kubeloop.settings import Settings
    from kubernetes import client as kclient
    from kubernetes import config as kconfig

    configuration = kclient.Configuration()
    kconfig.load_kube_config(str(operator_setup["kubeconfig"]), client_configuration=configuration)
    kube = Kube(configuration)
    context = Context(settings=Settings(), kube=kube, events=EventRecorder(kube, "integration-test"))
    yield context
    kube.close()


@pytest.fixture
def namespace(cluster) -> Iterator[str]:
    """A fresh namespace with the S3 Secret that training pods read their credentials from."""
    name = f"op-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", name)
    pod_env = cluster.s3.env(in_pod=True)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": S3_SECRET, "namespace": name},
        "stringData": pod_env,
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(secret))
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


# -- helpers for tests ------------------------------------------------------------------------------------
def get(cluster, kind: str, namespace: str, name: str | None = None, selector: str | None = None) -> Any:
    args = ["get", kind, "-n", namespace, "-o", "yaml"]
    if name:
        args.insert(2, name)
    if selector:
        args += ["-l", selector]
    result = cluster.kubectl(*args, check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr:
            return None
        raise AssertionError(result.stderr)
    doc = yaml.safe_load(result.stdout)
    return doc if name else doc["items"]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def condition(obj: dict | None, type_: str) -> dict | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return c
    return None


# -- TrainingRuns -------------------------------------------------------------------------------------------
RUN_TIMEOUT = 180


def iris_csv() -> bytes:
    frame = load_iris(as_frame=True).frame
    return frame.to_csv(index=False).encode()


def training_run(
    name: str,
    namespace: str,
    data_uri: str,
    *,
    model: str = "iris",
    estimator: str = "sklearn.tree.DecisionTreeClassifier",
    params: dict | None = None,
    validation: dict | None = None,
    policy: str = "Manual",
    data: dict | None = None,
    training: dict | None = None,
) -> dict:
    return {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "TrainingRun",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": model,
            "data": {"uri": data_uri, "target": "target", **(data or {})},
            "training": {
                "estimator": {"classPath": estimator, "params": params or {"max_depth": 3}},
                "seed": 1,
                "deadlineSeconds": 300,
                **(training or {}),
            },
            "validation": validation or {},
            "promotion": {"policy": policy},
        },
    }


def apply(cluster, *objects: dict) -> None:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))


def wait_finished(cluster, namespace: str, name: str, timeout: float = RUN_TIMEOUT) -> dict:
    def done():
        run = get(cluster, "trainingrun", namespace, name)
        c = condition(run, "Succeeded")
        return run if c and c["status"] in ("True", "False") else None

    return wait_for(done, timeout, f"TrainingRun {namespace}/{name} to finish")


def read_json(cluster, uri: str) -> dict:
    return json.loads(s3_fs(cluster).cat_file(uri.removeprefix("s3://")))
