"""Canary rollouts on the real local cluster: the real operator (under the chart's RBAC), the real model
servers in containers on the real node, and a load generator that sends every request to the model
Service's ClusterIP, as a client in the cluster would: kube-proxy, not the test, splits the traffic.

Models are trained by the real trainer on iris and uploaded to the cluster's S3 store:
- v1 (stable): logistic regression; v2 (good): a random forest that answers like it;
- bad: a constant classifier, which answers 200 OK but always the same class (a prediction shift).

Run: KUBELOOP_TEST_CLUSTER=op7 .venv/bin/pytest -m integration tests/integration/test_rollout.py -s
(-s prints the measured figures: time to the first Ready canary pod, overhead per step).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml
from kubeloop.contract import CONTENT_FILES, MODEL_FILE
from kubeloop_trainer.artifact import read_artifact, write_artifact
from kubeloop_trainer.safe_model import dump_model
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes import watch as kwatch
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

pytest.register_assert_rewrite("operator_fixtures")
from operator_fixtures import condition, get, install_rbac, s3_fs, wait_for  # noqa: E402

pytestmark = pytest.mark.integration
pytest_plugins = ["operator_fixtures"]

TRAINER = shutil.which("kubeloop-trainer") or str(Path(sys.executable).parent / "kubeloop-trainer")
MODEL = "iris"
SERVICE = f"{MODEL}-serving"
INTERVAL = 4  # seconds per step
STEPS = [{"weight": 10, "interval": f"{INTERVAL}s"}, {"weight": 50, "interval": f"{INTERVAL}s"},
         {"weight": 100, "interval": f"{INTERVAL}s"}]  # fmt: skip
ANALYSIS = {
    "minRequests": 20,
    "maxErrorRate": 0.01,
    "maxP99LatencyMilliseconds": 400,
    "maxPredictionShift": 0.25,
    "inconclusiveTimeout": "40s",
}
X, Y = load_iris(return_X_y=True)
# Per step, the canary's share of the answers the Service gave is its replica weight within this many
# percentage points: about 3.5 standard deviations of a binomial share over the ~120 requests of a step.
SPLIT_TOLERANCE = 15


# -- artifacts -----------------------------------------------------------------------------------------------
@dataclass
class Artifact:
    uri: str
    digest: str
    model: Any  # the fitted estimator, to know what each answer should be

    def expected(self) -> np.ndarray:
        return self.model.predict(X)


def _train(tmp: Path, name: str, class_path: str, params: dict) -> Path:
    data = tmp / "iris.csv"
    if not data.exists():
        load_iris(as_frame=True).frame.to_csv(data, index=False)
    out = tmp / name
    task = {
        "model": MODEL,
        "data": {"uri": f"file://{data}", "target": "target"},
        "estimator": {"classPath": class_path, "params": params},
        "seed": 3,
        "artifactUri": f"file://{out}",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBELOOP_", "AWS_"))}
    env.update(KUBELOOP_TASK=json.dumps(task), KUBELOOP_TERMINATION_LOG=str(tmp / f"{name}.term"))
    result = subprocess.run([TRAINER, "train"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def artifacts(cluster, tmp_path_factory) -> dict[str, Artifact]:
    tmp = tmp_path_factory.mktemp("rollout-artifacts")
    fs = s3_fs(cluster)
    plans = {
        "stable": ("sklearn.linear_model.LogisticRegression", {"max_iter": 1000}),
        "good": ("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 25}),
        "bad": ("sklearn.dummy.DummyClassifier", {"strategy": "constant", "constant": 0}),
    }
    out = {}
    locals_ = {name: _train(tmp, name, class_path, params) for name, (class_path, params) in plans.items()}
    locals_["errors"] = _failing_artifact(locals_["stable"], tmp / "errors")
    for name, local in locals_.items():
        loaded = read_artifact(f"file://{local}", ("sklearn.",))
        key = f"{cluster.s3.bucket}/rollout-tests/{name}-{os.urandom(3).hex()}"
        for path in local.iterdir():
            fs.pipe_file(f"{key}/{path.name}", path.read_bytes())
        out[name] = Artifact(f"s3://{key}", loaded.manifest.digest, loaded.model)
    return out


def _failing_artifact(good: Path, out: Path) -> Path:
    """The stable's artifact with a corrupted model: it loads, the server gets Ready, and every prediction
    fails with an internal error (HTTP 500), because its fitted coefficients are missing."""
    contents = {name: (good / name).read_bytes() for name in CONTENT_FILES}
    broken = LogisticRegression(max_iter=1000).fit(X, Y)
    del broken.coef_
    contents[MODEL_FILE] = dump_model(broken)
    manifest = read_artifact(f"file://{good}", ("sklearn.",)).manifest
    write_artifact(
        f"file://{out}", contents, data=manifest.data, lineage=manifest.lineage, created=datetime.now(UTC)
    )
    return out


def model_version(
    namespace: str, version: int, artifact: Artifact, *, steps=None, replicas=2, routing=None, **spec
) -> dict:
    canary = {"steps": steps or STEPS, "analysis": ANALYSIS}
    serving = {"replicas": replicas, "canary": canary, **({"trafficRouting": routing} if routing else {})}
    return {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {
            "name": f"{MODEL}-v{version}",
            "namespace": namespace,
            "labels": {"kubeloop.dev/model": MODEL},
        },
        "spec": {
            "model": MODEL,
            "version": version,
            "artifact": {"uri": artifact.uri, "digest": artifact.digest},
            "stage": "Production",
            "serving": serving,
            **spec,
        },
    }


def apply(cluster, obj: dict) -> float:
    """Create or update an object; returns the time (monotonic) just before the request."""
    started = time.monotonic()
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(obj))
    return started


def mv(cluster, namespace: str, version: int) -> dict:
    return get(cluster, "modelversion", namespace, f"{MODEL}-v{version}") or {}


def rollout_of(obj: dict) -> dict:
    return (obj.get("status") or {}).get("rollout") or {}


def deployments(cluster, namespace: str) -> dict[str, dict]:
    items = get(cluster, "deployments", namespace, selector=f"kubeloop.dev/model={MODEL}") or []
    return {d["metadata"]["name"]: d for d in items}


def events(cluster, namespace: str, name: str) -> list[tuple[str, str, str]]:
    items = get(cluster, "events", namespace) or []
    return [
        (e["type"], e["reason"], e.get("message", ""))
        for e in sorted(items, key=lambda e: e.get("lastTimestamp") or "")
        if e["involvedObject"].get("name") == name and e["involvedObject"].get("kind") == "ModelVersion"
    ]


def deploy_stable(cluster, namespace: str, artifact: Artifact) -> dict:
    """v1 as the model's first production version (no canary: nothing to compare with)."""
    apply(cluster, model_version(namespace, 1, artifact))
    return wait_for(
        lambda: (o := mv(cluster, namespace, 1)).get("status", {}).get("stage") == "Production" and o,
        120,
        "v1 to become the production version",
    )


