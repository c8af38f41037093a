"""The operator as users run it: `helm install` of charts/kubeloop with the operator image built from
operator-image/Dockerfile, in the cluster, under the chart's own RBAC.

`InstalledOperator` offers what the demo's story and the end-to-end test watch: whether the operator is
running, and its log (`kubectl logs`, copied into a file so that it outlives the cluster).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from kubeloop_cluster.cluster import LocalCluster

CHART = Path(__file__).resolve().parents[2] / "charts" / "kubeloop"
RELEASE = "kubeloop"
NAMESPACE = "kubeloop-system"
S3_SECRET = "kubeloop-s3"  # the operator's default KUBELOOP_S3_SECRET: training and serving pods read it too


class OperatorError(RuntimeError):
    """The operator did not install or did not become ready; the message says where its log is."""


def helm_values(cluster: LocalCluster, retry_delay: int = 2) -> list[str]:
    """The demo release's values (all strings, for `--set-string`): the local store as the artifact root, its
    credentials from a Secret, and a short retry delay so that the story moves at a demo's pace."""
    return [
        f"operator.artifactRoot=s3://{cluster.s3.bucket}/artifacts",
        f"operator.s3.existingSecret={S3_SECRET}",
        f"operator.s3.endpointUrl={cluster.s3.env(in_pod=True)['AWS_ENDPOINT_URL']}",
        "operator.extraEnv[0].name=KUBELOOP_RETRY_DELAY",
        f"operator.extraEnv[0].value={retry_delay}",
    ]


class InstalledOperator:
    """The chart's operator Deployment in `kubeloop-system`, installed by `helm install`."""

    def __init__(self, cluster: LocalCluster, log_path: Path):
        self.cluster = cluster
        self.log_path = log_path
        self._checked = 0.0
        self._running = False

    def install(self, timeout: float = 180.0) -> InstalledOperator:
        self.cluster.kubectl("create", "namespace", NAMESPACE, check=False)
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": S3_SECRET, "namespace": NAMESPACE},
            "stringData": self.cluster.s3.env(in_pod=True),
        }
        self.cluster.kubectl("apply", "-f", "-", input=json.dumps(secret))
        command = [str(self.cluster.tool("helm")), "install", RELEASE, str(CHART), "--namespace", NAMESPACE]
        command += [f"--kubeconfig={self.cluster.kubeconfig}", "--wait", f"--timeout={int(timeout)}s"]
        for value in helm_values(self.cluster):
            command += ["--set-string", value]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            self.save_log()
            raise OperatorError(
                f"helm install {RELEASE} failed: {(result.stderr or result.stdout).strip()} (log: {self.log_path})"
            )
        return self

    def _deployment(self) -> dict:
        result = self.cluster.kubectl(
            "get", "deployment", RELEASE, "-n", NAMESPACE, "-o", "json", check=False
        )
        return json.loads(result.stdout) if result.returncode == 0 else {}

    @property
    def running(self) -> bool:
        """The Deployment has its replica Ready (checked at most every 2 s: the story asks at every tick)."""
        if time.monotonic() - self._checked > 2.0:
            status = self._deployment().get("status") or {}
            self._running = (status.get("readyReplicas") or 0) >= 1
            self._checked = time.monotonic()
        return self._running

    def exit_reason(self) -> str:
        pods = self.cluster.kubectl(
            "get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/name=kubeloop", "-o", "json", check=False
        )
        for pod in json.loads(pods.stdout or "{}").get("items") or []:
            for container in pod["status"].get("containerStatuses") or []:
                last = (container.get("lastState") or {}).get("terminated") or (
                    container.get("state") or {}
                ).get("terminated")
                if last:
                    return f"exited with code {last.get('exitCode')} ({last.get('reason')})"
        return "not Ready"

    def save_log(self) -> str:
        result = self.cluster.kubectl(
            "logs", f"deployment/{RELEASE}", "-n", NAMESPACE, "--all-containers", "--tail=-1", check=False
        )
        text = result.stdout or result.stderr
        self.log_path.write_text(text)
        return text

    def log(self) -> str:
        return self.save_log()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.save_log().splitlines()[-lines:])
