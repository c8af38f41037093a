"""The ASGI application: V2 routes, health, monitoring, feedback and metrics, with no framework.

One server serves one model, so every route is a fixed path known once the model is loaded, and routing
is a single dict lookup. Until the model is loaded, liveness answers and readiness does not. Every error
answer is a V2 error body (``{"error": "..."}``); an unexpected exception is logged here with its trace
and answered with a 500 that names only the exception type.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np
import orjson
from kubeloop.contract import (
    LIVE_PATH,
    METRICS_PATH,
    READY_PATH,
    FeedbackRequest,
    feedback_path,
    infer_path,
    model_path,
    monitoring_path,
)
from pydantic import ValidationError

from kubeloop_trainer.serve import prometheus
from kubeloop_trainer.serve.codec import BadRequest, encode_response, error_body, parse_infer_request
from kubeloop_trainer.serve.feedback import FeedbackJoiner
from kubeloop_trainer.serve.monitor import LiveMonitor
from kubeloop_trainer.serve.predictor import PREDICT, PREDICT_PROBA, Predictor

Headers = list[tuple[bytes, bytes]]
Response = tuple[int, bytes, Headers]
Handler = Callable[[dict, bytes, float], Response]

JSON: Headers = [(b"content-type", b"application/json")]
SERVER_NAME = "kubeloop"


@dataclass
class Served:
    """Everything the routes need once the model is loaded."""

    name: str
    version: str
    predictor: Predictor
    monitor: LiveMonitor
    feedback: FeedbackJoiner
    server_version: str


def _json(status: int, doc: Any) -> Response:
    return status, orjson.dumps(doc), JSON


def _error(status: int, message: str) -> Response:
    return status, error_body(message), JSON


def _model_metadata(served: Served) -> dict[str, Any]:
    sig = served.predictor.signature
    inputs = [
        {"name": f.name, "datatype": "FP64" if f.kind == "numeric" else "BYTES", "shape": [-1]}
        for f in sig.features
    ]
    outputs = [{"name": PREDICT, "datatype": "FP64" if sig.task == "regression" else "BYTES", "shape": [-1]}]
    if sig.probabilities:
        outputs.append({"name": PREDICT_PROBA, "datatype": "FP64", "shape": [-1, len(sig.classes or [])]})
    return {
        "name": served.name,
        "versions": [served.version],
        "platform": "sklearn",
        "inputs": inputs,
        "outputs": outputs,
        "parameters": {
            "task": sig.task,
            "estimator": sig.estimator,
            "digest": served.monitor.digest,
            "classes": sig.classes,
            "tensor_input": {"shape": [-1, len(sig.features)], "columns": sig.feature_names},
        },
    }


class InferenceApp:
    """ASGI 3 application. ``load`` runs in a worker thread at startup and returns what to serve."""

    def __init__(
        self,
        load: Callable[[], Served],
        *,
        max_body_bytes: int = 16 * 1024 * 1024,
        on_fatal: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._load = load
        self.max_body_bytes = max_body_bytes
        self.on_fatal = on_fatal
        self.served: Served | None = None
        self._ids = itertools.count(1)
        self._id_prefix = ""
        self.routes: dict[str, tuple[frozenset[str], Handler]] = {}
        self._install_base_routes()

    # -- routing -----------------------------------------------------------------------------------------
    def _install_base_routes(self) -> None:
        get = frozenset({"GET", "HEAD"})
        self.routes = {
            LIVE_PATH: (get, lambda s, b, t: _json(200, {"live": True})),
            READY_PATH: (get, self._ready),
            "/v2": (get, self._server_metadata),
            METRICS_PATH: (get, self._metrics),
        }

    def install(self, served: Served) -> None:
        """Serve a loaded model: add its routes under its name, with and without its version."""
        self.served = served
        self._id_prefix = served.monitor.server_id[:12] + "-"
        get, post = frozenset({"GET", "HEAD"}), frozenset({"POST"})
        routes = dict(self.routes)
        metadata = _json(200, _model_metadata(served))
        ready = _json(200, {"name": served.name, "ready": True})
        for version in (None, served.version):
            routes[model_path(served.name, version)] = (get, lambda s, b, t: metadata)
            routes[f"{model_path(served.name, version)}/ready"] = (get, lambda s, b, t: ready)
            routes[infer_path(served.name, version)] = (post, self._infer)
            routes[monitoring_path(served.name, version)] = (get, self._monitoring)
            routes[feedback_path(served.name, version)] = (post, self._feedback)
        self.routes = routes

    # -- handlers ----------------------------------------------------------------------------------------
    def _ready(self, scope: dict, body: bytes, start: float) -> Response:
        if self.served is None:
            return _json(503, {"ready": False})
        return _json(200, {"ready": True})

    def _server_metadata(self, scope: dict, body: bytes, start: float) -> Response:
        version = self.served.server_version if self.served else "unknown"
        return _json(200, {"name": SERVER_NAME, "version": version, "extensions": ["binary_tensor_data"]})

    def _metrics(self, scope: dict, body: bytes, start: float) -> Response:
        if self.served is None:
            return 200, b"", [(b"content-type", prometheus.CONTENT_TYPE.encode())]
        payload = prometheus.render(self.served.monitor, self.served.feedback)
        return 200, payload, [(b"content-type", prometheus.CONTENT_TYPE.encode())]

    def _monitoring(self, scope: dict, body: bytes, start: float) -> Response:
        served = self.served
        assert served is not None
        snapshot = served.monitor.snapshot(served.feedback.stats())
        return 200, snapshot.model_dump_json().encode(), JSON

    def _feedback(self, scope: dict, body: bytes, start: float) -> Response:
        served = self.served
        assert served is not None
        try:
            request = FeedbackRequest.model_validate_json(body)
        except ValidationError as e:
            return _error(
                400,
                "invalid feedback: "
                + "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()),
            )
        try:
            joined = served.feedback.join(request.request_id, request.labels)
        except BadRequest as e:
            return _error(e.status, e.message)
        return _json(200, {**joined, "feedback": served.feedback.stats().model_dump(exclude_none=True)})

    def _infer(self, scope: dict, body: bytes, start: float) -> Response:
        served = self.served
        assert served is not None
        monitor = served.monitor
        try:
            header_length = None
            for key, value in scope["headers"]:
                if key == b"inference-header-content-length":
                    try:
                        header_length = int(value)
                    except ValueError:
                        raise BadRequest("Inference-Header-Content-Length must be an integer") from None
            request = parse_infer_request(body, header_length)
            X = served.predictor.assemble(request.inputs)
            outputs = served.predictor.predict(X, request.outputs)
            request_id = request.id or f"{self._id_prefix}{next(self._ids)}"
            binary = frozenset(outputs) if request.binary_all else request.binary_outputs
            payload, json_length = encode_response(served.name, served.version, request_id, outputs, binary)
        except BadRequest as e:
            monitor.record_error("bad_request", perf_counter() - start)
            return _error(e.status, e.message)
        except Exception as e:  # a bug or a model failure: log the trace here, never send it
            traceback.print_exc(file=sys.stderr)
            monitor.record_error("internal", perf_counter() - start)
            return _error(500, f"internal error ({type(e).__name__}); see the server log")
        predicted = outputs.get(PREDICT)
        if predicted is None:  # only probabilities asked for: monitor the implied classes
            classes = np.asarray(served.predictor.signature.classes)
            predicted = classes[np.argmax(outputs[PREDICT_PROBA], axis=1)]
        served.feedback.remember(request_id, predicted)
        monitor.record(X, predicted, perf_counter() - start)
        if json_length is None:
            return 200, payload, JSON
        return (
            200,
            payload,
            [
                (b"content-type", b"application/octet-stream"),
                (b"inference-header-content-length", str(json_length).encode()),
            ],
        )

    # -- ASGI --------------------------------------------------------------------------------------------
    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable) -> None:
        start = perf_counter()
        path = scope["path"]
        route = self.routes.get(path) or self.routes.get(path.rstrip("/"))
        if route is None:
            status, payload, headers = self._not_found(path)
        elif scope["method"] not in route[0]:
            status, payload, headers = _error(405, f"{scope['method']} is not allowed on {path}")
        else:
            body = b""
            if scope["method"] == "POST":
                body = await self._read_body(receive)
            if body is None:
                status, payload, headers = _error(
                    413, f"request body larger than {self.max_body_bytes} bytes"
                )
            else:
                status, payload, headers = route[1](scope, body, start)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else payload})

    async def _read_body(self, receive: Callable[[], Awaitable[dict]]) -> bytes | None:
        message = await receive()
        body = message.get("body", b"")
        if not message.get("more_body", False):
            return body if len(body) <= self.max_body_bytes else None
        chunks = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _not_found(self, path: str) -> Response:
        if path.startswith("/v2/models/"):
            if self.served is None:
                return _error(503, "the model is still loading")
            s = self.served
            return _error(
                404, f"no such model or route: {path} (this server serves {s.name!r} version {s.version!r})"
            )
        return _error(404, f"no such route: {path}")

    async def _lifespan(self, receive: Callable[[], Awaitable[dict]], send: Callable) -> None:
        task: asyncio.Task | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Load in a worker thread, so liveness and readiness answer while a large model downloads.
                task = asyncio.get_running_loop().create_task(self._load_in_background())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if task is not None and not task.done():
                    task.cancel()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _load_in_background(self) -> None:
        try:
            served = await asyncio.get_running_loop().run_in_executor(None, self._load)
        except BaseException as e:  # reported by on_fatal, which stops the server with an error
            if self.on_fatal is not None:
                self.on_fatal(e)
            return
        self.install(served)
        # Everything loaded so far (libraries, the model) lives as long as the process: moving it out of
        # the collector's generations keeps full collections, and so latency spikes, small.
        gc.collect()
        gc.freeze()
