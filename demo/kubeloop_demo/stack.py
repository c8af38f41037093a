"""What the demo starts and stops: its own local cluster, the CRDs, the chart's RBAC, a namespace with the
object store's Secret, and `kubeloop-operator` running with exactly the chart's permissions.

The operator runs as a process beside the cluster (the node agent would run it the same way from the
chart's Deployment), authenticated only by a token the API server issued for the chart's ServiceAccount.
`Stack.down()` stops everything `up()` started, whatever state it reached.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import fsspec
import yaml
from kubeloop_cluster.cluster import LocalCluster

from kubeloop_demo.config import DemoConfig
from kubeloop_demo.kube import Kube

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kubeloop"
CRDS = ROOT / "crds"
OPERATOR_NAMESPACE = "kubeloop-system"
RELEASE = "kubeloop"
S3_SECRET = "kubeloop-s3"  # the operator's default KUBELOOP_S3_SECRET: training and serving pods read it
CRD_NAMES = ("trainingruns", "modelversions", "driftmonitors")
PR_SET_PDEATHSIG = 1

Say = Callable[[str], None]


class StackError(RuntimeError):
    """Something the demo needs did not start; the message says what and where its log is."""


# -- cluster setup ----------------------------------------------------------------------------------------
def helm_template(cluster: LocalCluster, *templates: str, sets: tuple[str, ...] = ()) -> list[dict]:
    args = [str(cluster.tool("helm")), "template", RELEASE, str(CHART), "--namespace", OPERATOR_NAMESPACE]
    for template in templates:
        args += ["--show-only", f"templates/{template}"]
    for value in sets:
        args += ["--set", value]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def apply(cluster: LocalCluster, objects: list[dict]) -> None:
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-", input=yaml.safe_dump_all(objects)
    )


def install_crds(cluster: LocalCluster, timeout: float = 60.0) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    jsonpath = '{.status.conditions[?(@.type=="Established")].status}'
    deadline = time.monotonic() + timeout
    for crd in CRD_NAMES:
        while True:  # polled, not `kubectl wait`: a CRD just applied may briefly read as NotFound
            result = cluster.kubectl(
                "get", f"crd/{crd}.kubeloop.dev", "-o", f"jsonpath={jsonpath}", check=False
            )
            if result.stdout.strip() == "True":
                break
            if time.monotonic() > deadline:
                raise StackError(
                    f"CRD {crd}.kubeloop.dev not Established in {timeout:.0f}s: {result.stderr.strip()}"
                )
            time.sleep(0.5)


def install_rbac(cluster: LocalCluster) -> str:
    """Apply the chart's ServiceAccount and RBAC; returns the ServiceAccount's name."""
    cluster.kubectl("create", "namespace", OPERATOR_NAMESPACE, check=False)
    objects = helm_template(cluster, "serviceaccount.yaml", "rbac.yaml")
    apply(cluster, objects)
    return next(o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount")


def create_namespace(cluster: LocalCluster, namespace: str) -> None:
    """The demo's namespace, with the Secret its training and serving pods read S3 credentials from."""
    cluster.kubectl("create", "namespace", namespace, check=False)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": S3_SECRET, "namespace": namespace},
        "stringData": cluster.s3.env(in_pod=True),
    }
    apply(cluster, [secret])


def upload(cluster: LocalCluster, key: str, data: bytes) -> str:
    """Put `data` in the cluster's bucket; returns its s3:// URI."""
    fs = fsspec.filesystem("s3", skip_instance_cache=True, **cluster.s3.storage_options())
    fs.pipe_file(f"{cluster.s3.bucket}/{key}", data)
    return f"s3://{cluster.s3.bucket}/{key}"


# -- the operator process ---------------------------------------------------------------------------------
def _die_with_parent() -> None:
    """In the operator's child process: receive SIGKILL when the demo dies, even by SIGKILL, so that no
    operator is left acting on a cluster nobody watches (a normal exit stops it in order first)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def operator_env(cluster: LocalCluster) -> dict[str, str]:
    """The environment the chart's Deployment gives the operator (default values: cluster-wide), for the
    local cluster. Cluster-wide on purpose: with KUBELOOP_NAMESPACES set, kopf first tries to list namespaces,
    which the chart's RBAC does not grant, and waits about a minute before it falls back."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBELOOP_", "AWS_", "KUBECONFIG"))}
    env.update(
        {
            "KUBELOOP_ARTIFACT_ROOT": f"s3://{cluster.s3.bucket}/artifacts",
            "KUBELOOP_LOG_LEVEL": "INFO",
            "KUBELOOP_RETRY_DELAY": "2",
            "KUBELOOP_POD_NAME": "kubeloop-demo-operator",
            # as `operator.s3.existingSecret` + `operator.s3.endpointUrl` would: the DriftMonitor reads
            # reference profiles from the artifact store
            **cluster.s3.env(),
        }
    )
    return env


