"""DriftMonitor on the real local cluster: live traffic to real model servers, the operator under the chart's RBAC.

Each test deploys `kubeloop-trainer serve` (two replicas, containers of the trainer image on the real node) on an artifact trained once
into the cluster's S3 store, marks a ModelVersion as the production version served by that Deployment, and
sends V2 inference traffic to the pods from a background thread while the operator judges 5-second windows.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from kubeloop.api import TrainingRunSpec
from kubeloop.contract import TrainerSucceeded, parse_termination_message
from operator_fixtures import condition, get, upload, wait_for

pytestmark = pytest.mark.integration
# The operator, namespace and cluster fixtures (registered as a plugin, so that they are not re-imported names).
pytest_plugins = ("operator_fixtures",)

TRAINER = shutil.which("kubeloop-trainer") or str(Path(sys.executable).parent / "kubeloop-trainer")
MODEL = "churn"
FEATURES = ("x0", "x1", "x2", "x3")
INTERVAL_SECONDS = 5


# -- the data, the artifact and the servers -------------------------------------------------------------
def draw(rng: np.random.Generator, rows: int, shift: float = 0.0) -> np.ndarray:
    """Rows of the training distribution; `shift` moves x0 by that many standard deviations."""
    X = rng.normal(size=(rows, len(FEATURES)))
    X[:, 0] += shift
    return X


@pytest.fixture(scope="module")
def trained(cluster, tmp_path_factory) -> dict[str, str]:
    """Train the model once, with the real trainer, into the cluster's S3 store."""
    rng = np.random.default_rng(7)
    X = draw(rng, 4000)
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=len(X)) > 0).astype(int)
    csv = io.StringIO()
    csv.write(",".join(FEATURES) + ",label\n")
    for row, label in zip(X, y, strict=True):
        csv.write(",".join(f"{v:.6f}" for v in row) + f",{label}\n")
    data_uri = upload(cluster, f"datasets/{MODEL}/train.csv", csv.getvalue().encode())
    artifact_uri = f"s3://{cluster.s3.bucket}/artifacts/dm-tests/{MODEL}/seed-run"
    term = tmp_path_factory.mktemp("train") / "termination-log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBELOOP_", "AWS_", "POD_IP"))}
    task = {
        "model": MODEL,
        "trainingRun": "seed-run",
        "data": {"uri": data_uri, "target": "label"},
        "estimator": {"classPath": "sklearn.linear_model.LogisticRegression"},
        "artifactUri": artifact_uri,
    }
    proc = subprocess.run(
        [TRAINER, "train"],
        env={
            **env,
            **cluster.s3.env(),
            "KUBELOOP_TASK": json.dumps(task),
            "KUBELOOP_TERMINATION_LOG": str(term),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = parse_termination_message(term.read_text())
    assert isinstance(summary, TrainerSucceeded)
    return {"data_uri": data_uri, "artifact_uri": artifact_uri, "digest": summary.digest}


def apply(cluster, obj: dict) -> None:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(obj))


SERVING = {
    "replicas": 2,
    "canary": {"steps": [{"weight": 100, "interval": "2s"}], "analysis": {"minRequests": 0}},
}


def served_deployment(cluster, ns: str, version: str, replicas: int = 2) -> str:
    """Wait until `version` is the production version with Ready server pods; returns its Deployment."""

    def served():
        status = (get(cluster, "modelversion", ns, version) or {}).get("status") or {}
        deployment = status.get("deployment")
        if status.get("stage") != "Production" or not deployment:
            return None
        return deployment if len(ready_pods(cluster, ns, deployment)) == replicas else None

    return wait_for(served, 180, f"{version} in Production with {replicas} Ready server pods")


def serve(cluster, ns: str, trained: dict[str, str]) -> str:
    """Register the trained artifact as version 1 and ask for Production: the operator's rollout serves it.

    Being the model's first version, it goes straight to its last (and only) step; returns the name of the
    Deployment that serves it once it is the production version and its pods are Ready.
    """
    version = f"{MODEL}-v1"
    apply(
        cluster,
        {
            "apiVersion": "kubeloop.dev/v1alpha1",
            "kind": "ModelVersion",
            "metadata": {"name": version, "namespace": ns},
            "spec": {
                "model": MODEL,
                "version": 1,
                "artifact": {"uri": trained["artifact_uri"], "digest": trained["digest"]},
                "lineage": {"trainingRun": "seed-run", "dataUri": trained["data_uri"]},
                "stage": "Production",
                "serving": SERVING,
            },
        },
    )
    return served_deployment(cluster, ns, version)


def training_spec(data_uri: str) -> dict:
    return {
        "model": MODEL,
        "data": {"uri": data_uri, "target": "label"},
        "training": {
            "estimator": {"classPath": "sklearn.linear_model.LogisticRegression"},
            "deadlineSeconds": 300,
        },
        "promotion": {"policy": "Manual", "canary": SERVING["canary"]},
    }


def train_and_serve(cluster, ns: str, trained: dict[str, str]) -> tuple[str, str]:
    """The whole way: a TrainingRun the operator trains and registers, then promoted by a user's spec.stage."""
    apply(
        cluster,
        {
            "apiVersion": "kubeloop.dev/v1alpha1",
            "kind": "TrainingRun",
            "metadata": {"name": "churn-seed", "namespace": ns},
            "spec": training_spec(trained["data_uri"]),
        },
    )

    def registered():
        run = get(cluster, "trainingrun", ns, "churn-seed") or {}
        return (run.get("status") or {}).get("modelVersion")

    version = wait_for(registered, 180, "the seed TrainingRun to register a version")
    cluster.kubectl(
        "patch",
        "modelversion",
        version,
        "-n",
        ns,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"stage": "Production"}}),
    )
    return version, served_deployment(cluster, ns, version)


