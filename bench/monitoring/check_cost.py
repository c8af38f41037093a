"""Cost of one pure DriftMonitor check (`kubeloop.monitoring.check.check`), without the API calls.

Per check: the per-pod deltas on the reference bins, the window verdict through `kubeloop.drift.evaluate`,
the retrain policy, and the next baselines. The snapshots stand for servers that served 100,000 rows, 5,000
of them in the window, with full 1,000-row reservoirs (with Wasserstein, every slot changed: the largest window
sample there can be). Bounded: a few seconds in all.

    .venv/bin/python bench/monitoring/check_cost.py
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np
from kubeloop.api import DriftMonitorSpec, DriftMonitorStatus
from kubeloop.contract import ClassPredictions, FeedbackStats, MonitoringSnapshot
from kubeloop.drift import build_profile
from kubeloop.monitoring.check import CheckInputs, check
from kubeloop.monitoring.reservoir import SampleMemory
from kubeloop.monitoring.window import Baselines, PodBaseline

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _snapshot(rng, names, server_id, rows, counts=None):
    return MonitoringSnapshot(
        server_id=server_id,
        started_at=T0,
        model="m",
        version="1",
        digest="sha256:0",
        requests=rows,
        errors=0,
        rows=rows,
        numeric=counts or {n: rng.multinomial(rows, [0.1] * 10).tolist() for n in names},
        categorical={},
        missing={},
        sample={n: rng.normal(size=1000).tolist() for n in names},
        sample_seen=rows,
        sample_capacity=1000,
        predictions=ClassPredictions(classes=["a"], counts=[rows]),
        feedback=FeedbackStats(),
    )


def measure(pods: int, features: int, method: str, repeat: int) -> float:
    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(features)]
    profile = build_profile({n: rng.normal(size=20_000) for n in names}, {}, sample_size=1000)
    before = {f"p{i}": _snapshot(rng, names, f"s{i}", 100_000) for i in range(pods)}
    now = {}
    for pod, old in before.items():
        window = {n: rng.multinomial(5_000, [0.1] * 10) for n in names}
        counts = {n: (np.asarray(old.numeric[n]) + window[n]).tolist() for n in names}
        now[pod] = _snapshot(rng, names, old.server_id, 105_000, counts)
    spec = DriftMonitorSpec.model_validate({"model": "m", "method": method, "retrain": {"clone": {}}})
    inputs = CheckInputs(
        spec=spec,
        status=DriftMonitorStatus(window=3, model_version="m-v1"),
        generation=1,
        created=T0,
        model_version="m-v1",
        profile=profile,
        snapshots=now,
        baselines=Baselines(
            model_version="m-v1", window=3, time=T0, pods={p: PodBaseline.of(s) for p, s in before.items()}
        ),
        samples={p: SampleMemory.of(s) for p, s in before.items()},
        running=None,
        found=[],
        now=T0 + timedelta(minutes=5),
    )
    check(inputs)  # warm up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        check(inputs)
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> None:
    print("pods  features  method  best of 5, ms per check")
    for pods, features in ((2, 4), (10, 50), (10, 500)):
        for method in ("Auto", "KS", "Wasserstein"):
            print(f"{pods:>4}  {features:>8}  {method:<11}  {measure(pods, features, method, repeat=5):8.1f}")


if __name__ == "__main__":
    main()
