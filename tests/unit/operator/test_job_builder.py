"""The training Job and its task ConfigMap: names, owner, labels, security, limits, secrets, task."""

from __future__ import annotations

import json

import pytest
from kubeloop.api import ResourceRequirements, TrainingRunSpec, TrainingRunStatus
from kubeloop.builders.job import (
    TrainingJobPlan,
    artifact_uri,
    job_name,
    task_config_map,
    training_job,
)
from kubeloop.builders.labels import child_name, label_value
from kubeloop.builders.modelversion import model_version, version_name
from kubeloop.contract import ChampionRef, TrainerTask, permanent_exit_codes

RUN = {
    "apiVersion": "kubeloop.dev/v1alpha1",
    "kind": "TrainingRun",
    "metadata": {"name": "iris-rf", "namespace": "ml", "uid": "0123456789abcdef-uid"},
}
SPEC = {
    "model": "iris",
    "data": {"uri": "s3://data/iris.csv", "target": "species"},
    "training": {
        "estimator": {"classPath": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 10}},
        "deadlineSeconds": 600,
        "retries": 2,
        "seed": 7,
    },
}
DEFAULTS = ResourceRequirements(requests={"cpu": "100m"}, limits={"memory": "1Gi"})


def plan(spec: dict | None = None, **extra) -> TrainingJobPlan:
    parsed = TrainingRunSpec.model_validate(spec or SPEC)
    return TrainingJobPlan(
        run=RUN,
        spec=parsed,
        image="ghcr.io/kubeloop/trainer:0.1.0",
        artifact_uri=artifact_uri("s3://art", RUN, parsed.model),
        default_resources=DEFAULTS,
        **extra,
    )


def test_names_are_deterministic_and_short():
    assert job_name("iris-rf") == "iris-rf-train"
    long = "r" * 60
    assert job_name(long) == job_name(long) and len(job_name(long)) <= 63
    assert job_name(long) != job_name("r" * 61)  # the hash keeps cut names apart
    assert child_name("a" * 80, "task").endswith("-task")
    assert len(label_value("x" * 100)) <= 63 and label_value("short") == "short"


