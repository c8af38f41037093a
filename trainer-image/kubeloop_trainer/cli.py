"""``kubeloop-trainer``: the trainer image's entrypoint, with the subcommands ``train`` and ``serve``.

This is exactly what the image's ENTRYPOINT runs, on any cluster and on the local node, for a pod of the
trainer image, so tests of this function are tests of the container's behaviour.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from kubeloop.contract import EXIT_CODES, TrainerFailed

from kubeloop_trainer.errors import TrainerError
from kubeloop_trainer.progress import progress, warn
from kubeloop_trainer.termination import termination_path, write_termination


def _train(args: argparse.Namespace) -> int:
    from kubeloop_trainer.task_source import load_task
    from kubeloop_trainer.train import run_training

    env = os.environ
    path = termination_path(env, args.termination_log)
    try:
        summary = run_training(load_task(env, args.task_file), env)
    except TrainerError as e:
        failure = TrainerFailed(
            reason=e.reason, message=e.message, violations=e.violations, data_hash=e.data_hash
        )
        progress(f"FAILED ({e.reason}): {e.message}")
        for v in e.violations:
            progress(f"  violation [{v.check}] {v.message}")
        write_termination(path, failure)
        return failure.exit_code
    except Exception as e:  # a bug or an unexpected environment: still leave a readable message
        traceback.print_exc()
        failure = TrainerFailed(reason="Internal", message=f"unexpected error: {type(e).__name__}: {e}")
        write_termination(path, failure)
        return EXIT_CODES["Internal"]
    text = write_termination(path, summary)
    progress(f"succeeded; summary: {text}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from kubeloop_trainer.serve.main import serve

    return serve(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubeloop-trainer",
        description="The kubeloop trainer image: train a model, or serve one (V2 REST).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train one model from a task document and write its artifact")
    train.add_argument(
        "--task-file", help="task document path (default: env KUBELOOP_TASK_FILE or KUBELOOP_TASK)"
    )
    train.add_argument(
        "--termination-log", help="where to write the summary (default: env or /dev/termination-log)"
    )
    train.set_defaults(func=_train)

    serve = sub.add_parser("serve", help="serve a model artifact over the Open Inference Protocol (V2 REST)")
    serve.add_argument("--model-uri", help="artifact directory (default: env KUBELOOP_MODEL_URI)")
    serve.add_argument(
        "--model-name", help="model name in URLs (default: env KUBELOOP_MODEL_NAME or the artifact's)"
    )
    serve.add_argument("--model-version", help="version label (default: env KUBELOOP_MODEL_VERSION or '1')")
    serve.add_argument("--model-digest", help="expected artifact digest (default: env KUBELOOP_MODEL_DIGEST)")
    serve.add_argument("--host", help="bind address (default: env KUBELOOP_BIND_ADDRESS, else 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port (default: env KUBELOOP_PORT or 8080)")
    serve.set_defaults(func=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        warn("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
