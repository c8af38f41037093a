"""The production version of a model, the pods that serve it, and their monitoring snapshots.

The production version is the ModelVersion of the model whose *actual* stage (``status.stage``) is
Production: during a canary the new version only asks for Production, and the monitor keeps watching the
stable one. Its pods are those of the Deployment its status names (through the Deployment's selector), and
each is scraped by pod IP on its ``http`` container port (else the first, else 8080). A snapshot whose
digest is not the version's is another artifact's and is left out.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from kubeloop.api import ModelVersion
from kubeloop.contract import MonitoringSnapshot
from kubeloop.k8s import DEPLOYMENT, MODEL_VERSION, POD, Kube

__all__ = ["PodTarget", "Scrape", "production_version", "scrape", "serving_pods"]

DEFAULT_PORT = 8080
SCRAPE_TIMEOUT = 5.0
SCRAPE_WORKERS = 8


@dataclass(frozen=True)
class PodTarget:
    name: str
    ip: str
    port: int


@dataclass(frozen=True)
class Scrape:
    snapshots: dict[str, MonitoringSnapshot]
    failures: dict[str, str]  # pod -> why


def production_version(kube: Kube, namespace: str, model: str) -> ModelVersion | None:
    """The ModelVersion of ``model`` in stage Production (the highest version if, transiently, several)."""
    found = []
    for body in kube.list(MODEL_VERSION, namespace):
        if (body.get("spec") or {}).get("model") != model:
            continue
        if ((body.get("status") or {}).get("stage")) != "Production":
            continue
        try:
            found.append(ModelVersion.model_validate(body))
        except ValidationError:
            continue
    return max(found, key=lambda v: v.spec.version, default=None)


def _selector(deployment: Mapping[str, Any]) -> str | None:
    selector = (deployment.get("spec") or {}).get("selector") or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], ",".join(expr.get("values") or [])
        parts.append(
            {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key}.get(
                op, f"!{key}"
            )
        )
    return ",".join(parts) or None


def _port(pod: Mapping[str, Any]) -> int:
    ports = [p for c in pod["spec"].get("containers", []) for p in c.get("ports") or []]
    named = [p for p in ports if p.get("name") == "http"]
    chosen = (named or ports or [{"containerPort": DEFAULT_PORT}])[0]
    return int(chosen["containerPort"])


def serving_pods(kube: Kube, namespace: str, deployment: str) -> list[PodTarget]:
    """Running pods of the Deployment that have an IP; empty when the Deployment is gone."""
    body = kube.get(DEPLOYMENT, namespace, deployment)
    selector = _selector(body) if body else None
    if selector is None:
        return []
    targets = []
    for pod in kube.list(POD, namespace, labels=selector):
        status, meta = pod.get("status") or {}, pod["metadata"]
        if meta.get("deletionTimestamp") or status.get("phase") != "Running" or not status.get("podIP"):
            continue
        targets.append(PodTarget(name=meta["name"], ip=status["podIP"], port=_port(pod)))
    return sorted(targets, key=lambda t: t.name)


def _fetch(target: PodTarget, model: str, timeout: float) -> MonitoringSnapshot:
    host = f"[{target.ip}]" if ":" in target.ip else target.ip
    url = f"http://{host}:{target.port}/v2/models/{model}/monitoring"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return MonitoringSnapshot.model_validate_json(response.read())


def scrape(
    targets: Sequence[PodTarget], model: str, *, digest: str, timeout: float = SCRAPE_TIMEOUT
) -> Scrape:
    """Every pod's snapshot, fetched concurrently; pods that fail or serve another artifact are reported."""
    snapshots: dict[str, MonitoringSnapshot] = {}
    failures: dict[str, str] = {}
    if not targets:
        return Scrape(snapshots, failures)
    with ThreadPoolExecutor(max_workers=min(SCRAPE_WORKERS, len(targets))) as pool:
        futures = {t.name: pool.submit(_fetch, t, model, timeout) for t in targets}
    for name, future in futures.items():
        try:
            snapshot = future.result()
        except (OSError, urllib.error.URLError, ValidationError, ValueError) as e:
            failures[name] = f"{type(e).__name__}: {e}"
            continue
        if snapshot.digest != digest:
            failures[name] = f"serves artifact {snapshot.digest}, not {digest}"
            continue
        snapshots[name] = snapshot
    return Scrape(snapshots, failures)
