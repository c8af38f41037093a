"""Live traffic: a paced client that sends V2 inference requests to the model's Service endpoints and a
feedback label for every row it sent, and remembers what it saw (version, accuracy, latency, errors).

There is no kube-proxy on the local cluster, so the client does what kube-proxy would: it reads the
Service's EndpointSlices (every second) and spreads requests over the ready addresses. With the default
replica-weighted canary, the share of requests a version gets is its share of ready pods.
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
    pod: str
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
        self._connections: dict[str, http.client.HTTPConnection] = {}
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
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

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
                ready = [e for e in self._endpoints if e.ready]
                if ready:
                    self._send(ready)
                next_send = max(next_send + 1.0 / self.rate, time.monotonic() - 1.0)
                self._stop.wait(max(0.0, next_send - time.monotonic()))
        finally:
            kube.close()

    def _refresh(self, kube: Kube) -> None:
        try:
            service = self.service()
            self._endpoints = kube.endpoints(self.namespace, service) if service else []
        except Exception as e:  # the API server is busy: keep the last addresses
            self.last_error = f"endpoint refresh: {e}"

    def _post(self, endpoint: Endpoint, path: str, body: bytes) -> tuple[int, dict]:
        connection = self._connections.get(endpoint.url)
        if connection is None:
            connection = http.client.HTTPConnection(endpoint.address, endpoint.port, timeout=5)
            self._connections[endpoint.url] = connection
        try:
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            self._connections.pop(endpoint.url, None)
            raise
        return response.status, (json.loads(payload) if payload else {})

    def _send(self, ready: list[Endpoint]) -> None:
        world = self._world
        rows, labels = world.sample(self._rng, self.rows)
        body = infer_body(rows)
        path = f"/v2/models/{self.model}/infer"
        tried: set[str] = set()
        started = self.clock()
        error = ""
        # Like a client behind a Service: a connection refused by a pod that just went away is retried once
        # on another address; an HTTP error answer is not retried (it counts against the version).
        for _attempt in range(2):
            candidates = [e for e in ready if e.url not in tried] or ready
            endpoint = self._pick.choice(candidates)
            tried.add(endpoint.url)
            t0 = time.perf_counter()
            try:
                status, answer = self._post(endpoint, path, body)
            except (OSError, http.client.HTTPException, ValueError) as e:
                error = f"{endpoint.pod}: {type(e).__name__}: {e}"
                continue
            latency = (time.perf_counter() - t0) * 1000
            if status != 200:
                error = f"{endpoint.pod}: HTTP {status}: {answer.get('error', '')}"
                self._record(
                    Request(started, world.label, endpoint.pod, None, len(rows), 0, latency, False, error)
                )
                return
            try:
                predicted = predictions(answer)
            except ValueError as e:
                self._record(
                    Request(started, world.label, endpoint.pod, None, len(rows), 0, latency, False, str(e))
                )
                return
            correct = int(sum(int(p) == int(y) for p, y in zip(predicted, labels, strict=False)))
            feedback_ok = self._feedback(endpoint, answer.get("id"), labels)
            self._record(
                Request(
                    started,
                    world.label,
                    endpoint.pod,
                    str(answer.get("model_version")),
                    len(rows),
                    correct,
                    latency,
                    True,
                    "",
                    feedback_ok,
                )
            )
            return
        self._record(Request(started, world.label, "", None, len(rows), 0, 0.0, False, error))

    def _feedback(self, endpoint: Endpoint, request_id: str | None, labels: np.ndarray) -> bool:
        """The ground truth of the rows just predicted, to the pod that predicted them (it joins them)."""
        if not request_id:
            return False
        body = json.dumps({"requestId": request_id, "labels": [int(y) for y in labels]}).encode()
        try:
            status, _ = self._post(endpoint, f"/v2/models/{self.model}/feedback", body)
        except (OSError, http.client.HTTPException, ValueError):
            return False
        return status == 200

    def _record(self, request: Request) -> None:
        if not request.ok:
            self.last_error = request.error
        with self._lock:
            self._records.append(request)