# -- the load generator ----------------------------------------------------------------------------------------
@dataclass
class Failure:
    at: float
    error: str


@dataclass
class LoadGenerator:
    """Requests to the Service's ClusterIP, each on a new connection (kube-proxy balances connections), at a
    steady rate. The Service's EndpointSlices are watched only to observe when pods join and leave it."""

    kubeconfig: Path
    namespace: str
    expected: dict[str, np.ndarray]  # version label -> the right answer for each row of X
    rate: float = 40.0
    ok: dict[str, int] = field(default_factory=dict)
    answers: list[tuple[float, str]] = field(default_factory=list)  # (when, version) of every right answer
    failures: list[Failure] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    first_ready: dict[str, float] = field(default_factory=dict)  # pod -> when it first became an endpoint
    _url: str = ""
    _slices: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> LoadGenerator:
        api = kclient.CoreV1Api(kconfig.new_client_from_config(str(self.kubeconfig)))
        cluster_ip = api.read_namespaced_service(SERVICE, self.namespace).spec.cluster_ip
        self._url = f"http://{cluster_ip}:8080/v2/models/{MODEL}/infer"
        self._threads = [
            threading.Thread(target=self._watch, daemon=True, name="endpointslices"),
            threading.Thread(target=self._send, daemon=True, name="load"),
        ]
        for t in self._threads:
            t.start()
        wait_for(lambda: self.total > 20, 60, "the load generator to get answers")
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)

    @property
    def total(self) -> int:
        return sum(self.ok.values())

    def endpoints(self) -> list[str]:
        """The pods the Service routes to now."""
        with self._lock:
            return sorted({pod for ts in self._slices.values() for _, pod in ts})

    def share(self, version: str, start: float, end: float) -> tuple[float, int]:
        """The share of the answers between `start` and `end` that `version` gave, and their count."""
        window = [v for at, v in self.answers if start <= at <= end]
        return (window.count(version) / len(window) if window else 0.0), len(window)

    def _update(self, kind: str, obj: Any) -> None:
        name = obj.metadata.name
        ready = []
        for ep in obj.endpoints or []:
            if ep.conditions is None or not ep.conditions.ready:
                continue
            pod = ep.target_ref.name if ep.target_ref else "?"
            ready += [(address, pod) for address in ep.addresses]
        now = time.monotonic()
        with self._lock:
            if kind == "DELETED":
                self._slices.pop(name, None)
            else:
                self._slices[name] = ready
            after = {pod for ts in self._slices.values() for _, pod in ts}
            for pod in after:
                self.first_ready.setdefault(pod, now)

    def _watch(self) -> None:
        api = kclient.DiscoveryV1Api(kconfig.new_client_from_config(str(self.kubeconfig)))
        selector = f"kubernetes.io/service-name={SERVICE}"
        while not self._stop.is_set():
            try:
                listed = api.list_namespaced_endpoint_slice(self.namespace, label_selector=selector)
                for item in listed.items:
                    self._update("ADDED", item)
                stream = kwatch.Watch().stream(
                    api.list_namespaced_endpoint_slice,
                    self.namespace,
                    label_selector=selector,
                    resource_version=listed.metadata.resource_version,
                    timeout_seconds=5,
                )
                for event in stream:
                    self._update(event["type"], event["object"])
                    if self._stop.is_set():
                        break
            except Exception:  # a watch that expired: list again
                time.sleep(0.2)

    def _send(self) -> None:
        rng = np.random.default_rng(1)
        while not self._stop.is_set():
            began = time.monotonic()
            self._one(int(rng.integers(len(X))))
            time.sleep(max(0.0, 1.0 / self.rate - (time.monotonic() - began)))

    def _one(self, row: int) -> None:
        body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": X[row].tolist()}]}
        try:
            response = requests.post(self._url, json=body, timeout=5)  # a new connection each time
        except requests.RequestException as e:
            self.failures.append(Failure(time.monotonic(), f"{type(e).__name__}: {e}"))
            return
        if response.status_code != 200:
            self.failures.append(Failure(time.monotonic(), f"HTTP {response.status_code}"))
            return
        doc = response.json()
        version = doc.get("model_version", "?")
        self.ok[version] = self.ok.get(version, 0) + 1
        self.answers.append((time.monotonic(), version))
        answer = doc["outputs"][0]["data"][0]
        expected = self.expected.get(version)
        if expected is None or int(answer) != int(expected[row]):
            self.wrong.append(f"v{version} answered {answer} for row {row}")


