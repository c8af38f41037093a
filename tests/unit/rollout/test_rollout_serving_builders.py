"""The serving builders: names, labels, selectors, owner references, probes, security, env and routes."""

from __future__ import annotations

import pytest
from kubeloop.api import ModelVersionSpec, ResourceRequirements
from kubeloop.builders import serving
from kubeloop.builders.serving import (
    RoutePlan,
    ServingPlan,
    deployment,
    http_route,
    missing_owner,
    model_service,
    route_weights,
    scale_patch,
    version_service,
)

DIGEST = "sha256:" + "a" * 64
MV = {
    "apiVersion": "kubeloop.dev/v1alpha1",
    "kind": "ModelVersion",
    "metadata": {"name": "iris-v3", "namespace": "ml", "uid": "uid-3"},
}
MV2 = {**MV, "metadata": {"name": "iris-v2", "namespace": "ml", "uid": "uid-2"}}


def spec(**kw) -> ModelVersionSpec:
    body = {"model": "iris", "version": 3, "artifact": {"uri": "s3://art/iris/v3", "digest": DIGEST}}
    body.update(kw)
    return ModelVersionSpec.model_validate(body)


def plan(**kw) -> ServingPlan:
    base = dict(
        version=MV,
        spec=spec(),
        image="ghcr.io/kubeloop/trainer:0.1.0",
        replicas=2,
        track="canary",
        default_resources=ResourceRequirements(requests={"cpu": "100m"}, limits={"memory": "1Gi"}),
        s3_secret="kubeloop-s3",
    )
    base.update(kw)
    return ServingPlan(**base)


def env_of(container) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_deployment_names_labels_selector_and_owner():
    d = deployment(plan())
    meta = d["metadata"]
    assert (meta["name"], meta["namespace"]) == ("iris-v3", "ml")
    assert meta["labels"]["kubeloop.dev/track"] == "canary"
    pod = d["spec"]["template"]["metadata"]["labels"]
    assert pod == {
        "app.kubernetes.io/managed-by": "kubeloop",
        "app.kubernetes.io/name": "kubeloop-server",
        "app.kubernetes.io/component": "model-server",
        "kubeloop.dev/model": "iris",
        "kubeloop.dev/version": "3",
    }
    assert "kubeloop.dev/track" not in pod  # promotion must not restart the pods
    assert d["spec"]["selector"]["matchLabels"] == pod
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "kubeloop.dev/v1alpha1",
            "kind": "ModelVersion",
            "name": "iris-v3",
            "uid": "uid-3",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert d["spec"]["replicas"] == 2
    assert d["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}


def test_server_container_runs_serve_on_the_pinned_artifact_on_every_pod_interface():
    c = deployment(plan())["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["kubeloop-trainer", "serve"]
    env = env_of(c)
    assert env["KUBELOOP_MODEL_URI"] == "s3://art/iris/v3" and env["KUBELOOP_MODEL_DIGEST"] == DIGEST
    assert (env["KUBELOOP_MODEL_NAME"], env["KUBELOOP_MODEL_VERSION"]) == ("iris", "3")
    # The server binds every interface of its pod, so that `kubectl port-forward` (localhost) reaches it.
    assert "KUBELOOP_BIND_ADDRESS" not in env
    assert env["AWS_ACCESS_KEY_ID"] == {
        "secretKeyRef": {"name": "kubeloop-s3", "key": "AWS_ACCESS_KEY_ID", "optional": True}
    }
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


def test_probes_drain_and_grace_period():
    d = deployment(plan(drain_seconds=7))
    pod = d["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http", "scheme": "HTTP"}
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert c["startupProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert c["lifecycle"] == {"preStop": {"sleep": {"seconds": 7}}}
    assert pod["terminationGracePeriodSeconds"] == 7 + serving.SHUTDOWN_SECONDS


def test_restricted_security_context_and_no_token():
    pod = deployment(plan())["spec"]["template"]["spec"]
    c = pod["containers"][0]["securityContext"]
    assert c["allowPrivilegeEscalation"] is False and c["readOnlyRootFilesystem"] is True
    assert c["capabilities"] == {"drop": ["ALL"]} and c["runAsNonRoot"] is True
    assert c["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    assert {"name": "tmp", "mountPath": "/tmp"} in pod["containers"][0]["volumeMounts"]


def test_resources_from_the_spec_or_the_default():
    c = deployment(plan())["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"] == {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}}
    own = spec(serving={"resources": {"requests": {"cpu": "2"}}})
    c = deployment(plan(spec=own))["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"] == {"requests": {"cpu": "2"}, "limits": {}}


def test_a_pvc_artifact_is_mounted_read_only():
    pvc = spec(artifact={"uri": "pvc://models/iris/v3", "digest": DIGEST})
    pod = deployment(plan(spec=pvc))["spec"]["template"]["spec"]
    assert {"name": "artifact", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}} in pod[
        "volumes"
    ]
    mount = pod["containers"][0]["volumeMounts"][-1]
    assert mount == {"name": "artifact", "mountPath": "/mnt/pvc/models", "readOnly": True}


def test_long_model_names_stay_valid():
    long = "m" * 52
    d = deployment(plan(spec=spec(model=long, version=1_000_000)))
    assert len(d["metadata"]["name"]) <= 63
    assert len(serving.service_name(long)) <= 63


def test_model_service_selects_every_version_and_lists_owners():
    svc = model_service("iris", "ml", [MV2, MV])
    assert svc["metadata"]["name"] == "iris-serving"
    assert svc["spec"]["selector"] == {
        "app.kubernetes.io/component": "model-server",
        "kubeloop.dev/model": "iris",
    }
    assert svc["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    owners = svc["metadata"]["ownerReferences"]
    assert [o["uid"] for o in owners] == ["uid-2", "uid-3"] and not any(o["controller"] for o in owners)
    # the selector matches the pods of any version
    pod = deployment(plan())["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod.items()


def test_missing_owner_patch_keeps_the_others():
    svc = model_service("iris", "ml", [MV2])
    patch = missing_owner(svc, MV)
    assert [o["uid"] for o in patch["metadata"]["ownerReferences"]] == ["uid-2", "uid-3"]
    assert missing_owner(svc, MV2) is None


def test_scale_patch():
    assert scale_patch(0) == {"spec": {"replicas": 0}}
    assert scale_patch(3, "stable") == {
        "spec": {"replicas": 3},
        "metadata": {"labels": {"kubeloop.dev/track": "stable"}},
    }


def test_version_service_and_http_route_weights():
    svc = version_service(plan())
    assert svc["metadata"]["name"] == "iris-v3"
    assert svc["spec"]["selector"]["kubeloop.dev/version"] == "3"
    route = http_route(
        RoutePlan(
            "iris",
            "ml",
            [MV2, MV],
            stable_version=2,
            canary_version=3,
            canary_weight=10,
            parent_refs=[{"name": "gw", "namespace": "infra"}],
        )
    )
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1" and route["kind"] == "HTTPRoute"
    assert route["spec"]["parentRefs"] == [{"name": "gw", "namespace": "infra"}]
    assert route_weights(route) == {"iris-v2": 90, "iris-v3": 10}
    only = http_route(RoutePlan("iris", "ml", [MV2], stable_version=2, canary_version=None, canary_weight=0))
    assert route_weights(only) == {"iris-v2": 100}


@pytest.mark.parametrize("track", ["stable", "canary"])
def test_track_is_on_the_deployment(track):
    assert deployment(plan(track=track))["metadata"]["labels"]["kubeloop.dev/track"] == track
