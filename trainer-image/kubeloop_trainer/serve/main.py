"""Starting the model server: settings, the artifact loader, and uvicorn (uvloop + httptools, 1 worker)."""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn
from kubeloop.contract import TERMINATION_LOG_ENV

from kubeloop_trainer.allowlist import allowed_modules
from kubeloop_trainer.artifact import read_artifact, trainer_version
from kubeloop_trainer.serve.app import InferenceApp, Served
from kubeloop_trainer.serve.feedback import FeedbackJoiner
from kubeloop_trainer.serve.monitor import LiveMonitor
from kubeloop_trainer.serve.predictor import Predictor
from kubeloop_trainer.serve.settings import ServeSettings, resolve_settings


def log(message: str) -> None:
    print(f"[kubeloop-serve] {message}", file=sys.stderr, flush=True)


def load_served(settings: ServeSettings) -> Served:
    """Fetch, verify and load the artifact (refusing unsafe model files), and build the live state."""
    log(f"loading {settings.model_uri}")
    artifact = read_artifact(settings.model_uri, allowed_modules(), expected_digest=settings.model_digest)
    name = settings.model_name or artifact.manifest.lineage.model
    monitor = LiveMonitor(
        model=name,
        version=settings.model_version,
        digest=artifact.manifest.digest,
        signature=artifact.signature,
        profile=artifact.profile,
        predictions=artifact.metrics.predictions,
        reservoir_size=settings.reservoir_size,
    )
    feedback = FeedbackJoiner(
        artifact.signature.task,
        max_requests=settings.feedback_max_requests,
        max_rows=settings.feedback_max_rows,
    )
    log(
        f"serving model {name!r} version {settings.model_version!r} ({artifact.signature.task}, "
        f"{artifact.signature.estimator}, {artifact.manifest.digest}) at "
        f"http://{settings.host}:{settings.port}/v2/models/{name}"
    )
    return Served(
        name=name,
        version=settings.model_version,
        predictor=Predictor(artifact.model, artifact.signature),
        monitor=monitor,
        feedback=feedback,
        server_version=trainer_version(),
    )


def _write_termination(message: str) -> None:
    path = os.environ.get(TERMINATION_LOG_ENV) or "/dev/termination-log"
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(message[:4000])
    except OSError:
        pass  # outside a pod there may be no termination log; the message is in the log anyway


def serve(args: argparse.Namespace) -> int:
    settings = resolve_settings(args, os.environ)
    failure: list[BaseException] = []
    server: uvicorn.Server | None = None

    def on_fatal(error: BaseException) -> None:
        failure.append(error)
        message = f"model load failed: {error}"
        log(message)
        _write_termination(message)
        if server is not None:
            server.should_exit = True

    app = InferenceApp(
        lambda: load_served(settings), max_body_bytes=settings.max_body_bytes, on_fatal=on_fatal
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
        workers=1,
    )
    server = uvicorn.Server(config)
    server.run()
    return 1 if failure else 0
