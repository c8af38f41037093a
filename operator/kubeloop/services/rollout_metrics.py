"""Scraping the model servers of one version: its pods from the API, then `GET /metrics` on each pod IP.

The operator reaches pod IPs directly (in a cluster, the pod network; on the local cluster, the host's
side of the pod network namespace), so no Service, port-forward or `pods/proxy` permission is involved.
Every pod is scraped concurrently with a short timeout; a pod that does not answer, answers with
something else, or reports another version is left out and named, never guessed at.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from kubeloop.builders.serving import PORT, pod_labels
from kubeloop.contract import METRICS_PATH
from kubeloop.k8s import POD, Kube
from kubeloop.rollout.metrics import ServerCounters, parse_server_metrics

SCRAPE_TIMEOUT = 3.0
MAX_WORKERS = 16


@dataclass(frozen=True)
class PodTarget:
    name: str
    ip: str
    version: int


@dataclass
class Scraped:
    counters: dict[str, ServerCounters] = field(default_factory=dict)  # pod name -> counters
    failures: dict[str, str] = field(default_factory=dict)  # pod name -> why it was left out

    def pods_of(self, targets: Sequence[PodTarget], version: int) -> list[str]:
        return [t.name for t in targets if t.version == version and t.name in self.counters]


def version_pods(kube: Kube, namespace: str, model: str, version: int) -> list[PodTarget]:
    """Running server pods of one version that have an IP and are not being deleted."""
    selector = ",".join(f"{k}={v}" for k, v in sorted(pod_labels(model, version).items()))
    out = []
    for pod in kube.list(POD, namespace, labels=selector):
        meta, status = pod["metadata"], pod.get("status") or {}
        if meta.get("deletionTimestamp") or status.get("phase") != "Running" or not status.get("podIP"):
            continue
        out.append(PodTarget(meta["name"], status["podIP"], version))
    return sorted(out, key=lambda t: t.name)


def _fetch(target: PodTarget, timeout: float) -> ServerCounters:
    host = f"[{target.ip}]" if ":" in target.ip else target.ip
    with urllib.request.urlopen(f"http://{host}:{PORT}{METRICS_PATH}", timeout=timeout) as response:
        counters = parse_server_metrics(response.read().decode("utf-8", errors="replace"))
    if counters is None:
        raise ValueError("no metrics yet (the model is still loading)")
    if counters.version != str(target.version):
        raise ValueError(f"serves version {counters.version!r}, not {target.version}")
    return counters


def scrape(targets: Sequence[PodTarget], timeout: float = SCRAPE_TIMEOUT) -> Scraped:
    """Every target's counters, fetched concurrently."""
    out = Scraped()
    if not targets:
        return out
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(targets))) as pool:
        futures = {t.name: pool.submit(_fetch, t, timeout) for t in targets}
    for name, future in futures.items():
        try:
            out.counters[name] = future.result()
        except (OSError, urllib.error.URLError, ValueError) as e:
            out.failures[name] = f"{type(e).__name__}: {e}"
    return out