class OperatorProcess:
    """`kubeloop-operator` as a child process in its own process group, with its log in `log_path`."""

    def __init__(self, kubeconfig: Path, log_path: Path, env: dict[str, str]):
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.env = env
        self.health_port = _free_port()
        self.metrics_port = _free_port()
        self.process: subprocess.Popen | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 90.0) -> OperatorProcess:
        env = {
            **self.env,
            "KUBECONFIG": str(self.kubeconfig),
            "KUBELOOP_BIND_ADDRESS": "127.0.0.1",
            "KUBELOOP_HEALTH_PORT": str(self.health_port),
            "KUBELOOP_METRICS_PORT": str(self.metrics_port),
        }
        binary = str(Path(sys.executable).with_name("kubeloop-operator"))
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [binary],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches the demo only; it stops the operator in order
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise StackError(
                    f"kubeloop-operator exited with code {self.process.returncode}: see {self.log_path}\n"
                    + self.tail()
                )
            try:
                url = f"http://127.0.0.1:{self.health_port}/healthz"
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.3)
        raise StackError(f"kubeloop-operator did not become healthy in {timeout:.0f}s: see {self.log_path}")

    def stop(self, grace: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


# -- the whole stack --------------------------------------------------------------------------------------
class Stack:
    """The cluster, the CRDs and RBAC, the namespace and the operator: `up()` then, always, `down()`."""

    def __init__(self, config: DemoConfig, say: Say, keep: bool = False):
        self.config = config
        self.say = say
        self.keep = keep
        self.output = config.output
        self.cluster = LocalCluster(config.cluster)
        self.operator: OperatorProcess | None = None
        self.kube: Kube | None = None
        self._started_cluster = False

    def up(self) -> Stack:
        self.output.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        if self.cluster.is_up():
            raise StackError(
                f"a cluster named {self.config.cluster!r} is already running (another demo?): stop it with "
                f"`kubeloop-cluster down --name {self.config.cluster}` or pick another --cluster name"
            )
        self._started_cluster = True
        try:
            self._up()
        except subprocess.CalledProcessError as e:
            command = " ".join(str(a) for a in e.cmd[:4])
            raise StackError(f"`{command} ...` failed: {(e.stderr or e.stdout or '').strip()}") from e
        self.say(f"stack ready in {time.monotonic() - started:.0f}s")
        return self

    def _up(self) -> None:
        self.cluster.up(log=self.say)
        self.say("installing the CRDs and the chart's RBAC ...")
        install_crds(self.cluster)
        account = install_rbac(self.cluster)
        create_namespace(self.cluster, self.config.namespace)
        kubeconfig = self.cluster.service_account_kubeconfig(
            OPERATOR_NAMESPACE, account, self.output / "operator.kubeconfig"
        )
        log = self.output / "operator.log"
        log.write_bytes(b"")
        self.operator = OperatorProcess(kubeconfig, log, operator_env(self.cluster))
        self.say(f"starting kubeloop-operator as ServiceAccount {OPERATOR_NAMESPACE}/{account} (log: {log})")
        self.operator.start()
        self.kube = Kube(self.cluster.kubeconfig)

    def upload(self, key: str, data: bytes) -> str:
        return upload(self.cluster, key, data)

    def collect_logs(self) -> Path | None:
        """Copy every container's log into <output>/pods/<pod name>/<container>.log: the agent keeps them
        under the cluster's directory (`kubectl logs` is not served there), which `down()` deletes."""
        pods = self.cluster.dir / "agent" / "pods"
        if not pods.is_dir():
            return None
        names: dict[str, str] = {}
        if self.kube is not None:
            try:
                names = {
                    p["metadata"]["uid"]: p["metadata"]["name"] for p in self.kube.pods(self.config.namespace)
                }
            except Exception:  # the logs matter more than their names
                names = {}
        target = self.output / "pods"
        shutil.rmtree(target, ignore_errors=True)
        for log in pods.glob("*/*.log"):
            folder = target / names.get(log.parent.name, log.parent.name)
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, folder / log.name)
        return target

    def down(self) -> None:
        """Stop what `up()` started, in reverse order; safe to call at any point, and twice. One step that
        fails never keeps the next from running: the cluster always goes down (unless kept)."""
        if self._started_cluster:
            self._step("copy the pod logs", self.collect_logs)
        if self.kube is not None:
            self._step("close the API client", self.kube.close)
            self.kube = None
        if self.operator is not None:
            self._step("stop the operator", self.operator.stop)
            self.operator = None
        if self._started_cluster:
            if self.keep:
                self.say(
                    f"keeping cluster {self.config.cluster!r}: KUBECONFIG={self.cluster.kubeconfig}; stop it "
                    f"with `kubeloop-cluster down --name {self.config.cluster}`"
                )
            else:
                self.say(f"stopping cluster {self.config.cluster!r} ...")
                self._step("stop the cluster", lambda: self.cluster.down(quiet=True))
            self._started_cluster = False

    def _step(self, what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception as e:
            self.say(f"could not {what}: {type(e).__name__}: {e}")
