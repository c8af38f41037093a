"""What the demo starts and stops: its own local cluster, the operator installed as users install it
(`helm install` of charts/kubeloop with the built operator image, see release.py), and a namespace with the
object store's Secret.

`Stack.down()` stops everything `up()` started, whatever state it reached. The operator's integration tests
(`tests/integration/operator_fixtures.py`) use this module's cluster-setup functions, and run the operator as
a host process (operator_process.py) because they SIGKILL it at exact points.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import fsspec
import yaml
from kubeloop_cluster.cluster import LocalCluster

from kubeloop_demo.config import DemoConfig
from kubeloop_demo.kube import Kube
from kubeloop_demo.release import InstalledOperator, OperatorError

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kubeloop"
CRDS = ROOT / "crds"
OPERATOR_NAMESPACE = "kubeloop-system"
RELEASE = "kubeloop"
S3_SECRET = "kubeloop-s3"  # the operator's default KUBELOOP_S3_SECRET: training and serving pods read it
CRD_NAMES = ("trainingruns", "modelversions", "driftmonitors")

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


def server_side_apply(cluster: LocalCluster, objects: list[dict]) -> None:
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


def install_rbac(cluster: LocalCluster, sets: tuple[str, ...] = ()) -> str:
    """Apply the chart's ServiceAccount and RBAC, rendered with `--set` values `sets`; returns the
    ServiceAccount's name."""
    cluster.kubectl("create", "namespace", OPERATOR_NAMESPACE, check=False)
    objects = helm_template(cluster, "serviceaccount.yaml", "rbac.yaml", sets=sets)
    server_side_apply(cluster, objects)
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
    server_side_apply(cluster, [secret])


def s3_fs(cluster: LocalCluster) -> fsspec.AbstractFileSystem:
    """The cluster's object store, as the test process (not a pod) reaches it."""
    return fsspec.filesystem("s3", skip_instance_cache=True, **cluster.s3.storage_options())


def upload(cluster: LocalCluster, key: str, data: bytes) -> str:
    """Put `data` in the cluster's bucket; returns its s3:// URI."""
    s3_fs(cluster).pipe_file(f"{cluster.s3.bucket}/{key}", data)
    return f"s3://{cluster.s3.bucket}/{key}"


# -- the whole stack --------------------------------------------------------------------------------------
class Stack:
    """The cluster, the CRDs and RBAC, the namespace and the operator: `up()` then, always, `down()`."""

    def __init__(self, config: DemoConfig, say: Say, keep: bool = False):
        self.config = config
        self.say = say
        self.keep = keep
        self.output = config.output
        self.cluster = LocalCluster(config.cluster)
        self.operator: InstalledOperator | None = None
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
        except OperatorError as e:
            raise StackError(str(e)) from e
        self.say(f"stack ready in {time.monotonic() - started:.0f}s")
        return self

    def _up(self) -> None:
        self.cluster.up(log=self.say)
        self.say(f"helm install {RELEASE} charts/kubeloop (the CRDs, RBAC and the operator image) ...")
        self.operator = InstalledOperator(self.cluster, self.output / "operator.log").install()
        create_namespace(self.cluster, self.config.namespace)
        self.kube = Kube(self.cluster.kubeconfig)

    def upload(self, key: str, data: bytes) -> str:
        return upload(self.cluster, key, data)

    def collect_logs(self) -> Path | None:
        """Copy every container's log (`kubectl logs`) into <output>/pods/<pod name>/<container>.log, before
        `down()` deletes the cluster and its logs with it."""
        if self.kube is None:
            return None
        target = self.output / "pods"
        shutil.rmtree(target, ignore_errors=True)
        for pod in self.kube.pods(self.config.namespace):
            name = pod["metadata"]["name"]
            for container in pod["spec"]["containers"]:
                result = self.cluster.kubectl(
                    "logs", "-n", self.config.namespace, name, "-c", container["name"], check=False
                )
                folder = target / name
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{container['name']}.log").write_text(result.stdout or result.stderr)
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
            self._step("copy the operator's log", self.operator.save_log)
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
