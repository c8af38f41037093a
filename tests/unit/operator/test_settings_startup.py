"""Settings from the environment, and how the one startup handler maps them onto kopf."""

from __future__ import annotations

import logging

import kopf
import pytest
from kubeloop.handlers.startup import apply_settings
from kubeloop.settings import Settings
from pydantic import ValidationError


def test_defaults_are_cluster_wide_and_standalone(monkeypatch):
    for key in ("KUBELOOP_NAMESPACES", "KUBELOOP_PEERING", "KUBELOOP_CRASH_AT"):
        monkeypatch.delenv(key, raising=False)
    settings = Settings()
    assert settings.clusterwide and settings.standalone
    assert settings.health_port == 8080 and settings.metrics_port == 9090
    assert settings.crash_at == frozenset()


def test_env_is_read_with_the_prefix(monkeypatch):
    monkeypatch.setenv("KUBELOOP_NAMESPACES", " team-a, team-b ,")
    monkeypatch.setenv("KUBELOOP_PEERING", "kubeloop")
    monkeypatch.setenv("KUBELOOP_PEERING_PRIORITY", "7")
    monkeypatch.setenv("KUBELOOP_TRAINING_RESOURCES", '{"requests": {"cpu": 1}}')
    monkeypatch.setenv("POD_NAME", "kubeloop-abc")
    settings = Settings()
    assert settings.namespaces == ["team-a", "team-b"] and not settings.clusterwide
    assert settings.peering == "kubeloop" and settings.peering_priority == 7
    assert settings.training_resources.requests == {"cpu": "1"}
    assert settings.pod_name == "kubeloop-abc"


def test_unknown_crash_point_is_refused(monkeypatch):
    monkeypatch.setenv("KUBELOOP_CRASH_AT", "job-created,nowhere")
    with pytest.raises(ValidationError, match="nowhere"):
        Settings()


def test_random_priorities_differ_between_replicas(monkeypatch):
    monkeypatch.delenv("KUBELOOP_PEERING_PRIORITY", raising=False)
    assert len({Settings().peering_priority for _ in range(20)}) > 15


def test_startup_applies_peering_storage_limits_and_selectors(monkeypatch):
    monkeypatch.setenv("KUBELOOP_PEERING", "kubeloop")
    monkeypatch.setenv("KUBELOOP_PEERING_PRIORITY", "42")
    monkeypatch.setenv("KUBELOOP_MAX_WORKERS", "3")
    monkeypatch.setenv("KUBELOOP_WORKER_LIMIT", "17")
    monkeypatch.setenv("KUBELOOP_POSTING_LEVEL", "ERROR")
    monkeypatch.setenv("KUBELOOP_WATCH_TIMEOUT", "120")
    ours = Settings()
    theirs = kopf.OperatorSettings()
    apply_settings(theirs, ours)
    assert theirs.peering.name == "kubeloop" and theirs.peering.priority == 42
    assert theirs.peering.mandatory and not theirs.peering.standalone
    assert theirs.execution.max_workers == 3 and theirs.queueing.worker_limit == 17
    assert theirs.posting.level == logging.ERROR
    assert theirs.watching.server_timeout == 120 and isinstance(theirs.watching.server_timeout, int)
    assert isinstance(theirs.persistence.progress_storage, kopf.StatusProgressStorage)
    assert theirs.persistence.finalizer == "kubeloop.dev/finalizer"
    selectors = dict(theirs.watching.label_selectors.items())
    assert sorted(selectors.values()) == ["app.kubernetes.io/managed-by=kubeloop"] * 2
    assert not theirs.scanning.disabled  # cluster-wide: kopf watches namespaces and CRDs


def test_a_namespace_list_is_served_without_listing_namespaces(monkeypatch):
    monkeypatch.setenv("KUBELOOP_NAMESPACES", "team-a,team-b")
    theirs = kopf.OperatorSettings()
    apply_settings(theirs, Settings())
    assert theirs.scanning.disabled  # namespaced RBAC cannot list namespaces; kopf would retry the 403


def test_standalone_without_a_peering_name(monkeypatch):
    monkeypatch.delenv("KUBELOOP_PEERING", raising=False)
    monkeypatch.setenv("KUBELOOP_PROGRESS_STORAGE", "annotations")
    theirs = kopf.OperatorSettings()
    apply_settings(theirs, Settings())
    assert theirs.peering.standalone
    assert isinstance(theirs.persistence.progress_storage, kopf.AnnotationsProgressStorage)