def ready_pods(cluster, ns: str, deployment: str) -> list[str]:
    body = get(cluster, "deployment", ns, deployment)
    if body is None:
        return []
    labels = body["spec"]["selector"]["matchLabels"]
    pods = get(cluster, "pods", ns, selector=",".join(f"{k}={v}" for k, v in sorted(labels.items()))) or []
    ips = []
    for pod in pods:
        ready = any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (pod.get("status") or {}).get("conditions") or []
        )
        if ready and not pod["metadata"].get("deletionTimestamp"):
            ips.append(pod["status"]["podIP"])
    return sorted(ips)


def server_pods(cluster, ns: str, deployment: str) -> list[dict]:
    labels = get(cluster, "deployment", ns, deployment)["spec"]["selector"]["matchLabels"]
    return get(cluster, "pods", ns, selector=",".join(f"{k}={v}" for k, v in sorted(labels.items()))) or []


class Traffic(threading.Thread):
    """Steady V2 inference traffic to the model's Service, as a client in the cluster sends it: `rate` rows per
    second in small requests, each on a new connection (kube-proxy picks the pod), its feedback on the same
    connection (so it reaches the pod that made the predictions)."""

    def __init__(
        self,
        cluster,
        ns: str,
        deployment: str,
        *,
        rate: float,
        shift: float = 0.0,
        batch: int = 20,
        labels_right: float | None = None,
    ):
        super().__init__(daemon=True)
        self.cluster, self.ns, self.deployment = cluster, ns, deployment
        self.rate, self.shift, self.batch = rate, shift, batch
        self.labels_right = labels_right  # with it, each request gets feedback labels right this often
        self.rng = np.random.default_rng(random.randrange(2**32))
        self.sent = 0
        self.errors = 0
        self._halt = threading.Event()
        self._service_ip = ""

    def _service_address(self) -> str:
        """The Service's ClusterIP, once the Service exists and has a ready pod behind it."""
        if not self._service_ip and ready_pods(self.cluster, self.ns, self.deployment):
            service = get(self.cluster, "service", self.ns, f"{MODEL}-serving")
            self._service_ip = (service or {}).get("spec", {}).get("clusterIP", "")
        return self._service_ip

    def _post(self, connection: http.client.HTTPConnection, path: str, body: dict) -> dict:
        connection.request("POST", path, json.dumps(body).encode(), {"content-type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise OSError(f"HTTP {response.status}: {payload[:200]!r}")
        return json.loads(payload)

    def _send(self, ip: str, X: np.ndarray) -> None:
        body = {
            "inputs": [
                {"name": name, "shape": [len(X)], "datatype": "FP64", "data": X[:, j].tolist()}
                for j, name in enumerate(FEATURES)
            ]
        }
        connection = http.client.HTTPConnection(ip, 8080, timeout=5)
        try:
            answer = self._post(connection, f"/v2/models/{MODEL}/infer", body)
            if self.labels_right is None:
                return
            predicted = answer["outputs"][0]["data"]
            right = self.rng.random(len(predicted)) < self.labels_right
            labels = [p if ok else 1 - int(p) for p, ok in zip(predicted, right, strict=True)]
            self._post(
                connection, f"/v2/models/{MODEL}/feedback", {"requestId": answer["id"], "labels": labels}
            )
        finally:
            connection.close()

    def run(self) -> None:
        period = self.batch / self.rate
        next_at = time.monotonic()
        while not self._halt.is_set():
            target = self._service_address()
            if target:
                X = draw(self.rng, self.batch, self.shift)
                try:
                    self._send(target, X)
                    self.sent += len(X)
                except (OSError, http.client.HTTPException):
                    self.errors += 1
            next_at += period
            self._halt.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=10)


# -- the monitor ------------------------------------------------------------------------------------------
def monitor(cluster, ns: str, trained: dict[str, str], name: str = "churn-drift", **spec: Any) -> str:
    body = {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "model": MODEL,
            "interval": f"{INTERVAL_SECONDS}s",
            "minSamples": 200,
            "consecutiveWindows": 3,
            "retrain": {"cooldown": "1h", "template": {"spec": training_spec(trained["data_uri"])}},
            **spec,
        },
    }
    apply(cluster, body)
    return name


