"""The closed loop end to end, on a local cluster of its own: the demo's story (kubeloop_demo.story), run once
for the module, then every transition it recorded and the final state of the cluster asserted.

The operator is installed with `helm install` of the chart and its built image; the trainer and the servers are
containers of the trainer image on the real node; traffic goes to the model's Service, and kube-proxy splits it. KUBELOOP_E2E_CLUSTER names the cluster
(default `e2e`); KUBELOOP_KEEP_CLUSTER=1 leaves it running afterwards.
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
from kubeloop_cluster.cluster import LocalCluster
from kubeloop_demo.config import DemoConfig
from kubeloop_demo.lineage import lineage_lines
from kubeloop_demo.observe import RUN_CONDITIONS, condition, status
from kubeloop_demo.stack import Stack
from kubeloop_demo.story import StageFailed, Story, StoryResult
from kubeloop_demo.view import PlainView

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

MONITOR_LABEL = "kubeloop.dev/drift-monitor"
TRIGGER_LABEL = "kubeloop.dev/trigger"


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Stack:
    """The demo's stack, up for the module: its cluster, the operator from `helm install`, its namespace."""
    name = os.environ.get("KUBELOOP_E2E_CLUSTER", "e2e")
    output = tmp_path_factory.mktemp("closed-loop")
    config = replace(DemoConfig(), cluster=name, namespace="kubeloop-e2e", output=output)
    if LocalCluster(name).is_up():  # never take over (or tear down) a cluster another session may be using
        pytest.fail(
            f"cluster {name!r} is already running: another session uses it, or a killed one left it "
            f"(`kubeloop-cluster down --name {name}`); KUBELOOP_E2E_CLUSTER picks another name",
            pytrace=False,
        )
    stack = Stack(config, say=print, keep=bool(os.environ.get("KUBELOOP_KEEP_CLUSTER")))
    try:
        yield stack.up()
    finally:
        stack.down()


@pytest.fixture(scope="module")
def loop(stack) -> tuple[DemoConfig, StoryResult]:
    story = Story(stack, PlainView())
    try:
        story.run()
    except StageFailed as e:
        tail = stack.operator.tail(60) if stack.operator else ""
        pytest.fail(f"{e}\n----- operator log (tail) -----\n{tail}", pytrace=False)
    print(
        "\n".join(
            lineage_lines(
                story.result.versions, story.result.runs, story.result.monitor, story.result.registry
            )
        )
    )
    return stack.config, story.result


def _true(obj: dict, type_: str) -> dict:
    c = condition(obj, type_)
    assert c is not None and c["status"] == "True", f"{obj['metadata']['name']}: {type_} is {c}"
    return c


def _first_true(result: StoryResult, kind: str, name: str, key: str) -> float:
    times = [
        t.time
        for t in result.transitions
        if (t.kind, t.name, t.key) == (kind, name, key) and t.new.startswith("True")
    ]
    assert times, f"{kind} {name}: {key} never seen True"
    return times[0]


def _trigger(run: dict) -> dict:
    return json.loads(run["metadata"]["annotations"][TRIGGER_LABEL])


# -- chapter 1: TrainingRun -> gates -> v1 -> promoted -------------------------------------------------------
def test_initial_run_passes_every_gate_in_order(loop):
    _config, result = loop
    run = result.runs[result.initial_run]
    for type_ in RUN_CONDITIONS:
        _true(run, type_)
    seen = [_first_true(result, "TrainingRun", result.initial_run, t) for t in RUN_CONDITIONS]
    assert seen == sorted(seen), (
        f"conditions became True out of order: {dict(zip(RUN_CONDITIONS, seen, strict=True))}"
    )
    st = status(run)
    assert st["modelVersion"] == result.v1 and st["version"] == 1
    assert st["candidateMetrics"]["accuracy"] >= 0.85
    assert st["dataRows"] == 150 and st["dataHash"].startswith("sha256:")
    assert all(g["passed"] for g in st["gates"]) and {g["gate"] for g in st["gates"]} >= {"Data", "Threshold"}


def test_v1_records_its_lineage_and_was_promoted_then_archived(loop):
    config, result = loop
    v1 = result.versions[result.v1]
    spec = v1["spec"]
    assert spec["version"] == 1 and spec["model"] == config.model
    assert spec["lineage"]["trainingRun"] == result.initial_run
    assert spec["lineage"]["dataUri"] == result.data["initial"]
    assert spec["lineage"]["trigger"].get("reason", "Manual") == "Manual"
    assert spec["metrics"]["accuracy"] == pytest.approx(
        status(result.runs[result.initial_run])["candidateMetrics"]["accuracy"]
    )
    stages = [
        t.new for t in result.transitions if (t.kind, t.name, t.key) == ("ModelVersion", result.v1, "stage")
    ]
    assert stages == ["Production", "Archived"], stages
    history = [(h["from"], h["to"]) for h in status(v1)["history"]]
    assert history == [("None", "Production"), ("Production", "Archived")], history
    assert status(v1)["history"][-1]["by"].endswith(result.v2)


