"""Whole checks over many windows, with server restarts and operator restarts (status and baselines reloaded)."""

from __future__ import annotations

from datetime import timedelta

from kubeloop.api import DriftMonitorSpec, DriftMonitorStatus, find_condition
from kubeloop.builders.retrain import retrain_run_name
from kubeloop.monitoring.check import CheckInputs, check, record_of, status_after, trigger_of
from kubeloop.monitoring.window import Baselines

from .conftest import T0

SPEC = DriftMonitorSpec.model_validate(
    {
        "model": "m",
        "interval": "10s",
        "minSamples": 200,
        "consecutiveWindows": 3,
        "retrain": {"clone": {"dataUri": "s3://b/new.csv"}, "cooldown": "1h"},
    }
)


class Operator:
    """The operator's side of the loop: the stored status and baselines, and its in-memory samples."""

    def __init__(self, profile, spec=SPEC):
        self.profile, self.spec = profile, spec
        self.status, self.baselines, self.samples = DriftMonitorStatus(), None, {}
        self.runs: dict[str, object] = {}  # TrainingRuns created, by name
        self.now = T0

    def restart(self):
        """Everything in memory is lost; status and baselines come back from the API server as JSON."""
        self.status = DriftMonitorStatus.model_validate_json(self.status.model_dump_json())
        if self.baselines is not None:
            self.baselines = Baselines.model_validate_json(self.baselines.model_dump_json())
        self.samples = {}

    def inputs(self, servers, *, running=None):
        found = [r for r in self.runs.values()]
        return CheckInputs(
            spec=self.spec,
            status=self.status,
            generation=1,
            created=T0 - timedelta(days=1),
            model_version="m-v1",
            profile=self.profile,
            snapshots={pod: s.snapshot() for pod, s in servers.items()},
            baselines=self.baselines,
            samples=self.samples,
            running=running,
            found=found,
            now=self.now,
        )

    def tick(self, servers, *, running=None, write_status=True):
        self.now += timedelta(seconds=10)
        inputs = self.inputs(servers, running=running)
        plan = check(inputs)
        started = None
        trigger = trigger_of(plan, "mon")
        if trigger is not None:
            name = retrain_run_name("mon", "uid", trigger.window, trigger.reason)
            started = self.runs.setdefault(name, record_of(trigger, name, self.now))  # get-or-create
        self.baselines, self.samples = plan.baselines, plan.samples
        if write_status:
            self.status = status_after(inputs, plan, started)
        return plan, started


def test_calm_traffic_never_retrains_and_one_shifted_feature_retrains_once(server, profile):
    servers = {"a": server(seed=1), "b": server(seed=2)}
    op = Operator(profile)
    plan, _ = op.tick(servers)
    assert plan.window is None and op.status.window == 0  # baselines only
    for _ in range(10):
        for s in servers.values():
            s.traffic(300)
        plan, started = op.tick(servers)
        assert plan.outcome.verdict == "NoDrift" and started is None
    assert (
        op.status.window == 10
        and op.status.sample_count == 600
        and op.status.consecutive_drifted_windows == 0
    )
    assert find_condition(op.status.conditions, "Drifted").status == "False"

    verdicts, created = [], []
    for i in range(6):
        for s in servers.values():
            s.traffic(300, shift=0.6)
        if i == 2:
            op.restart()  # between the 2nd and 3rd drifted windows
        plan, started = op.tick(servers)
        verdicts.append((plan.outcome.verdict, op.status.consecutive_drifted_windows))
        if started is not None:
            created.append(started.training_run)
    assert verdicts[:3] == [("Drift", 1), ("Drift", 2), ("Drift", 0)]  # the third starts the retrain
    assert [v for v, _ in verdicts[3:]] == ["Drift"] * 3
    assert created == [retrain_run_name("mon", "uid", 13, "Drift")]  # exactly one, then the cooldown
    assert op.status.last_retrain.training_run == created[0] and op.status.last_retrain.window == 13
    assert op.status.last_retrain.scores.keys() == {"x0"}
    assert "cooldown" in op.status.message
    drifted = find_condition(op.status.conditions, "Drifted")
    assert drifted.status == "True" and "x0" in drifted.message