def status_of(cluster, ns: str, name: str) -> dict:
    return (get(cluster, "driftmonitor", ns, name) or {}).get("status") or {}


def retrains(cluster, ns: str, name: str) -> list[dict]:
    return get(cluster, "trainingruns", ns, selector=f"kubeloop.dev/drift-monitor={name}") or []


class Windows:
    """Follows the monitor window by window, recording each judged window's status."""

    def __init__(self, cluster, ns: str, name: str):
        self.cluster, self.ns, self.name = cluster, ns, name
        self.seen: dict[int, dict] = {}

    def poll(self) -> dict:
        status = status_of(self.cluster, self.ns, self.name)
        if status.get("verdict") is not None:
            self.seen.setdefault(status.get("window", 0), status)
        return status

    def until(self, predicate, timeout: float, what: str) -> dict:
        def probe():
            status = self.poll()
            return status if predicate(status) else None

        try:
            return wait_for(probe, timeout, what, interval=0.3)
        except AssertionError as e:
            raise AssertionError(f"{e}\nlast status: {json.dumps(self.poll(), indent=1)}") from None

    def next_windows(self, count: int) -> list[dict]:
        start = self.poll().get("window", 0)
        self.until(
            lambda s: s.get("window", 0) >= start + count,
            (count + 2) * INTERVAL_SECONDS * 2,
            f"{count} windows",
        )
        return [self.seen[w] for w in sorted(self.seen) if w > start]


@pytest.fixture
def drift_operator(operator, cluster):
    """The operator with the object store's credentials, which it needs to read reference profiles."""
    operator.restart(**cluster.s3.env())
    return operator


def _histogram(metrics: str, name: str, labels: str) -> tuple[float, float]:
    """(sum, count) of one Prometheus histogram series in a text exposition."""
    values = {}
    for line in metrics.splitlines():
        for part in ("_sum", "_count"):
            if line.startswith(f"{name}{part}{{") and all(x in line for x in labels.split(",")):
                values[part] = float(line.rsplit(" ", 1)[1])
    return values.get("_sum", 0.0), values.get("_count", 0.0)


