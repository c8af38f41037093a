"""Run the real operator against the local cluster, under the chart's RBAC, as the chart would.

- The CRDs from `crds/`, and the chart's ServiceAccount and RBAC rendered by `helm template` and applied.
- A kubeconfig holding only a token the API server issued for that ServiceAccount: the operator has exactly
  the chart's permissions, never the admin's.
- `kubeloop-operator` as a subprocess with its log in a file (printed when a test fails), SIGKILL and
  restart helpers, and its health and metrics endpoints on free loopback ports.

The cluster setup and the operator process are the demo's (`kubeloop_demo.stack`,
`kubeloop_demo.operator_process`): one implementation, so the demo runs the operator exactly as these tests do.

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
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from kubeloop_demo.operator_process import OperatorProcess
from kubeloop_demo.operator_process import operator_env as stack_operator_env
from kubeloop_demo.stack import (
    OPERATOR_NAMESPACE,
    S3_SECRET,
    helm_template,  # noqa: F401  (re-exported: the test modules import every helper from here)
    install_crds,
    install_rbac,
    s3_fs,
    server_side_apply,  # noqa: F401
    upload,  # noqa: F401
)
from sklearn.datasets import load_iris


# -- cluster setup and the operator process: one implementation with the demo ------------------------------
def operator_env(cluster) -> dict[str, str]:
    """The chart's environment for the operator under test. Without the object store's credentials: the
    operator itself does not need the store (training pods get it from a Secret); the DriftMonitor tests
    restart it with them."""
    return stack_operator_env(cluster, pod_name="operator-under-test", store_credentials=False)


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
