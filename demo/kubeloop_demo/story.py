"""The closed loop as one story, in three chapters, each stage with a deadline.

1. A TrainingRun on iris passes its gates and registers v1, which rolls out (Auto promotion).
2. Live traffic from the training distribution, with a feedback label per row; a DriftMonitor judges it.
3. One feature shifts; fresh labelled data lands in the object store; the monitor sees drift for
   `consecutive_windows` windows and clones the production run onto the fresh data; v2 passes the
   champion gate against v1, rolls out step by step, and is promoted; the monitor then watches v2.

`kubeloop-demo` runs it with a live view; `tests/e2e/test_closed_loop.py` runs the same `Story` and asserts
every transition it recorded. A stage that does not happen in time raises `StageFailed` naming the stage
and what was last seen; a failure the operator reports (a failed run, a rolled-back version) ends the stage
at once.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kubeloop.builders.serving import service_name

from kubeloop_demo import manifests
from kubeloop_demo.data import Dataset, iris
from kubeloop_demo.kube import Kube
from kubeloop_demo.observe import Observer, Transition, Window, condition, status
from kubeloop_demo.stack import Stack, server_side_apply
from kubeloop_demo.traffic import Request, Traffic, TrafficSummary

T = TypeVar("T")
POLL = 1.0
REGISTRY_CONFIG_MAP = "kubeloop-registry"  # the operator's default KUBELOOP_REGISTRY_CONFIG_MAP


class StageFailed(Exception):
    def __init__(self, stage: str, message: str):
        super().__init__(f"stage {stage!r} failed: {message}")
        self.stage = stage
        self.message = message


@dataclass(frozen=True)
class Board:
    """What the live view shows at one instant."""

    elapsed: float
    stage: str
    stage_elapsed: float
    stage_deadline: float
    observer: Observer
    traffic: TrafficSummary | None
    transitions: list[Transition]


class View:
    """The live view's interface (the default shows nothing; see view.py)."""

    def stage(self, title: str, deadline: float) -> None: ...
    def transition(self, transition: Transition) -> None: ...
    def note(self, text: str) -> None: ...
    def render(self, board: Board) -> None: ...


@dataclass
class StoryResult:
    initial_run: str = ""
    v1: str = ""
    retrain_run: str = ""
    v2: str = ""
    data: dict[str, str] = field(default_factory=dict)  # "initial", "fresh" -> s3:// URI
    milestones: dict[str, float] = field(default_factory=dict)  # name -> seconds since the start
    stages: list[tuple[str, float]] = field(default_factory=list)  # (stage, seconds it took)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    monitor: dict[str, Any] = field(default_factory=dict)
    registry: dict[str, Any] = field(default_factory=dict)  # the model's entry of the index ConfigMap
    transitions: list[Transition] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    baseline_windows: list[Window] = field(default_factory=list)
    duration: float = 0.0


def _succeeded(run: dict[str, Any] | None, stage: str) -> dict[str, Any] | None:
    done = condition(run, "Succeeded")
    if done and done.get("status") == "False":
        raise StageFailed(stage, f"TrainingRun {run['metadata']['name']} failed: {done.get('message')}")
    return run if done and done.get("status") == "True" else None


def _promoted(version: dict[str, Any] | None, stage: str) -> dict[str, Any] | None:
    if version is None:
        return None
    rolled_back = condition(version, "RolledBack")
    if rolled_back and rolled_back.get("status") == "True":
        raise StageFailed(
            stage, f"ModelVersion {version['metadata']['name']} was rolled back: {rolled_back.get('message')}"
        )
    st = status(version)
    rollout = st.get("rollout") or {}
    return version if st.get("stage") == "Production" and rollout.get("phase") == "Promoted" else None