def test_a_crash_before_the_status_write_does_not_start_a_second_run(server, profile):
    servers = {"a": server(seed=3)}
    op = Operator(profile, SPEC.model_copy(update={"consecutive_windows": 1}))
    op.tick(servers)
    servers["a"].traffic(600, shift=0.8)
    _, first = op.tick(servers, write_status=False)  # run created, then the operator dies
    assert first is not None
    op.restart()
    servers["a"].traffic(600, shift=0.8)
    plan, second = op.tick(servers)
    # The run is found on the cluster: the cooldown holds, and the status learns about the run.
    assert second is None and plan.decision.blocked == "Cooldown"
    assert len(op.runs) == 1 and op.status.last_retrain.training_run == first.training_run


def test_restarted_servers_and_sparse_windows(server, profile):
    servers = {"a": server(seed=4), "b": server(seed=5)}
    op = Operator(profile)
    op.tick(servers)
    for s in servers.values():
        s.traffic(300, shift=0.6)
    op.tick(servers)
    assert op.status.consecutive_drifted_windows == 1
    # Pod b's container restarts inside the window: its new server's counts are all window.
    servers["b"] = server(started_at=op.now + timedelta(seconds=2), seed=6)
    servers["a"].traffic(300, shift=0.6)
    servers["b"].traffic(300, shift=0.6)
    plan, _ = op.tick(servers)
    assert plan.outcome.sample_count == 600 and op.status.consecutive_drifted_windows == 2
    # Too little traffic: no verdict, and the run of drifted windows is neither extended nor broken.
    servers["a"].traffic(40, shift=0.6)
    plan, started = op.tick(servers)
    assert plan.outcome.verdict == "InsufficientData" and started is None
    assert op.status.verdict == "InsufficientData" and op.status.consecutive_drifted_windows == 2
    assert find_condition(op.status.conditions, "Drifted").status == "Unknown"
    assert "40 live rows" in op.status.message


def test_a_running_retrain_of_the_model_blocks_another(server, profile):
    servers = {"a": server(seed=7)}
    op = Operator(profile, SPEC.model_copy(update={"consecutive_windows": 1}))
    op.tick(servers)
    servers["a"].traffic(600, shift=0.8)
    plan, started = op.tick(servers, running="someone-elses-run")
    assert started is None and plan.decision.blocked == "RetrainRunning"
    assert "someone-elses-run" in op.status.message


def test_wasserstein_windows_come_from_the_reservoirs_and_survive_an_operator_restart(server, profile):
    spec = SPEC.model_copy(update={"method": "Wasserstein", "min_samples": 150})
    servers = {"a": server(seed=8, reservoir=300), "b": server(seed=9, reservoir=300)}
    op = Operator(profile, spec)
    for s in servers.values():
        s.traffic(2000)
    op.tick(servers)
    for s in servers.values():
        s.traffic(1000, shift=0.8)
    plan, _ = op.tick(servers)
    x0 = next(f for f in plan.outcome.features if f.name == "x0")
    assert x0.method == "Wasserstein" and x0.drifted and plan.outcome.verdict == "Drift"
    op.restart()  # the previous reservoirs are gone: this check only takes baselines again
    for s in servers.values():
        s.traffic(1000, shift=0.8)
    plan, _ = op.tick(servers)
    assert plan.window is None and op.status.window == 1
    assert op.status.consecutive_drifted_windows == 1  # kept
    for s in servers.values():
        # Full reservoirs keep about capacity * window / seen rows of a window: 300 * 3000 / 8000 each.
        s.traffic(3000, shift=0.8)
    plan, _ = op.tick(servers)
    assert next(f for f in plan.outcome.features if f.name == "x0").drifted
    assert op.status.consecutive_drifted_windows == 2


def test_ks_windows_come_from_the_counts_and_need_no_reservoir_after_a_restart(server, profile):
    spec = SPEC.model_copy(update={"method": "KS", "min_samples": 150})
    servers = {"a": server(seed=8, reservoir=300), "b": server(seed=9, reservoir=300)}
    op = Operator(profile, spec)
    for s in servers.values():
        s.traffic(2000)
    op.tick(servers)
    op.restart()  # counts are cumulative on the servers: the stored baselines are enough
    for s in servers.values():
        s.traffic(1000, shift=0.8)
    plan, _ = op.tick(servers)
    assert plan.window == 1
    x0 = next(f for f in plan.outcome.features if f.name == "x0")
    assert x0.method == "KS" and x0.drifted and plan.outcome.verdict == "Drift"
    assert plan.outcome.sample_count == 2000  # every row of the window, not the two 300-row reservoirs