def test_job_is_owned_labelled_limited_and_restricted():
    job = training_job(plan())
    meta = job["metadata"]
    assert meta["name"] == "iris-rf-train" and meta["namespace"] == "ml"
    (owner,) = meta["ownerReferences"]
    assert owner == {
        "apiVersion": "kubeloop.dev/v1alpha1",
        "kind": "TrainingRun",
        "name": "iris-rf",
        "uid": "0123456789abcdef-uid",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert meta["labels"]["kubeloop.dev/training-run"] == "iris-rf"
    assert meta["labels"]["kubeloop.dev/training-run-uid"] == "0123456789abcdef-uid"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "kubeloop"
    spec = job["spec"]
    assert spec["activeDeadlineSeconds"] == 600 and spec["backoffLimit"] == 2
    fail_fast = spec["podFailurePolicy"]["rules"][0]
    assert fail_fast["action"] == "FailJob"
    assert fail_fast["onExitCodes"]["values"] == permanent_exit_codes()
    pod = spec["template"]["spec"]
    assert spec["template"]["metadata"]["labels"] == meta["labels"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["command"] == ["kubeloop-trainer", "train"]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["resources"] == {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/kubeloop/task"]["readOnly"] is True and "/tmp" in mounts
    task_volume = next(v for v in pod["volumes"] if v["name"] == "task")
    assert task_volume["configMap"]["name"] == "iris-rf-task"


def test_the_runs_own_resources_win_over_the_defaults():
    spec = json.loads(json.dumps(SPEC))
    spec["training"]["resources"] = {"requests": {"cpu": 1}, "limits": {"cpu": "2"}}
    container = training_job(plan(spec))["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"requests": {"cpu": "1"}, "limits": {"cpu": "2"}}


def test_s3_credentials_come_only_from_the_secret():
    job = training_job(plan(s3_secret="kubeloop-s3", s3_endpoint_url="http://10.0.0.1:9000"))
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    by_name = {e["name"]: e for e in env}
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        ref = by_name[key]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "kubeloop-s3", "key": key, "optional": True}
    # the endpoint is not a secret; the setting overrides the Secret's key
    assert by_name["AWS_ENDPOINT_URL"] == {"name": "AWS_ENDPOINT_URL", "value": "http://10.0.0.1:9000"}
    assert [e["name"] for e in env].count("AWS_ENDPOINT_URL") == 1
    no_secret = training_job(plan())["spec"]["template"]["spec"]["containers"][0]["env"]
    assert not any(e["name"].startswith("AWS_") for e in no_secret)


def test_the_task_config_map_carries_the_spec_the_artifact_place_and_the_champion():
    champion = ChampionRef(artifact_uri="s3://art/ml/iris/old", version="3", digest="sha256:" + "a" * 64)
    cm = task_config_map(plan(champion=champion, champion_name="iris-v3"))
    assert cm["metadata"]["name"] == "iris-rf-task" and cm["immutable"] is True
    assert cm["metadata"]["ownerReferences"][0]["uid"] == "0123456789abcdef-uid"
    assert cm["metadata"]["annotations"] == {"kubeloop.dev/champion": "iris-v3"}
    task = TrainerTask.model_validate_json(cm["data"]["task.json"])
    assert task.model == "iris" and task.training_run == "iris-rf" and task.namespace == "ml"
    assert task.estimator.params == {"n_estimators": 10} and task.seed == 7
    assert task.artifact_uri == "s3://art/ml/iris/iris-rf-01234567"
    assert task.champion == champion
    job = training_job(plan(champion=champion, champion_name="iris-v3"))
    assert job["metadata"]["annotations"] == {"kubeloop.dev/champion": "iris-v3"}


def test_pvc_data_is_mounted_read_only_where_the_trainer_looks():
    spec = json.loads(json.dumps(SPEC))
    spec["data"]["uri"] = "pvc://datasets/iris/train.csv"
    pod = training_job(plan(spec))["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if "persistentVolumeClaim" in v)
    assert volume["persistentVolumeClaim"] == {"claimName": "datasets", "readOnly": True}
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"])
    assert mount == {"name": volume["name"], "mountPath": "/mnt/pvc/datasets", "readOnly": True}


def test_a_trigger_annotation_reaches_the_task_and_the_lineage():
    run = {
        **RUN,
        "metadata": {**RUN["metadata"], "annotations": {"kubeloop.dev/trigger": '{"reason": "Drift"}'}},
    }
    parsed = TrainingRunSpec.model_validate(SPEC)
    p = TrainingJobPlan(
        run=run, spec=parsed, image="img", artifact_uri="s3://a/b", default_resources=DEFAULTS
    )
    task = TrainerTask.model_validate_json(task_config_map(p)["data"]["task.json"])
    assert task.trigger == "Drift"
    status = TrainingRunStatus(
        artifact_uri="s3://a/b", artifact_digest="sha256:" + "b" * 64, candidate_metrics={"accuracy": 0.9}
    )
    mv = model_version(run, parsed, status, 4)
    assert mv["spec"]["lineage"]["trigger"]["reason"] == "Drift"


def test_model_version_has_lineage_metrics_and_the_requested_stage_but_no_owner():
    parsed = TrainingRunSpec.model_validate({**SPEC, "promotion": {"policy": "Auto"}})
    status = TrainingRunStatus(
        artifact_uri="s3://art/ml/iris/iris-rf-01234567",
        artifact_digest="sha256:" + "c" * 64,
        candidate_metrics={"accuracy": 0.96, "f1": 0.95},
        data_hash="sha256:" + "d" * 64,
        image="ghcr.io/kubeloop/trainer:0.1.0",
    )
    mv = model_version(RUN, parsed, status, 3)
    assert mv["metadata"]["name"] == version_name("iris", 3) == "iris-v3"
    assert "ownerReferences" not in mv["metadata"]
    assert mv["metadata"]["labels"]["kubeloop.dev/training-run-uid"] == "0123456789abcdef-uid"
    spec = mv["spec"]
    assert spec["version"] == 3 and spec["stage"] == "Production"
    assert spec["metrics"] == {"accuracy": 0.96, "f1": 0.95}
    assert spec["artifact"] == {"uri": status.artifact_uri, "digest": status.artifact_digest}
    lineage = spec["lineage"]
    assert lineage["trainingRun"] == "iris-rf" and lineage["dataUri"] == "s3://data/iris.csv"
    assert lineage["dataHash"] == status.data_hash and lineage["image"] == status.image
    assert lineage["estimator"]["classPath"] == "sklearn.ensemble.RandomForestClassifier"
    manual = model_version(RUN, TrainingRunSpec.model_validate(SPEC), status, 1)
    assert manual["spec"]["stage"] == "Staging"
    with pytest.raises(ValueError, match="no artifact"):
        model_version(RUN, parsed, TrainingRunStatus(), 1)
