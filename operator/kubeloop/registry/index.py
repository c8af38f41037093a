"""The registry index: one ConfigMap per namespace, a projection of that namespace's ModelVersions. Pure.

Each model is one key of the ConfigMap's data (`<model>.json`), so `kubectl get cm kubeloop-registry -o
yaml` reads as a table of contents. A model's entry holds its production version, its staging versions,
its recent versions (newest first) and its recent stage changes (oldest first), the latter gathered from
the ModelVersions' `status.history`. Everything can be rebuilt from the ModelVersions, except `latest`,
the highest version number ever seen, which is kept so that version numbers are never reused after a
ModelVersion is deleted.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

KEY_SUFFIX = ".json"


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


class IndexedVersion(_Model):
    name: str
    version: int
    stage: str = "None"
    training_run: str | None = None
    created: str | None = None


class IndexedChange(_Model):
    """One stage change of one version: who or what made it, why and when."""

    name: str
    version: int
    from_stage: str = Field(alias="from")
    to_stage: str = Field(alias="to")
    by: str
    reason: str
    time: str


class ModelIndex(_Model):
    model: str
    production: IndexedVersion | None = None
    staging: list[IndexedVersion] = Field(default_factory=list)
    latest: int = 0
    versions: list[IndexedVersion] = Field(default_factory=list)
    history: list[IndexedChange] = Field(default_factory=list)


def _key(model: str) -> str:
    return model + KEY_SUFFIX


def parse(data: Mapping[str, str] | None) -> dict[str, ModelIndex]:
    """The index from a ConfigMap's data; unreadable entries are dropped (they are rebuilt anyway)."""
    out: dict[str, ModelIndex] = {}
    for key, raw in (data or {}).items():
        if not key.endswith(KEY_SUFFIX):
            continue
        try:
            entry = ModelIndex.model_validate_json(raw)
        except ValueError:
            continue
        out[entry.model] = entry
    return out


def render(index: Mapping[str, ModelIndex]) -> dict[str, str]:
    return {
        _key(model): json.dumps(entry.model_dump(mode="json"), indent=1, sort_keys=True)
        for model, entry in sorted(index.items())
    }


def _indexed(mv: Mapping[str, Any]) -> IndexedVersion:
    spec, meta = mv.get("spec") or {}, mv.get("metadata") or {}
    return IndexedVersion(
        name=meta["name"],
        version=int(spec["version"]),
        stage=(mv.get("status") or {}).get("stage") or "None",
        training_run=(spec.get("lineage") or {}).get("trainingRun"),
        created=meta.get("creationTimestamp"),
    )


def _changes(mv: Mapping[str, Any]) -> list[IndexedChange]:
    name, version = mv["metadata"]["name"], int(mv["spec"]["version"])
    out = []
    for record in (mv.get("status") or {}).get("history") or []:
        try:
            out.append(IndexedChange(name=name, version=version, **record))
        except (TypeError, ValueError):
            continue
    return out


def project(
    model_versions: Iterable[Mapping[str, Any]],
    previous: Mapping[str, ModelIndex] | None = None,
    *,
    recent: int = 50,
    history: int = 50,
) -> dict[str, ModelIndex]:
    """The index of these ModelVersions. `previous` only contributes each model's `latest`."""
    by_model: dict[str, list[Mapping[str, Any]]] = {}
    for mv in model_versions:
        spec = mv.get("spec") or {}
        if spec.get("model") and spec.get("version"):
            by_model.setdefault(spec["model"], []).append(mv)
    previous = previous or {}
    out: dict[str, ModelIndex] = {}
    for model in sorted(set(by_model) | set(previous)):
        mvs = sorted(
            by_model.get(model, []), key=lambda m: (int(m["spec"]["version"]), m["metadata"]["name"])
        )
        versions = [_indexed(mv) for mv in mvs]
        production = [v for v in versions if v.stage == "Production"]
        changes = sorted(
            (c for mv in mvs for c in _changes(mv)), key=lambda c: (c.time, c.version, c.from_stage)
        )
        latest = max([v.version for v in versions] + [previous[model].latest if model in previous else 0])
        out[model] = ModelIndex(
            model=model,
            production=production[-1] if production else None,
            staging=[v for v in versions if v.stage == "Staging"],
            latest=latest,
            versions=list(reversed(versions))[:recent],
            history=changes[-history:],
        )
    return out