# -- chapter 2: live traffic, no false alarm ----------------------------------------------------------------
def test_traffic_from_the_training_distribution_raises_no_alarm(loop):
    config, result = loop
    baseline = result.baseline_windows
    assert len(baseline) >= config.baseline_windows
    assert all(w.samples >= config.min_samples for w in baseline), [w.samples for w in baseline]
    retrains = [t for t in result.transitions if t.kind == "DriftMonitor" and t.key == "lastRetrain"]
    assert retrains and all(t.time > result.milestones["shift started"] for t in retrains)
    before_shift = [r for r in result.requests if r.time < result.milestones["shift started"] and r.ok]
    accuracy = sum(r.correct for r in before_shift) / sum(r.rows for r in before_shift)
    assert accuracy >= 0.9, accuracy


# -- chapter 3: shift -> Drifted -> retrain -> v2 -> canary -> promoted -------------------------------------
def test_drifted_names_the_shifted_feature(loop):
    config, result = loop
    drifted = [
        t
        for t in result.transitions
        if t.kind == "DriftMonitor" and t.key == "Drifted" and t.new.startswith("True")
    ]
    assert drifted and drifted[0].time > result.milestones["shift started"]
    assert config.shift_feature in drifted[0].message
    trigger_window = status(result.monitor)["lastRetrain"]["window"]
    causing = [
        w for w in result.windows if trigger_window - config.consecutive_windows < w.index <= trigger_window
    ]
    assert [w.verdict for w in causing] == ["Drift"] * config.consecutive_windows, causing
    for window in causing:
        assert window.features[config.shift_feature].drifted
        others = [n for n, f in window.features.items() if f.drifted and n != config.shift_feature]
        assert not others, f"window {window.index}: unshifted features flagged {others}"


def test_one_retrain_with_its_trigger_recorded(loop):
    config, result = loop
    retrains = [
        r
        for r in result.runs.values()
        if (r["metadata"].get("labels") or {}).get(MONITOR_LABEL) == config.monitor
    ]
    assert [r["metadata"]["name"] for r in retrains] == [result.retrain_run], "exactly one retrain (cooldown)"
    run = retrains[0]
    labels = run["metadata"]["labels"]
    assert labels[TRIGGER_LABEL] == "Drift" and labels["kubeloop.dev/model"] == config.model
    trigger = _trigger(run)
    assert trigger["reason"] == "Drift" and trigger["monitor"] == config.monitor
    assert set(trigger["scores"]) == {config.shift_feature}
    last = status(result.monitor)["lastRetrain"]
    assert last["trainingRun"] == result.retrain_run and last["window"] == trigger["window"]
    assert last["reason"] == "Drift"
    # a clone of v1's run onto the fresh data
    initial = result.runs[result.initial_run]["spec"]
    assert run["spec"]["data"]["uri"] == result.data["fresh"]
    assert (
        run["spec"]["training"] == initial["training"] and run["spec"]["validation"] == initial["validation"]
    )


def test_retrain_beats_the_champion_and_registers_v2(loop):
    _config, result = loop
    run = result.runs[result.retrain_run]
    for type_ in RUN_CONDITIONS:
        _true(run, type_)
    st = status(run)
    assert st["championVersion"] == result.v1
    assert st["candidateMetrics"]["accuracy"] > st["championMetrics"]["accuracy"]
    assert any(g["gate"] == "Champion" and g["passed"] for g in st["gates"])
    assert st["modelVersion"] == result.v2 and st["version"] == 2


def test_v2_lineage_records_the_trigger(loop):
    config, result = loop
    lineage = result.versions[result.v2]["spec"]["lineage"]
    trigger = _trigger(result.runs[result.retrain_run])
    assert lineage["trainingRun"] == result.retrain_run
    assert lineage["dataUri"] == result.data["fresh"]
    assert lineage["trigger"]["reason"] == "Drift"
    assert lineage["trigger"]["monitor"] == config.monitor
    assert lineage["trigger"]["window"] == trigger["window"]
    assert set(lineage["trigger"]["scores"]) == {config.shift_feature}


