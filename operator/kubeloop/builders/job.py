"""The training Job of a TrainingRun, and the ConfigMap that hands the trainer its task. Pure.

One plan in (`TrainingJobPlan`: the run, the parsed spec and what the operator settled on: image, artifact
location, champion, defaults), manifests out. The service decides; this module only spells it out.

- Names are deterministic (`<run>-train`, `<run>-task`); both children are owned by the run, so deleting
  the run deletes them (garbage collection), and their labels select them (`kubeloop.dev/training-run`).
- The pod runs under the `restricted` Pod Security Standard: non-root, no privilege escalation, every
  capability dropped, RuntimeDefault seccomp, a read-only root filesystem with a scratch /tmp, and no
  ServiceAccount token (the trainer never talks to the API).
- `activeDeadlineSeconds` and `backoffLimit` come from the spec; a pod failure policy fails the Job at
  once on the trainer's permanent exit codes (bad task, bad data, refused estimator), since a retry would
  fail the same way.
- The trainer reports through its termination message (`terminationMessagePolicy: FallbackToLogsOnError`,
  so a crash before the summary still leaves the end of its log).
- S3 credentials reach the pod only through `secretKeyRef` to a Secret in the run's namespace: they are
  never in the task, the Job spec, the status, logs or Events.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubeloop.api import ResourceRequirements, TrainingRunSpec, Trigger
from kubeloop.builders.labels import (
    CHAMPION_ANNOTATION,
    COMPONENT,
    MANAGED_BY,
    MANAGED_BY_VALUE,
    MODEL_LABEL,
    NAME,
    RUN_LABEL,
    RUN_UID_LABEL,
    child_name,
    label_value,
    owner_reference,
)
from kubeloop.builders.security import restricted_container, restricted_pod
from kubeloop.builders.storage_env import s3_env
from kubeloop.contract import (
    TASK_FILE_ENV,
    ChampionRef,
    TrainerTask,
    permanent_exit_codes,
    run_artifact_uri,
)

CONTAINER = "trainer"
TASK_KEY = "task.json"
TASK_DIR = "/etc/kubeloop/task"
PVC_ROOT = "/mnt/pvc"  # the trainer's default KUBELOOP_PVC_ROOT
TERMINATION_MESSAGE_PATH = "/dev/termination-log"


def job_name(run_name: str) -> str:
    return child_name(run_name, "train")


def task_config_map_name(run_name: str) -> str:
    return child_name(run_name, "task")


def artifact_uri(artifact_root: str, run: Mapping[str, Any], model: str) -> str:
    """`<root>/<namespace>/<model>/<run>-<uid prefix>`: a recreated run of the same name never overwrites
    the artifact an earlier ModelVersion points at."""
    meta = run["metadata"]
    return run_artifact_uri(artifact_root, meta["namespace"], model, f"{meta['name']}-{meta['uid'][:8]}")


def read_trigger(annotations: Mapping[str, str] | None) -> Trigger | None:
    """The trigger a run was annotated with (by a DriftMonitor); None when absent or unreadable."""
    raw = (annotations or {}).get("kubeloop.dev/trigger")
    if not raw:
        return None
    try:
        return Trigger.model_validate_json(raw)
    except ValueError:
        return None


@dataclass(frozen=True)
class TrainingJobPlan:
    """Everything the Job depends on, settled by the service before building."""

    run: Mapping[str, Any]  # the TrainingRun object (apiVersion, kind, metadata with uid)
    spec: TrainingRunSpec
    image: str
    artifact_uri: str
    default_resources: ResourceRequirements
    champion: ChampionRef | None = None
    champion_name: str | None = None  # the champion's ModelVersion, recorded on the Job
    s3_secret: str = ""
    s3_endpoint_url: str = ""
    allowed_modules: str = ""
    service_account: str = ""

    @property
    def name(self) -> str:
        return self.run["metadata"]["name"]

    @property
    def namespace(self) -> str:
        return self.run["metadata"]["namespace"]


def labels(plan: TrainingJobPlan) -> dict[str, str]:
    return {
        MANAGED_BY: MANAGED_BY_VALUE,
        NAME: "kubeloop-trainer",
        COMPONENT: "training",
        MODEL_LABEL: plan.spec.model,
        RUN_LABEL: label_value(plan.name),
        RUN_UID_LABEL: plan.run["metadata"]["uid"],
    }


def _champion_annotation(plan: TrainingJobPlan) -> dict[str, str]:
    """The champion's ModelVersion, on both children: the gate compares with the one the trainer scored."""
    return {CHAMPION_ANNOTATION: plan.champion_name} if plan.champion_name else {}