class Story:
    def __init__(self, stack: Stack, view: View | None = None, t0: float | None = None):
        """`t0`: the time.monotonic() the story's clock counts from (default: now)."""
        assert stack.kube is not None, "Stack.up() first"
        self.stack = stack
        self.config = stack.config
        self.view = view or View()
        self.t0 = time.monotonic() if t0 is None else t0
        self.observer = Observer(stack.kube, self.config.namespace, self.clock)
        self.traffic: Traffic | None = None
        self.result = StoryResult()
        self._stage = ("starting", 0.0, 0.0)  # title, start, deadline
        self.world = iris()

    def clock(self) -> float:
        return time.monotonic() - self.t0

    # -- the machinery of a stage ---------------------------------------------------------------------------
    def board(self) -> Board:
        title, start, deadline = self._stage
        return Board(
            elapsed=self.clock(),
            stage=title,
            stage_elapsed=self.clock() - start,
            stage_deadline=deadline,
            observer=self.observer,
            traffic=self.traffic.summary() if self.traffic else None,
            transitions=self.observer.transitions[-8:],
        )

    def tick(self) -> None:
        for transition in self.observer.refresh():
            self.view.transition(transition)
        self.view.render(self.board())

    def wait(self, title: str, deadline: float, until: Callable[[], T | None]) -> T:
        start = self.clock()
        self._stage = (title, start, deadline)
        self.view.stage(title, deadline)
        while True:
            self.tick()
            operator = self.stack.operator
            if operator is not None and not operator.running:
                raise StageFailed(
                    title,
                    f"kubeloop-operator {operator.exit_reason()}; its log: {operator.log_path}\n{operator.tail()}",
                )
            value = until()
            if value:
                self.result.stages.append((title, self.clock() - start))
                return value
            if self.clock() - start > deadline:
                raise StageFailed(title, f"not done within {deadline:.0f}s; last seen: {self.last_seen()}")
            time.sleep(POLL)

    def last_seen(self) -> str:
        if self.observer.error:
            return f"the API server did not answer: {self.observer.error}"
        recent = self.observer.transitions[-3:]
        seen = "; ".join(t.line() for t in recent) if recent else "no kubeloop object changed"
        operator = self.stack.operator
        return f"{seen} (operator log: {operator.log_path})" if operator else seen

    def apply(self, manifest: dict[str, Any]) -> None:
        try:
            server_side_apply(self.stack.cluster, [manifest])
        except subprocess.CalledProcessError as e:
            what = f"{manifest['kind']} {manifest['metadata']['name']}"
            raise StageFailed(self._stage[0], f"kubectl apply of {what} failed: {e.stderr.strip()}") from e
        self.view.note(f"kubectl apply {manifest['kind']} {manifest['metadata']['name']}")

    def mark(self, milestone: str) -> None:
        self.result.milestones[milestone] = self.clock()

    def service(self) -> str | None:
        """The model's Service, as its ModelVersions report it (shared by every version), else by its name."""
        for version in self.observer.items("ModelVersion"):
            if version["spec"].get("model") == self.config.model and status(version).get("service"):
                return status(version)["service"]
        return service_name(self.config.model)

    # -- the chapters ---------------------------------------------------------------------------------------
    def run(self) -> StoryResult:
        try:
            self.train_and_roll_out_v1()
            self.serve_live_traffic()
            self.drift_retrain_and_roll_out_v2()
        finally:
            if self.traffic is not None:
                self.traffic.stop()
            self.collect()
        return self.result

    def train_and_roll_out_v1(self) -> None:
        cfg, deadlines, result = self.config, self.config.deadlines, self.result
        result.data["initial"] = self.stack.upload(cfg.data_key("initial"), self.world.to_csv())
        self.view.note(f"uploaded iris ({len(self.world.labels)} rows) to {result.data['initial']}")
        result.initial_run = cfg.initial_run
        self.mark("v1 requested")
        self.apply(manifests.training_run(cfg, cfg.initial_run, result.data["initial"]))
        stage = "1/3 TrainingRun: data gate, training Job, model gate, ModelVersion v1"
        run = self.wait(
            stage,
            deadlines.training,
            lambda: _succeeded(self.observer.get("TrainingRun", cfg.initial_run), stage),
        )
        result.v1 = status(run)["modelVersion"]
        self.mark("v1 registered")
        stage = f"1/3 {result.v1}: Production requested -> serving pods Ready -> promoted"
        self.wait(
            stage,
            deadlines.first_rollout,
            lambda: _promoted(self.observer.get("ModelVersion", result.v1), stage),
        )
        self.mark("v1 promoted")

    def serve_live_traffic(self) -> None:
        cfg, result = self.config, self.result
        kubeconfig = self.stack.cluster.kubeconfig
        self.traffic = Traffic(
            lambda: Kube(kubeconfig),
            cfg.namespace,
            cfg.model,
            self.service,
            self.world,
            rate=cfg.request_rate,
            rows=cfg.rows_per_request,
            seed=cfg.seed,
            clock=self.clock,
        ).start()
        self.mark("traffic started")
        self.view.note(
            f"live traffic: {cfg.request_rate:g} requests/s x {cfg.rows_per_request} rows from the training "
            "distribution, a feedback label for every row"
        )
        # Where the fresh labelled data will land once the world changes; the monitor's retrain clones the
        # production run onto it.
        result.data["fresh"] = f"s3://{self.stack.cluster.s3.bucket}/{cfg.data_key('fresh')}"
        self.apply(manifests.drift_monitor(cfg, result.data["fresh"]))

        def baseline_judged() -> list[Window] | None:
            judged = [
                w
                for w in self.observer.windows
                if w.model_version == result.v1 and w.verdict in ("NoDrift", "Drift")
            ]
            return judged if len(judged) >= cfg.baseline_windows else None

        stage = f"2/3 DriftMonitor {cfg.monitor}: judging {cfg.baseline_windows} windows of live traffic"
        result.baseline_windows = self.wait(stage, cfg.deadlines.baseline, baseline_judged)
        self.mark("baseline judged")

    def drift_retrain_and_roll_out_v2(self) -> None:
        cfg, deadlines, result = self.config, self.config.deadlines, self.result
        assert self.traffic is not None
        shifted: Dataset = self.world.shifted(cfg.shift_feature, cfg.shift_delta)
        self.stack.upload(cfg.data_key("fresh"), shifted.to_csv())
        self.view.note(f"fresh labelled data ({shifted.label}) landed at {result.data['fresh']}")
        self.traffic.set_world(shifted)
        self.mark("shift started")
        self.view.note(f"the world changed: live traffic now has {cfg.shift_feature} {cfg.shift_delta:+g}")

        def retrain_started() -> str | None:
            monitor = self.observer.get("DriftMonitor", cfg.monitor)
            last = status(monitor).get("lastRetrain") or {}
            return last.get("trainingRun")

        stage = f"3/3 DriftMonitor: Drifted for {cfg.consecutive_windows} windows -> a retrain TrainingRun"
        result.retrain_run = self.wait(stage, deadlines.drift, retrain_started)
        self.mark("retrain created")
        drifted = self.observer.first("DriftMonitor", cfg.monitor, "Drifted", "True")
        if drifted is not None:
            result.milestones["drifted"] = drifted.time

        stage = f"3/3 TrainingRun {result.retrain_run}: gates, champion {result.v1} -> v2"
        run = self.wait(
            stage,
            deadlines.training,
            lambda: _succeeded(self.observer.get("TrainingRun", result.retrain_run), stage),
        )
        result.v2 = status(run)["modelVersion"]
        self.mark("v2 registered")

        def v2_promoted_v1_archived() -> bool:
            v2 = _promoted(self.observer.get("ModelVersion", result.v2), stage)
            v1 = self.observer.get("ModelVersion", result.v1)
            return bool(v2) and status(v1).get("stage") == "Archived"

        stage = f"3/3 {result.v2}: canary steps {'/'.join(str(w) for w, _ in cfg.canary_steps)} -> promoted"
        self.wait(stage, deadlines.rollout, v2_promoted_v1_archived)
        self.mark("v2 promoted")

        def judged_v2() -> bool:
            return any(
                w.model_version == result.v2 and w.verdict in ("NoDrift", "Drift")
                for w in self.observer.windows
            )

        stage = f"3/3 DriftMonitor {cfg.monitor}: watching {result.v2} on the shifted traffic"
        self.wait(stage, deadlines.settle, judged_v2)
        self.mark("v2 judged")

    # -- the record -----------------------------------------------------------------------------------------
    def collect(self) -> None:
        """Everything the lineage, the plot and the test read, from one last poll."""
        result = self.result
        self.tick()
        result.runs = dict(self.observer.objects["TrainingRun"])
        result.versions = dict(self.observer.objects["ModelVersion"])
        result.monitor = self.observer.get("DriftMonitor", self.config.monitor) or {}
        result.transitions = list(self.observer.transitions)
        result.windows = list(self.observer.windows)
        result.requests = self.traffic.records() if self.traffic else []
        result.registry = self.registry_entry()
        result.duration = self.clock()

    def registry_entry(self) -> dict[str, Any]:
        kube = self.stack.kube
        if kube is None:
            return {}
        try:
            config_map = kube.config_map(self.config.namespace, REGISTRY_CONFIG_MAP)
        except Exception:
            return {}
        raw = ((config_map or {}).get("data") or {}).get(f"{self.config.model}.json")
        return json.loads(raw) if raw else {}