# -- the tests --------------------------------------------------------------------------------------------
def test_traffic_like_training_never_retrains_even_across_a_server_restart(
    cluster, namespace, trained, drift_operator
):
    deployment = serve(cluster, namespace, trained)
    traffic = Traffic(cluster, namespace, deployment, rate=120)
    traffic.start()
    try:
        name = monitor(cluster, namespace, trained)
        windows = Windows(cluster, namespace, name)
        windows.until(lambda s: s.get("window", 0) >= 1, 60, "the first judged window")
        first = windows.next_windows(3)
        # One server pod is replaced: the new server counts from zero under a new server id.
        pods = server_pods(cluster, namespace, deployment)
        cluster.kubectl("delete", "pod", pods[0]["metadata"]["name"], "-n", namespace, "--wait=false")
        later = windows.next_windows(4)
    finally:
        traffic.stop()
    judged = first + later
    verdicts = [w["verdict"] for w in judged]
    print(
        f"\nno-drift traffic: {len(judged)} windows, verdicts {verdicts}, rows {[w['sampleCount'] for w in judged]}"
    )
    # The default rule alarms on about 1% of windows; allow one such window, never the 3 in a row a retrain needs.
    assert verdicts.count("NoDrift") >= len(judged) - 1, verdicts
    assert all(w["sampleCount"] >= 200 for w in judged), [w["sampleCount"] for w in judged]
    # (status fields at their default, such as a count of 0, are left out of the stored status)
    assert max(w.get("consecutiveDriftedWindows", 0) for w in judged) <= 1
    assert retrains(cluster, namespace, name) == []
    status = status_of(cluster, namespace, name)
    assert condition({"status": status}, "Ready")["status"] == "True"
    assert {f["name"] for f in status["features"]} == set(FEATURES)
    assert traffic.errors < 5, traffic.errors