def task_document(plan: TrainingJobPlan) -> TrainerTask:
    trigger = read_trigger(plan.run["metadata"].get("annotations"))
    training = plan.spec.training
    return TrainerTask(
        model=plan.spec.model,
        training_run=plan.name,
        namespace=plan.namespace,
        trigger=trigger.reason if trigger else None,
        image=plan.image,
        data=plan.spec.data,
        estimator=training.estimator,
        test_size=training.test_size,
        seed=training.seed,
        artifact_uri=plan.artifact_uri,
        champion=plan.champion,
    )


def task_config_map(plan: TrainingJobPlan) -> dict[str, Any]:
    document = task_document(plan).model_dump(mode="json", by_alias=True, exclude_none=True)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": task_config_map_name(plan.name),
            "namespace": plan.namespace,
            "labels": labels(plan),
            "annotations": _champion_annotation(plan),
            "ownerReferences": [owner_reference(plan.run)],
        },
        "immutable": True,
        "data": {TASK_KEY: json.dumps(document, indent=2, sort_keys=True)},
    }


def _claims(plan: TrainingJobPlan) -> list[tuple[str, bool]]:
    """PersistentVolumeClaims the pod mounts: the data's (read-only) and the artifact root's (writable)."""
    found: dict[str, bool] = {}
    for uri, writable in ((plan.spec.data.uri, False), (plan.artifact_uri, True)):
        if uri.startswith("pvc://"):
            claim = uri.removeprefix("pvc://").split("/", 1)[0]
            found[claim] = found.get(claim, False) or writable
    return sorted(found.items())


def _resources(plan: TrainingJobPlan) -> dict[str, Any]:
    chosen = plan.spec.training.resources or plan.default_resources
    return chosen.model_dump(mode="json", exclude_defaults=False)


def training_job(plan: TrainingJobPlan) -> dict[str, Any]:
    training = plan.spec.training
    env: list[dict[str, Any]] = [
        {"name": TASK_FILE_ENV, "value": f"{TASK_DIR}/{TASK_KEY}"},
        {"name": "HOME", "value": "/tmp"},
        {"name": "TMPDIR", "value": "/tmp"},
    ]
    if plan.allowed_modules:
        env.append({"name": "KUBELOOP_ALLOWED_MODULES", "value": plan.allowed_modules})
    env += s3_env(plan.s3_secret, plan.s3_endpoint_url)

    mounts: list[dict[str, Any]] = [
        {"name": "task", "mountPath": TASK_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "task", "configMap": {"name": task_config_map_name(plan.name)}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
    ]
    for index, (claim, writable) in enumerate(_claims(plan)):
        volume = f"pvc-{index}"
        volumes.append(
            {"name": volume, "persistentVolumeClaim": {"claimName": claim, "readOnly": not writable}}
        )
        mounts.append({"name": volume, "mountPath": f"{PVC_ROOT}/{claim}", "readOnly": not writable})

    container = {
        "name": CONTAINER,
        "image": plan.image,
        "command": ["kubeloop-trainer", "train"],
        "env": env,
        "resources": _resources(plan),
        "volumeMounts": mounts,
        "terminationMessagePath": TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": restricted_container(),
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": restricted_pod(),
        "containers": [container],
        "volumes": volumes,
    }
    if plan.service_account:
        pod_spec["serviceAccountName"] = plan.service_account
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(plan.name),
            "namespace": plan.namespace,
            "labels": labels(plan),
            "annotations": _champion_annotation(plan),
            "ownerReferences": [owner_reference(plan.run)],
        },
        "spec": {
            "backoffLimit": training.retries,
            "activeDeadlineSeconds": training.deadline_seconds,
            "podFailurePolicy": {
                "rules": [
                    {
                        # bad task, bad data, refused estimator: a retry would fail the same way
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": CONTAINER,
                            "operator": "In",
                            "values": permanent_exit_codes(),
                        },
                    },
                    {
                        # evicted or preempted: not the trainer's fault, does not count against retries
                        "action": "Ignore",
                        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
                    },
                ]
            },
            "template": {"metadata": {"labels": labels(plan)}, "spec": pod_spec},
        },
    }
