"""Every knob of the demo in one frozen object: names, the traffic, the short intervals, and the deadlines.

The intervals are short so that the whole story fits in a few minutes on a laptop; each stage has its own
deadline, so a stage that does not happen ends the demo with a message naming it instead of hanging.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Deadlines:
    """Seconds each stage may take before the demo gives up on it."""

    cluster: float = 240.0  # control plane, node, S3 store, CRDs, RBAC, operator healthy
    training: float = 300.0  # TrainingRun created -> Succeeded (Job, trainer, gates, ModelVersion)
    first_rollout: float = 240.0  # v1 registered -> Production, serving pods Ready
    baseline: float = 180.0  # DriftMonitor judged the baseline windows
    drift: float = 180.0  # shift started -> Drifted and a retrain TrainingRun created
    rollout: float = 300.0  # v2 registered -> canary steps -> promoted, v1 Archived
    settle: float = 150.0  # the monitor watches v2 and judges a window of the shifted traffic


@dataclass(frozen=True)
class DemoConfig:
    cluster: str = "demo"
    namespace: str = "kubeloop-demo"
    model: str = "iris"
    output: Path = Path("demo-output")
    seed: int = 7

    # the data: iris, then the same world with one feature moved
    # The trainer's random forest leans on petal width: +0.6 cm drops v1 from ~0.98 to ~0.75 online accuracy,
    # while a model trained on the shifted world gets ~0.98 again.
    shift_feature: str = "petal_width"
    shift_delta: float = 0.6

    # live traffic: requests per second, rows per request (each with a feedback label)
    request_rate: float = 8.0
    rows_per_request: int = 8

    # the DriftMonitor: short windows, two drifted windows in a row before a retrain
    monitor_interval: str = "10s"
    # the monitor needs this many rows on both sides: the reference is the 112-row training split
    min_samples: int = 100
    consecutive_windows: int = 2
    # per window, over all features (Bonferroni): the demo judges ~25 windows in a few minutes
    false_alarm_rate: float = 0.001
    baseline_windows: int = 2  # windows judged NoDrift-or-not before the shift starts

    # the canary plan of every version: (weight, interval) steps, and what a step must show
    canary_steps: tuple[tuple[int, str], ...] = ((10, "12s"), (50, "12s"), (100, "12s"))
    canary_min_requests: int = 20
    canary_min_online_accuracy: float = 0.85
    # The stable version is the drifted one when a retrain rolls out, so the canary's predictions are
    # expected to differ from it (JS distance ~0.3 in this story); online accuracy is the real guard.
    canary_max_prediction_shift: float = 0.5
    canary_max_p99_latency_ms: float = 1000.0

    deadlines: Deadlines = field(default_factory=Deadlines)

    @property
    def initial_run(self) -> str:
        return f"{self.model}-initial"

    @property
    def monitor(self) -> str:
        return self.model

    def data_key(self, name: str) -> str:
        return f"datasets/{self.model}/{name}.csv"