def test_one_shifted_feature_drifts_retrains_once_and_records_the_trigger(
    cluster, namespace, trained, drift_operator
):
    version, deployment = train_and_serve(cluster, namespace, trained)
    # Fresh labelled data "lands" where the clone policy points; the retrain clones the seed run onto it.
    rng = np.random.default_rng(11)
    X = draw(rng, 2000, shift=1.0)
    y = (X[:, 0] + 0.5 * X[:, 1] > 1.0).astype(int)
    rows = "".join(",".join(f"{v:.6f}" for v in r) + f",{t}\n" for r, t in zip(X, y, strict=True))
    fresh = upload(
        cluster, f"datasets/{namespace}/latest.csv", (",".join(FEATURES) + ",label\n" + rows).encode()
    )
    traffic = Traffic(cluster, namespace, deployment, rate=120, shift=1.0)
    name = monitor(cluster, namespace, trained, retrain={"cooldown": "1h", "clone": {"dataUri": fresh}})
    windows = Windows(cluster, namespace, name)
    try:
        windows.until(lambda s: s.get("lastCheckTime"), 60, "the baseline check")
        traffic.start()
        onset, first_window = time.monotonic(), windows.poll().get("window", 0)
        drifted = windows.until(
            lambda s: (condition({"status": s}, "Drifted") or {}).get("status") == "True", 60, "Drifted=True"
        )
        detected = time.monotonic() - onset
        wait_for(lambda: retrains(cluster, namespace, name), 60, "the retraining TrainingRun")
        retrained_after = time.monotonic() - onset
        # Three more windows of the same drift, inside the cooldown: still exactly one run.
        later = windows.next_windows(3)
        runs = retrains(cluster, namespace, name)
        metrics = drift_operator.metrics()
    finally:
        traffic.stop()
    cond = condition({"status": drifted}, "Drifted")
    assert cond["reason"] == "DriftDetected" and "x0" in cond["message"]
    assert [f["name"] for f in drifted["features"] if f["drifted"]] == ["x0"]
    assert all(w["verdict"] == "Drift" for w in later)
    assert len(runs) == 1, [r["metadata"]["name"] for r in runs]
    (run,) = runs
    trigger = json.loads(run["metadata"]["annotations"]["kubeloop.dev/trigger"])
    assert trigger["reason"] == "Drift" and trigger["monitor"] == name
    assert list(trigger["scores"]) == ["x0"] and trigger["scores"]["x0"] > 0
    assert run["metadata"]["labels"]["kubeloop.dev/trigger"] == "Drift"
    # A clone of the run behind the production version, on the fresh data.
    seed = get(cluster, "trainingrun", namespace, "churn-seed")
    expected = {**seed["spec"], "data": {**seed["spec"]["data"], "uri": fresh}}
    assert TrainingRunSpec.model_validate(run["spec"]) == TrainingRunSpec.model_validate(expected)
    status = status_of(cluster, namespace, name)
    assert status["lastRetrain"]["trainingRun"] == run["metadata"]["name"]
    assert status["lastRetrain"]["window"] == trigger["window"] and status["modelVersion"] == version
    assert "cooldown" in status["message"] or "still running" in status["message"]
    assert f'kubeloop_retrains_total{{model="{MODEL}",namespace="{namespace}",reason="Drift"}} 1.0' in metrics
    assert 'feature="x0"' in metrics and "kubeloop_drift_score" in metrics
    assert f'kubeloop_drift_detected{{model="{MODEL}",namespace="{namespace}"}} 1.0' in metrics

    checks = _histogram(metrics, "kubeloop_phase_duration_seconds", 'kind="DriftMonitor",phase="Check"')
    print(
        f"\nshift of 1 SD on x0 at 120 rows/s, {INTERVAL_SECONDS}s windows: Drifted=True after {detected:.1f}s "
        f"(window {drifted['window'] - first_window} after the onset), retrain created after {retrained_after:.1f}s "
        f"(window {trigger['window'] - first_window}); x0 chi-squared {trigger['scores']['x0']:.0f}; "
        f"checks: {checks[1]:.0f}, mean {1000 * checks[0] / checks[1]:.1f} ms"
    )

    # The operator trains the retrain; the version it registers records the trigger in its lineage.
    def registered():
        body = get(cluster, "trainingrun", namespace, run["metadata"]["name"]) or {}
        return (body.get("status") or {}).get("modelVersion")

    retrained = get(cluster, "modelversion", namespace, wait_for(registered, 180, "the retrained version"))
    lineage = retrained["spec"]["lineage"]
    assert lineage["trainingRun"] == run["metadata"]["name"] and lineage["dataUri"] == fresh
    assert lineage["trigger"]["reason"] == "Drift" and lineage["trigger"]["monitor"] == name
    assert lineage["trigger"]["window"] == trigger["window"] and list(lineage["trigger"]["scores"]) == ["x0"]


def test_an_operator_restart_neither_triggers_twice_nor_loses_the_count(
    cluster, namespace, trained, drift_operator
):
    deployment = serve(cluster, namespace, trained)
    traffic = Traffic(cluster, namespace, deployment, rate=120, shift=1.0)
    name = monitor(cluster, namespace, trained)
    windows = Windows(cluster, namespace, name)
    try:
        windows.until(lambda s: s.get("lastCheckTime"), 60, "the baseline check")
        traffic.start()
        two = windows.until(lambda s: s.get("consecutiveDriftedWindows") == 2, 60, "two drifted windows")
        drift_operator.kill()  # between the 2nd and 3rd drifted windows
        time.sleep(INTERVAL_SECONDS)  # the next window falls due while the operator is down
        drift_operator.start(**cluster.s3.env())
        after = windows.until(
            lambda s: s.get("window", 0) >= two["window"] + 1, 60, "the window after the restart"
        )
        runs = wait_for(lambda: retrains(cluster, namespace, name), 30, "the retraining TrainingRun")
        drift_operator.kill()  # and once more, right after the retrain
        drift_operator.start(**cluster.s3.env())
        windows.next_windows(2)
        runs_later = retrains(cluster, namespace, name)
    finally:
        traffic.stop()
    assert after["window"] == two["window"] + 1  # no window skipped or judged twice
    assert after["lastRetrain"]["window"] == two["window"] + 1  # the third drifted window in a row
    assert after.get("consecutiveDriftedWindows", 0) == 0  # reset by the retrain it started
    assert len(runs) == 1 and len(runs_later) == 1
    trigger = json.loads(runs[0]["metadata"]["annotations"]["kubeloop.dev/trigger"])
    assert trigger["window"] == two["window"] + 1 and "3 drifted windows in a row" in trigger["message"]