def assert_no_request_failed(generator: LoadGenerator) -> None:
    """Every answer right for the version that gave it, and no request failed because of the rollout: a
    leaving pod sleeps in preStop until the endpoint lists stop naming it, then finishes what is in flight."""
    assert generator.wrong == [], generator.wrong[:10]
    assert generator.failures == [], generator.failures[:10]


@dataclass
class StatusClock:
    """Polls a ModelVersion's rollout status every 0.1 s and notes when each step started and was judged."""

    kubeconfig: Path
    namespace: str
    name: str
    started: dict[int, float] = field(default_factory=dict)  # step -> when its clock was seen running
    judged: dict[int, float] = field(default_factory=dict)  # step -> when its verdict was seen
    pending: float | None = None
    done: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> StatusClock:
        self._thread = threading.Thread(target=self._run, daemon=True, name="status-clock")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        api = kclient.CustomObjectsApi(kconfig.new_client_from_config(str(self.kubeconfig)))
        while not self._stop.is_set():
            try:
                obj = api.get_namespaced_custom_object(
                    "kubeloop.dev", "v1alpha1", self.namespace, "modelversions", self.name
                )
            except Exception:
                obj = {}
            now = time.monotonic()
            rollout = (obj.get("status") or {}).get("rollout") or {}
            if rollout.get("phase") and self.pending is None:
                self.pending = now
            if rollout.get("stepStartTime") and rollout.get("phase") == "Progressing":
                self.started.setdefault(rollout["step"], now)
            for a in rollout.get("analyses") or []:
                if a["verdict"] != "Inconclusive":
                    self.judged.setdefault(a["step"], now)
            if rollout.get("completionTime"):
                self.done = self.done or now
            time.sleep(0.1)


