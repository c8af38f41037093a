"""Where the task document comes from: a file (``KUBELOOP_TASK_FILE``) or inline (``KUBELOOP_TASK``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import yaml
from kubeloop.contract import TASK_ENV, TASK_FILE_ENV, TrainerTask
from pydantic import ValidationError

from kubeloop_trainer.errors import TrainerError


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, each with the field path in the document's own (camelCase) spelling."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(document)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse_task(text: str) -> TrainerTask:
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        # A hand-written task file may be YAML; JSON is a subset of it, so this is only a fallback.
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise TrainerError("InvalidTask", f"the task document is neither JSON nor YAML: {e}") from e
    try:
        return TrainerTask.model_validate(document)
    except ValidationError as e:
        raise TrainerError("InvalidTask", "invalid task document: " + describe_validation_error(e)) from e


def load_task(env: Mapping[str, str], task_file: str | None = None) -> TrainerTask:
    path = task_file or env.get(TASK_FILE_ENV)
    if path:
        try:
            return parse_task(Path(path).read_text())
        except OSError as e:
            raise TrainerError("InvalidTask", f"cannot read the task file {path}: {e}") from e
    if env.get(TASK_ENV):
        return parse_task(env[TASK_ENV])
    raise TrainerError("InvalidTask", f"no task given: set {TASK_FILE_ENV} or {TASK_ENV}")
