"""Live traffic: a paced client that sends V2 inference requests to the model's Service, as a client in the
cluster would, and a feedback label for every row it sent, and remembers what it saw (version, accuracy,
latency, errors).

Every request opens a new connection to the Service's ClusterIP, so kube-proxy, not this client, picks the pod:
with the default replica-weighted canary, the share of requests a version gets is its share of ready pods. The
feedback for a request goes on the same connection, so it reaches the pod that made the predictions and joins
them there. The Service's EndpointSlices are read only to show how many pods are behind it.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kubeloop_demo.data import FEATURES, Dataset
from kubeloop_demo.kube import Endpoint, Kube

ENDPOINT_REFRESH = 1.0


@dataclass(frozen=True)
class Request:
    """One inference request, its answer and its feedback."""

    time: float  # seconds since the demo started
    world: str  # the dataset the rows came from
    version: str | None  # the version that answered (the response's model_version)
    rows: int
    correct: int
    latency_ms: float
    ok: bool
    error: str = ""
    feedback_ok: bool = False


@dataclass(frozen=True)
class TrafficSummary:
    requests: int
    errors: int
    rate: float  # requests per second over the window
    accuracy: float | None  # over the window
    share: dict[str, float]  # version -> share of the window's answered requests
    endpoints: int
    world: str


def infer_body(rows: np.ndarray) -> bytes:
    inputs = [
        {"name": name, "shape": [len(rows)], "datatype": "FP64", "data": rows[:, i].tolist()}
        for i, name in enumerate(FEATURES)
    ]
    return json.dumps({"inputs": inputs}).encode()


def predictions(response: dict) -> list:
    for output in response.get("outputs") or []:
        if output.get("name") == "predict":
            return list(output.get("data") or [])
    raise ValueError("the response has no predict output")


class Traffic:
    """A background thread sending `rate` requests per second of `rows` rows each, drawn from `world`."""

    def __init__(
        self,
        kube_factory: Callable[[], Kube],
        namespace: str,
        model: str,
        service: Callable[[], str | None],
        world: Dataset,
        *,
        rate: float,
        rows: int,
        seed: int,
        clock: Callable[[], float],
    ):
        self.kube_factory = kube_factory
        self.namespace = namespace
        self.model = model
        self.service = service
        self.rate = rate
        self.rows = rows
        self.clock = clock
        self._world = world
        self._rng = np.random.default_rng(seed)
        self._pick = random.Random(seed)
        self._lock = threading.Lock()
        self._records: list[Request] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._endpoints: list[Endpoint] = []
        self._target: Endpoint | None = None  # the Service's ClusterIP and port
        self.last_error = ""

    # -- control -------------------------------------------------------------------------------------------
    @property
    def world(self) -> Dataset:
        return self._world

    def set_world(self, world: Dataset) -> None:
        self._world = world

    def start(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    # -- what it saw ---------------------------------------------------------------------------------------
    def records(self) -> list[Request]:
        with self._lock:
            return list(self._records)

    def summary(self, window: float = 10.0) -> TrafficSummary:
        now = self.clock()
        records = self.records()
        recent = [r for r in records if r.time >= now - window]
        answered = [r for r in recent if r.ok]
        rows = sum(r.rows for r in answered)
        counts: dict[str, int] = {}
        for r in answered:
            counts[r.version or "?"] = counts.get(r.version or "?", 0) + 1
        share = {version: n / len(answered) for version, n in counts.items()}
        return TrafficSummary(
            requests=len(records),
            errors=sum(not r.ok for r in records),
            rate=len(recent) / window,
            accuracy=sum(r.correct for r in answered) / rows if rows else None,
            share=dict(sorted(share.items())),
            endpoints=sum(e.ready for e in self._endpoints),
            world=self._world.label,
        )

    # -- the loop ------------------------------------------------------------------------------------------
    def _run(self) -> None:
        kube = self.kube_factory()
        refreshed = 0.0
        next_send = time.monotonic()
        try:
            while not self._stop.is_set():
                if time.monotonic() - refreshed >= ENDPOINT_REFRESH:
                    self._refresh(kube)
                    refreshed = time.monotonic()
                if self._target is not None:
                    self._send(self._target)
                next_send = max(next_send + 1.0 / self.rate, time.monotonic() - 1.0)
                self._stop.wait(max(0.0, next_send - time.monotonic()))
        finally:
            kube.close()

    def _refresh(self, kube: Kube) -> None:
        try:
            service = self.service()
            self._target = kube.service_address(self.namespace, service) if service else None
            self._endpoints = kube.endpoints(self.namespace, service) if service else []
        except Exception as e:  # the API server is busy: keep the last address
            self.last_error = f"service refresh: {e}"

    @staticmethod
    def _post(connection: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, dict]:
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        payload = response.read()
        return response.status, (json.loads(payload) if payload else {})

    def _send(self, target: Endpoint) -> None:
        world = self._world
        rows, labels = world.sample(self._rng, self.rows)
        body = infer_body(rows)
        path = f"/v2/models/{self.model}/infer"
        started = self.clock()
        error = ""
        # A connection refused (a pod that just went away, before kube-proxy dropped it) is retried once on a
        # new connection; an HTTP error answer is not retried (it counts against the version).
        for _attempt in range(2):
            connection = http.client.HTTPConnection(target.address, target.port, timeout=5)
            try:
                t0 = time.perf_counter()
                try:
                    status, answer = self._post(connection, path, body)
                except (OSError, http.client.HTTPException, ValueError) as e:
                    error = f"{target.pod}: {type(e).__name__}: {e}"
                    continue
                latency = (time.perf_counter() - t0) * 1000
                if status != 200:
                    error = f"{target.pod}: HTTP {status}: {answer.get('error', '')}"
                    self._record(Request(started, world.label, None, len(rows), 0, latency, False, error))
                    return
                try:
                    predicted = predictions(answer)
                except ValueError as e:
                    self._record(Request(started, world.label, None, len(rows), 0, latency, False, str(e)))
                    return
                correct = int(sum(int(p) == int(y) for p, y in zip(predicted, labels, strict=False)))
                feedback_ok = self._feedback(connection, answer.get("id"), labels)
                version = str(answer.get("model_version"))
                self._record(
                    Request(started, world.label, version, len(rows), correct, latency, True, "", feedback_ok)
                )
                return
            finally:
                connection.close()
        self._record(Request(started, world.label, None, len(rows), 0, 0.0, False, error))

    def _feedback(
        self, connection: http.client.HTTPConnection, request_id: str | None, labels: np.ndarray
    ) -> bool:
        """The ground truth of the rows just predicted, on the same connection: to the pod that predicted them
        (it joins them)."""
        if not request_id:
            return False
        body = json.dumps({"requestId": request_id, "labels": [int(y) for y in labels]}).encode()
        try:
            status, _ = self._post(connection, f"/v2/models/{self.model}/feedback", body)
        except (OSError, http.client.HTTPException, ValueError):
            return False
        return status == 200

    def _record(self, request: Request) -> None:
        if not request.ok:
            self.last_error = request.error
        with self._lock:
            self._records.append(request)