def test_sparse_traffic_reads_as_insufficient_data_not_healthy(cluster, namespace, trained, drift_operator):
    deployment = serve(cluster, namespace, trained)
    traffic = Traffic(cluster, namespace, deployment, rate=12, shift=2.0, batch=4)  # ~60 rows per window
    name = monitor(cluster, namespace, trained, consecutiveWindows=1)
    windows = Windows(cluster, namespace, name)
    try:
        windows.until(lambda s: s.get("lastCheckTime"), 60, "the baseline check")
        traffic.start()
        judged = windows.next_windows(3)
    finally:
        traffic.stop()
    assert [w["verdict"] for w in judged] == ["InsufficientData"] * 3
    assert all(0 < w["sampleCount"] < 200 for w in judged), [w["sampleCount"] for w in judged]
    last = judged[-1]
    cond = condition({"status": last}, "Drifted")
    assert cond["status"] == "Unknown" and cond["reason"] == "InsufficientData"
    assert "fewer than minSamples=200" in cond["message"]
    assert last.get("features", []) == [] and last.get("consecutiveDriftedWindows", 0) == 0
    assert retrains(cluster, namespace, name) == []


def test_online_accuracy_below_the_floor_retrains_without_drift(cluster, namespace, trained, drift_operator):
    deployment = serve(cluster, namespace, trained)
    # Traffic like training, but the ground truth that comes back disagrees with half of the predictions.
    traffic = Traffic(cluster, namespace, deployment, rate=80, labels_right=0.5)
    floor = {"metric": "accuracy", "min": 0.8, "minLabels": 100}
    name = monitor(cluster, namespace, trained, performanceFloor=floor)
    windows = Windows(cluster, namespace, name)
    try:
        windows.until(lambda s: s.get("lastCheckTime"), 60, "the baseline check")
        traffic.start()
        breached = windows.until(lambda s: (s.get("performance") or {}).get("breached"), 60, "a breach")
        runs = wait_for(lambda: retrains(cluster, namespace, name), 30, "the retraining TrainingRun")
    finally:
        traffic.stop()
    performance = breached["performance"]
    assert performance["metric"] == "accuracy" and performance["labels"] >= 100
    assert 0.35 < performance["value"] < 0.65  # this window's labels, not a running total
    assert breached["verdict"] == "NoDrift"
    (run,) = runs
    trigger = json.loads(run["metadata"]["annotations"]["kubeloop.dev/trigger"])
    assert trigger["reason"] == "PerformanceBreach" and list(trigger["scores"]) == ["accuracy"]
    assert "below the floor 0.8" in trigger["message"]
    assert run["metadata"]["labels"]["kubeloop.dev/trigger"] == "PerformanceBreach"


def test_nothing_in_production_is_reported_not_judged(cluster, namespace, trained, drift_operator):
    name = monitor(cluster, namespace, trained, model=MODEL)
    status = wait_for(lambda: (s := status_of(cluster, namespace, name)).get("message") and s, 30, "a status")
    ready = condition({"status": status}, "Ready")
    assert ready["status"] == "Unknown" and ready["reason"] == "NoProductionVersion"
    assert condition({"status": status}, "Drifted")["status"] == "Unknown"
    assert status.get("window", 0) == 0 and status.get("verdict") is None
    _ = uuid