@pytest.fixture
def load(cluster, namespace, artifacts):
    """A factory: load(expected by version) -> a running LoadGenerator, stopped after the test."""
    running: list[LoadGenerator] = []

    def start(expected: dict[str, np.ndarray]) -> LoadGenerator:
        generator = LoadGenerator(cluster.kubeconfig, namespace, expected).start()
        running.append(generator)
        return generator

    yield start
    for generator in running:
        generator.stop()


def wait_phase(cluster, namespace: str, version: int, phases: tuple[str, ...], timeout: float) -> dict:
    def done():
        obj = mv(cluster, namespace, version)
        rollout = rollout_of(obj)
        return obj if rollout.get("phase") in phases and rollout.get("completionTime") else None

    return wait_for(done, timeout, f"v{version} to reach {phases}", interval=0.3)


def _seconds(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


# -- the tests ----------------------------------------------------------------------------------------------
def test_a_good_version_walks_every_step_under_load_and_is_promoted(
    cluster, operator, namespace, artifacts, load
):
    deploy_stable(cluster, namespace, artifacts["stable"])
    generator = load({"1": artifacts["stable"].expected(), "2": artifacts["good"].expected()})

    clock = StatusClock(cluster.kubeconfig, namespace, f"{MODEL}-v2").start()
    requested_at = apply(cluster, model_version(namespace, 2, artifacts["good"]))
    done = wait_phase(cluster, namespace, 2, ("Promoted", "RolledBack"), 180)
    generator.stop()
    clock.stop()

    rollout = rollout_of(done)
    assert rollout["phase"] == "Promoted", json.dumps(rollout, indent=1)
    status = done["status"]
    assert status["stage"] == "Production"
    analyses = rollout["analyses"]
    assert [(a["step"], a["verdict"]) for a in analyses] == [(0, "Pass"), (1, "Pass"), (2, "Pass")]
    assert [a["weight"] for a in analyses] == [33, 50, 100]  # effective shares with 2 stable replicas
    # The cluster's split, seen by a client of the Service: per step, the canary's share of the answers.
    shares = {}
    for a in analyses:
        share, count = generator.share("2", clock.started[a["step"]] + 1.0, clock.judged[a["step"]])
        shares[a["step"]] = (round(100 * share, 1), count)
        assert count >= 60, f"step {a['step']}: only {count} answers to judge the split by"
        assert abs(100 * share - a["weight"]) <= SPLIT_TOLERANCE, (a["step"], a["weight"], shares)
    for a in analyses:
        values = {m["metric"]: m for m in a["measurements"]}
        assert set(values) == {"requests", "errorRate", "p99LatencyMilliseconds", "predictionShift"}
        assert values["requests"]["value"] >= ANALYSIS["minRequests"]
        assert values["errorRate"]["value"] == 0.0 and values["errorRate"]["passed"] is True
        assert 0 < values["p99LatencyMilliseconds"]["value"] <= ANALYSIS["maxP99LatencyMilliseconds"]
        assert values["predictionShift"]["value"] <= ANALYSIS["maxPredictionShift"]
    assert condition(done, "Progressing")["status"] == "False"
    assert condition(done, "Progressing")["reason"] == "RolloutComplete"
    assert condition(done, "RolledBack")["status"] == "False"
    assert condition(done, "Ready")["status"] == "True"
    assert status["deployment"] == f"{MODEL}-v2" and status["service"] == SERVICE

    # The old stable is archived and scaled down; the canary became the stable at its full count.
    v1 = mv(cluster, namespace, 1)
    assert v1["status"]["stage"] == "Archived"
    assert v1["status"]["history"][-1]["reason"] == "Superseded"
    assert rollout_of(v1)["weight"] == 0  # the Weight column no longer claims its 100% of before
    assert status["history"][-1]["to"] == "Production" and status["history"][-1]["reason"] == "CanaryPassed"
    found = deployments(cluster, namespace)
    assert sorted(found) == [f"{MODEL}-v1", f"{MODEL}-v2"]  # one per version, never a duplicate
    assert found[f"{MODEL}-v1"]["spec"]["replicas"] == 0
    assert found[f"{MODEL}-v1"]["metadata"]["labels"]["kubeloop.dev/track"] == "retired"
    assert found[f"{MODEL}-v2"]["spec"]["replicas"] == 2
    assert found[f"{MODEL}-v2"]["metadata"]["labels"]["kubeloop.dev/track"] == "stable"
    index = get(cluster, "configmap", namespace, "kubeloop-registry")
    assert json.loads(index["data"][f"{MODEL}.json"])["production"]["name"] == f"{MODEL}-v2"
    reasons = [r for _, r, _ in events(cluster, namespace, f"{MODEL}-v2")]
    for expected_reason in ("RolloutStarted", "StepStarted", "StepPassed", "Promoted"):
        assert expected_reason in reasons, reasons

    # A platform engineer's first check: port-forward to the model's Service answers the V2 health endpoint.
    with cluster.port_forward(namespace, f"svc/{SERVICE}", 8080) as local_port:
        ready = requests.get(f"http://127.0.0.1:{local_port}/v2/health/ready", timeout=5)
    assert ready.status_code == 200

    # Under load, nothing failed because of the rollout, and both versions answered, each correctly.
    assert generator.ok.get("1", 0) > 50 and generator.ok.get("2", 0) > 50, generator.ok

    # Figures for docs/rollout.md (monotonic clock of the test process; 0.1 s polling).
    canary_pods = [p for p in generator.first_ready if p.startswith(f"{MODEL}-v2-")]
    first_ready = min(generator.first_ready[p] for p in canary_pods) - requested_at
    lines = [
        f"FIGURES (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)",
        f"  Production requested -> rollout Pending seen:               {clock.pending - requested_at:6.2f}s",
        f"  Production requested -> first canary pod Ready (endpoints): {first_ready:6.2f}s",
        f"  Production requested -> step 1 clock started:               {clock.started[0] - requested_at:6.2f}s",
    ]
    for step in range(len(STEPS)):
        analysis = clock.judged[step] - clock.started[step] - INTERVAL
        into = clock.started[step] - clock.judged[step - 1] if step else None
        lines.append(
            f"  step {step + 1} ({STEPS[step]['weight']}%): verdict {analysis:5.2f}s after its {INTERVAL}s interval"
            + (f"; {into:5.2f}s from the previous verdict to this step's start" if into is not None else "")
        )
    per_step = (clock.done - clock.started[0] - len(STEPS) * INTERVAL) / len(STEPS)
    lines.append(f"  overhead per step beyond the interval, step 1 start -> promoted: {per_step:5.2f}s")
    lines.append(f"  requests answered by version: {generator.ok}")
    lines.append(f"  canary share of the Service's answers per step (%, answers): {shares}")
    print("\n" + "\n".join(lines))
    assert_no_request_failed(generator)


def test_a_bad_version_is_rolled_back_and_the_stable_keeps_answering(
    cluster, operator, namespace, artifacts, load
):
    deploy_stable(cluster, namespace, artifacts["stable"])
    stable_answers = artifacts["stable"].expected()
    generator = load({"1": stable_answers, "3": artifacts["bad"].expected()})

    apply(cluster, model_version(namespace, 3, artifacts["bad"]))
    done = wait_phase(cluster, namespace, 3, ("Promoted", "RolledBack"), 180)
    during = dict(generator.ok)

    rollout = rollout_of(done)
    assert rollout["phase"] == "RolledBack", json.dumps(rollout, indent=1)
    last = rollout["analyses"][-1]
    assert (last["step"], last["verdict"]) == (0, "Fail")
    shift = next(m for m in last["measurements"] if m["metric"] == "predictionShift")
    assert shift["passed"] is False and shift["value"] > 0.5  # always class 0 vs a balanced stable
    back = condition(done, "RolledBack")
    assert back["status"] == "True" and back["reason"] == "AnalysisFailed"
    assert "predictionShift" in back["message"] and f"{shift['value']:.4g}" in back["message"]
    assert condition(done, "Ready")["status"] == "False" and condition(done, "Stalled")["status"] == "True"
    assert done["status"].get("stage") != "Production"
    warnings = [(t, r) for t, r, _ in events(cluster, namespace, f"{MODEL}-v3") if t == "Warning"]
    assert ("Warning", "RolledBack") in warnings

    # The stable was never touched beyond the split, and serves alone at its full count again.
    v1 = wait_for(  # the stable's Weight is back at 100 (it showed 100 - 33 during the 10% step)
        lambda: (o := mv(cluster, namespace, 1)) and rollout_of(o).get("weight") == 100 and o,
        10,
        "v1's weight back at 100",
    )
    assert v1["status"]["stage"] == "Production"
    found = deployments(cluster, namespace)
    assert found[f"{MODEL}-v3"]["spec"]["replicas"] == 0
    assert found[f"{MODEL}-v1"]["spec"]["replicas"] == 2
    wait_for(
        lambda: (
            generator.endpoints() and all(pod.startswith(f"{MODEL}-v1-") for pod in generator.endpoints())
        ),
        60,
        "only stable pods behind the Service",
    )
    after = generator.ok.get("1", 0)
    time.sleep(3)
    generator.stop()
    assert generator.ok.get("1", 0) > after + 30  # still answering, after the rollback
    assert during.get("3", 0) > 0  # the bad canary did get traffic before it was judged
    assert_no_request_failed(generator)  # every answer right for the version that gave it


def test_a_server_returning_errors_is_rolled_back_on_its_error_rate(
    cluster, operator, namespace, artifacts, load
):
    deploy_stable(cluster, namespace, artifacts["stable"])
    generator = load({"1": artifacts["stable"].expected()})

    apply(cluster, model_version(namespace, 5, artifacts["errors"]))
    done = wait_phase(cluster, namespace, 5, ("Promoted", "RolledBack"), 180)

    rollout = rollout_of(done)
    assert rollout["phase"] == "RolledBack", json.dumps(rollout, indent=1)
    last = rollout["analyses"][-1]
    assert (last["step"], last["verdict"]) == (0, "Fail")
    measured = {m["metric"]: m for m in last["measurements"]}
    assert measured["errorRate"]["value"] == 1.0 and measured["errorRate"]["passed"] is False
    assert measured["requests"]["value"] >= ANALYSIS["minRequests"]
    back = condition(done, "RolledBack")
    assert back["status"] == "True" and "errorRate 1 > 0.01" in back["message"], back
    assert deployments(cluster, namespace)[f"{MODEL}-v5"]["spec"]["replicas"] == 0
    wait_for(
        lambda: (
            generator.endpoints() and all(pod.startswith(f"{MODEL}-v1-") for pod in generator.endpoints())
        ),
        60,
        "only stable pods behind the Service",
    )
    after = generator.ok.get("1", 0)
    time.sleep(3)
    generator.stop()
    assert generator.ok.get("1", 0) > after + 30
    # The canary's own 500s are why it was rolled back; nothing else failed, and no stable answer was wrong.
    errors = [f for f in generator.failures if f.error == "HTTP 500"]
    assert errors, "the canary's 500s reached the client through the Service"
    generator.failures = [f for f in generator.failures if f not in errors]
    assert_no_request_failed(generator)


def good_rollout_under_load(cluster, namespace: str, artifacts, steps: list[dict]) -> LoadGenerator:
    """v1 in production, steady load on the Service, then v2 (good) requested with `steps`: the running
    load generator, which the caller stops."""
    deploy_stable(cluster, namespace, artifacts["stable"])
    expected = {"1": artifacts["stable"].expected(), "2": artifacts["good"].expected()}
    generator = LoadGenerator(cluster.kubeconfig, namespace, expected).start()
    try:
        apply(cluster, model_version(namespace, 2, artifacts["good"], steps=steps))
    except BaseException:
        generator.stop()
        raise
    return generator


def test_the_operator_killed_mid_rollout_resumes_at_the_same_step(cluster, operator, namespace, artifacts):
    steps = [
        {"weight": 10, "interval": "6s"},
        {"weight": 50, "interval": "10s"},
        {"weight": 100, "interval": "4s"},
    ]
    generator = good_rollout_under_load(cluster, namespace, artifacts, steps)
    try:
        in_step_1 = wait_for(
            lambda: (
                (o := mv(cluster, namespace, 2))
                and rollout_of(o).get("step") == 1
                and rollout_of(o).get("stepStartTime")
                and o
            ),
            120,
            "v2 in step 1 with its clock started",
            interval=0.2,
        )
        before = rollout_of(in_step_1)
        uids = {name: d["metadata"]["uid"] for name, d in deployments(cluster, namespace).items()}
        # The stable's Weight is what the canary leaves it (50 here), not its 100 of before the rollout.
        wait_for(
            lambda: rollout_of(mv(cluster, namespace, 1)).get("weight") == 100 - before["weight"],
            10,
            "v1's weight to be 100 - the canary's",
        )
        operator.kill()
        time.sleep(4)  # the step's clock keeps running while no operator is there
        operator.start()
        done = wait_phase(cluster, namespace, 2, ("Promoted", "RolledBack"), 180)
    finally:
        generator.stop()

    after = rollout_of(done)
    assert after["phase"] == "Promoted", json.dumps(after, indent=1)
    # Resumed, not restarted: the same rollout, step 0's verdict untouched, step 1 kept its start.
    assert after["startTime"] == before["startTime"]
    assert after["analyses"][0] == before["analyses"][0]
    assert [(a["step"], a["verdict"]) for a in after["analyses"]] == [(0, "Pass"), (1, "Pass"), (2, "Pass")]
    step1 = after["analyses"][1]
    assert _seconds(step1["time"]) - _seconds(before["stepStartTime"]) >= 10
    assert _seconds(step1["time"]) - _seconds(before["stepStartTime"]) < 10 + 30
    # No Deployment was duplicated or recreated.
    assert {name: d["metadata"]["uid"] for name, d in deployments(cluster, namespace).items()} == uids
    assert operator.starts >= 2 and "rollout" in operator.log()
    assert_no_request_failed(generator)


def test_an_api_server_outage_of_30s_mid_rollout_is_survived_and_the_rollout_completes(
    cluster, operator, namespace, artifacts
):
    """The API server is taken away for 30 s during step 1. The model keeps serving through the Service (kube-proxy's
    rules stay), the supervisor restarts the control-plane programs that exit, the operator reconnects by itself,
    and the same rollout resumes and is promoted."""
    steps = [
        {"weight": 10, "interval": "4s"},
        {"weight": 50, "interval": "8s"},
        {"weight": 100, "interval": "4s"},
    ]
    generator = good_rollout_under_load(cluster, namespace, artifacts, steps)
    try:
        before = rollout_of(
            wait_for(
                lambda: (o := mv(cluster, namespace, 2)) and rollout_of(o).get("step") == 1 and o,
                120,
                "v2 in step 1",
                interval=0.2,
            )
        )
        cluster.hold("kube-apiserver")
        try:
            wait_for(lambda: not cluster.ready(), 30, "the API server to go away")
            gone = time.monotonic()
            answered_before = generator.total
            wait_for(lambda: time.monotonic() - gone >= 30, 60, "a 30 s outage", interval=1)
            served_during = generator.total - answered_before
        finally:
            cluster.release("kube-apiserver")
        wait_for(cluster.ready, 90, "the API server to come back")
        done = wait_phase(cluster, namespace, 2, ("Promoted", "RolledBack"), 240)
    finally:
        generator.stop()

    after = rollout_of(done)
    assert after["phase"] == "Promoted", json.dumps(after, indent=1)
    assert after["startTime"] == before["startTime"], "the same rollout resumed, not a new one"
    assert [(a["step"], a["verdict"]) for a in after["analyses"]] == [(0, "Pass"), (1, "Pass"), (2, "Pass")]
    assert served_during > 500, (
        f"the Service kept answering during the outage ({served_during} answers in 30 s)"
    )
    assert operator.running, "the operator reconnected by itself"
    assert_no_request_failed(generator)


def test_manual_approval_pauses_and_a_newer_version_supersedes(cluster, operator, namespace, artifacts):
    deploy_stable(cluster, namespace, artifacts["stable"])
    steps = [{"weight": 10, "interval": "4s"}, {"weight": 100, "interval": "4s", "manualApproval": True}]
    generator = LoadGenerator(
        cluster.kubeconfig,
        namespace,
        {
            "1": artifacts["stable"].expected(),
            "2": artifacts["good"].expected(),
            "4": artifacts["good"].expected(),
        },
    ).start()
    try:
        apply(cluster, model_version(namespace, 2, artifacts["good"], steps=steps))
        paused = wait_for(
            lambda: (o := mv(cluster, namespace, 2)) and rollout_of(o).get("phase") == "Paused" and o,
            120,
            "v2 to pause before step 2",
        )
        assert rollout_of(paused)["step"] == 1
        assert condition(paused, "Progressing")["reason"] == "AwaitingApproval"
        assert "approvedStep to 1" in condition(paused, "Progressing")["message"]
        wait_for(  # paused after the 10% step: the stable keeps what that step left it (100 - 33)
            lambda: rollout_of(mv(cluster, namespace, 1)).get("weight") == 100 - rollout_of(paused)["weight"],
            10,
            "v1's weight to be 100 - the paused canary's",
        )
        time.sleep(3)
        assert rollout_of(mv(cluster, namespace, 2))["phase"] == "Paused"  # nothing moves without approval

        # A newer version arrives while v2 waits: v2 steps aside, v4 rolls out and, once approved, wins.
        apply(cluster, model_version(namespace, 4, artifacts["good"], steps=steps))
        superseded = wait_phase(cluster, namespace, 2, ("Superseded",), 60)
        assert condition(superseded, "Progressing")["reason"] == "Superseded"
        assert "iris-v4" in condition(superseded, "Progressing")["message"]
        wait_for(
            lambda: rollout_of(mv(cluster, namespace, 4)).get("phase") == "Paused",
            120,
            "v4 to pause for approval",
        )
        cluster.kubectl(
            "annotate", "modelversion", f"{MODEL}-v4", "-n", namespace, "kubeloop.dev/approved-step=1"
        )
        done = wait_phase(cluster, namespace, 4, ("Promoted", "RolledBack"), 120)
    finally:
        generator.stop()
    assert rollout_of(done)["phase"] == "Promoted"
    assert mv(cluster, namespace, 4)["status"]["stage"] == "Production"
    v1 = mv(cluster, namespace, 1)
    assert v1["status"]["stage"] == "Archived" and rollout_of(v1)["weight"] == 0
    assert mv(cluster, namespace, 2)["status"].get("stage") != "Production"
    found = deployments(cluster, namespace)
    assert {n: d["spec"]["replicas"] for n, d in found.items()} == {"iris-v1": 0, "iris-v2": 0, "iris-v4": 2}
    assert_no_request_failed(generator)


# A stand-in for the Gateway API's HTTPRoute CRD (no gateway controller runs here): the operator finds it
# through API discovery and writes the route; what a gateway would do with it is not under test.
HTTPROUTE_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {
        "name": "httproutes.gateway.networking.k8s.io",
        # *.k8s.io groups are protected; this stand-in says plainly that it is not the approved API
        "annotations": {"api-approved.kubernetes.io": "unapproved, a test stand-in for the Gateway API"},
    },
    "spec": {
        "group": "gateway.networking.k8s.io",
        "names": {
            "kind": "HTTPRoute",
            "plural": "httproutes",
            "singular": "httproute",
            "listKind": "HTTPRouteList",
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}


def test_gateway_api_routing_moves_route_weights_and_keeps_the_stable(
    cluster, operator, namespace, artifacts, load
):
    apply(cluster, HTTPROUTE_CRD)
    cluster.kubectl("wait", "--for=condition=Established", "crd/httproutes.gateway.networking.k8s.io")
    install_rbac(cluster, sets=("rbac.gatewayApi=true",))  # the chart's opt-in rule for HTTPRoutes
    operator.restart()  # API discovery is cached for a minute; start with a fresh look
    deploy_stable(cluster, namespace, artifacts["stable"])
    # Traffic for the analysis (through the model Service: no gateway forwards by the route here).
    load({"1": artifacts["stable"].expected(), "2": artifacts["good"].expected()})
    seen: list[dict[str, int]] = []
    stable_counts: set[int] = set()

    def watch_route() -> dict | None:
        route = get(cluster, "httproute", namespace, SERVICE)
        if route:
            weights = {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}
            if not seen or seen[-1] != weights:
                seen.append(weights)
        stable = deployments(cluster, namespace).get(f"{MODEL}-v1")
        if stable and rollout_of(mv(cluster, namespace, 2)).get("phase") == "Progressing":
            stable_counts.add(stable["spec"]["replicas"])
        done = mv(cluster, namespace, 2)
        return done if rollout_of(done).get("completionTime") else None

    apply(cluster, model_version(namespace, 2, artifacts["good"], routing="GatewayAPI"))
    done = wait_for(watch_route, 180, "the GatewayAPI rollout to end", interval=0.3)
    watch_route()  # the promotion's route write may have landed between two reads of the last poll
    assert rollout_of(done)["phase"] == "Promoted", json.dumps(rollout_of(done), indent=1)
    assert [a["weight"] for a in rollout_of(done)["analyses"]] == [10, 50, 100]  # exact, not replica-rounded
    assert seen == [
        {"iris-v1": 90, "iris-v2": 10},
        {"iris-v1": 50, "iris-v2": 50},
        {"iris-v1": 0, "iris-v2": 100},
        {"iris-v2": 100},
    ], seen
    assert stable_counts == {2}  # the stable kept its full count while the route moved
    route = get(cluster, "httproute", namespace, SERVICE)
    assert {o["name"] for o in route["metadata"]["ownerReferences"]} == {"iris-v1", "iris-v2"}
    services = {s["metadata"]["name"] for s in get(cluster, "services", namespace) or []}
    assert {SERVICE, "iris-v1", "iris-v2"} <= services
    assert deployments(cluster, namespace)["iris-v1"]["spec"]["replicas"] == 0