def test_v2_walks_every_canary_step_and_is_promoted(loop):
    config, result = loop
    v2 = result.versions[result.v2]
    rollout = status(v2)["rollout"]
    assert rollout["phase"] == "Promoted" and rollout["stableVersion"] == result.v1
    analyses = rollout["analyses"]
    assert [a["step"] for a in analyses] == list(range(len(config.canary_steps)))
    assert [a["verdict"] for a in analyses] == ["Pass"] * len(config.canary_steps)
    weights = [a["weight"] for a in analyses]
    assert weights == sorted(weights) and weights[-1] == 100
    for analysis in analyses:
        measured = {m["metric"]: m for m in analysis["measurements"]}
        assert measured["requests"]["value"] >= config.canary_min_requests
        assert measured["onlineAccuracy"]["value"] >= config.canary_min_online_accuracy
        assert all(m["passed"] for m in measured.values()), analysis
    seen = [
        t.new for t in result.transitions if (t.kind, t.name, t.key) == ("ModelVersion", result.v2, "rollout")
    ]
    steps = [s.split(" weight")[0] for s in seen if s.startswith("Progressing")]
    assert list(dict.fromkeys(steps)) == [
        f"Progressing step {i + 1}" for i in range(len(config.canary_steps))
    ]
    assert seen[-1] == "Promoted"
    assert condition(v2, "RolledBack")["status"] == "False"
    assert [(h["from"], h["to"]) for h in status(v2)["history"]] == [("None", "Production")]


def test_the_new_version_fixes_online_accuracy(loop):
    _config, result = loop
    shift = result.milestones["shift started"]

    def accuracy(version: str, after: float) -> float:
        rows = [r for r in result.requests if r.ok and r.version == version and r.time > after]
        return sum(r.correct for r in rows) / sum(r.rows for r in rows)

    v1_drifted = accuracy("1", shift)
    v2 = accuracy("2", shift)
    assert v1_drifted < 0.9 and v2 >= 0.9, (v1_drifted, v2)
    failed = [r for r in result.requests if not r.ok]
    assert len(failed) <= 0.01 * len(result.requests), failed[:5]
    assert not [r for r in failed if "HTTP 5" in r.error], "server errors during the loop"


# -- the end state ------------------------------------------------------------------------------------------
def test_final_registry_index(loop):
    _config, result = loop
    entry = result.registry
    assert entry["production"]["name"] == result.v2
    assert entry["latest"] == 2
    stages = {v["name"]: v["stage"] for v in entry["versions"]}
    assert stages == {result.v1: "Archived", result.v2: "Production"}
    history = [(h["name"], h["from"], h["to"]) for h in entry["history"]]
    assert history[0] == (result.v1, "None", "Production")
    assert set(history[1:]) == {(result.v1, "Production", "Archived"), (result.v2, "None", "Production")}


def test_monitor_watches_v2_afterwards(loop):
    _config, result = loop
    assert status(result.monitor)["modelVersion"] == result.v2
    judged = [w for w in result.windows if w.model_version == result.v2 and w.verdict in ("NoDrift", "Drift")]
    assert judged, "no window of v2 judged"
    assert len([t for t in result.transitions if t.kind == "DriftMonitor" and t.key == "lastRetrain"]) == 1


def test_outputs_written(loop):
    config, result = loop
    from kubeloop_demo.cli import write_outputs

    plot, lineage, lines = write_outputs(result, config)
    assert plot.stat().st_size > 10_000 and Path(lineage).read_text().startswith(f"{result.v1} (version 1)")
    assert any(f"window #{_trigger(result.runs[result.retrain_run])['window']}" in line for line in lines)


def test_everything_ran_as_users_run_it(loop, stack):
    """The operator came from `helm install` with its built image, every pod is a containerd container, and
    `kubectl logs` of the first training pod prints the trainer's log."""
    config, result = loop
    cluster = stack.cluster
    operator = json.loads(
        cluster.kubectl("get", "deployment", "kubeloop", "-n", "kubeloop-system", "-o", "json").stdout
    )
    assert operator["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert operator["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/kubeloop/operator:0.1.0"
    # the operator's health and metrics ports answer `kubectl port-forward` (it dials localhost in the pod)
    for port, path in ((8080, "/healthz"), (9090, "/metrics")):
        with (
            cluster.port_forward("kubeloop-system", "deployment/kubeloop", port) as local,
            urllib.request.urlopen(f"http://127.0.0.1:{local}{path}", timeout=10) as response,
        ):
            assert response.status == 200, path
    ids = cluster.kubectl("get", "pods", "-A", "-o", "jsonpath={..containerID}").stdout.split()
    assert ids and all(i.startswith("containerd://") for i in ids), ids
    first_run = sorted(result.runs)[0]
    (pod,) = json.loads(
        cluster.kubectl(
            "get",
            "pods",
            "-n",
            config.namespace,
            "-l",
            f"kubeloop.dev/training-run={first_run}",
            "-o",
            "json",
        ).stdout
    )["items"]
    log = cluster.kubectl("logs", "-n", config.namespace, pod["metadata"]["name"]).stdout
    assert "accuracy" in log, log[-2000:]
