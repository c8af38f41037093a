"""Transitions, windows and the lineage text, from hand-written objects in the shape the API server returns."""

from __future__ import annotations

import json

from kubeloop_demo.lineage import lineage_lines, registry_lines
from kubeloop_demo.observe import Observer, diff, facts, window_of


def _run(succeeded: str | None, version: str | None = None) -> dict:
    conditions = [{"type": "DataValidated", "status": "True", "reason": "DataValid", "message": "150 rows"}]
    if succeeded:
        conditions.append(
            {"type": "Succeeded", "status": succeeded, "reason": "Succeeded", "message": "done"}
        )
    st = {"conditions": conditions}
    if version:
        st["modelVersion"] = version
    return {"metadata": {"name": "r", "creationTimestamp": "2026-01-01T00:00:00Z"}, "status": st}


def test_facts_and_diff_record_condition_changes():
    before = facts("TrainingRun", _run(None))
    after = facts("TrainingRun", _run("True", "iris-v1"))
    changes = diff(before, after, "TrainingRun", "r", 12.0)
    assert [(c.key, c.old, c.new) for c in changes] == [
        ("Succeeded", None, "True (Succeeded)"),
        ("modelVersion", None, "iris-v1"),
    ]
    assert changes[0].line() == "TrainingRun r: Succeeded True (Succeeded)  (done)"
    assert diff(after, after, "TrainingRun", "r", 13.0) == []


def test_model_version_facts_follow_the_rollout():
    mv = {
        "metadata": {"name": "iris-v2"},
        "spec": {"stage": "Production"},
        "status": {
            "stage": "Staging",
            "rollout": {
                "phase": "Progressing",
                "step": 1,
                "weight": 50,
                "analyses": [{"step": 0, "weight": 33, "verdict": "Pass", "message": "ok"}],
            },
        },
    }
    f = facts("ModelVersion", mv)
    assert f["rollout"][0] == "Progressing step 2 weight 50%"
    assert f["analysis 1"][0] == "step 1 Pass"
    assert f["desired"][0] == "Production"


def _monitor(window: int, verdict: str, drifted: str) -> dict:
    return {
        "metadata": {"name": "iris", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "status": {
            "modelVersion": "iris-v1",
            "window": window,
            "verdict": verdict,
            "sampleCount": 640,
            "conditions": [{"type": "Drifted", "status": drifted, "reason": "x", "message": "m"}],
            "features": [
                {
                    "name": "petal_width",
                    "kind": "numeric",
                    "method": "ChiSquared",
                    "score": 300.0,
                    "pValue": 1e-60,
                    "threshold": 0.0025,
                    "drifted": verdict == "Drift",
                },
            ],
            "performance": {"metric": "accuracy", "value": 0.75, "labels": 600, "breached": True},
        },
    }


def test_window_of_reads_the_judged_window():
    window = window_of(_monitor(3, "Drift", "True"), 42.0)
    assert window.index == 3 and window.verdict == "Drift" and window.drifted == "True"
    assert window.features["petal_width"].drifted and window.features["petal_width"].p_value == 1e-60
    assert window.accuracy == 0.75
    assert window_of({"status": {}}, 1.0) is None


class _Kube:
    def __init__(self):
        self.monitor = _monitor(1, "NoDrift", "False")

    def list(self, kind, namespace):
        return [self.monitor] if kind == "DriftMonitor" else []


def test_observer_records_each_window_once():
    kube = _Kube()
    clock = iter([1.0, 2.0, 3.0])
    observer = Observer(kube, "ns", lambda: next(clock))
    observer.refresh()
    observer.refresh()  # the same window again: no new window, no transition
    kube.monitor = _monitor(2, "Drift", "True")
    changes = observer.refresh()
    assert [w.index for w in observer.windows] == [1, 2]
    assert {c.key for c in changes} == {"window", "Drifted"}
    assert observer.first("DriftMonitor", "iris", "Drifted", "True").time == 3.0


def test_lineage_links_window_run_version_and_rollout():
    trigger = {
        "reason": "Drift",
        "monitor": "iris",
        "window": 4,
        "scores": {"petal_width": 296.0},
        "message": "2 drifted windows",
    }
    runs = {
        "iris-retrain-w4-abc": {
            "metadata": {
                "name": "iris-retrain-w4-abc",
                "annotations": {"kubeloop.dev/trigger": json.dumps(trigger)},
            },
            "status": {
                "jobName": "iris-retrain-w4-abc-train",
                "dataRows": 150,
                "championVersion": "iris-v1",
                "championMetrics": {"accuracy": 0.74},
            },
        }
    }
    versions = {
        "iris-v2": {
            "metadata": {"name": "iris-v2"},
            "spec": {
                "version": 2,
                "lineage": {
                    "trainingRun": "iris-retrain-w4-abc",
                    "dataUri": "s3://b/fresh.csv",
                    "dataHash": "sha256:" + "a" * 64,
                    "trigger": trigger,
                },
                "metrics": {"accuracy": 0.97},
                "artifact": {"uri": "s3://b/art", "digest": "sha256:" + "b" * 64},
            },
            "status": {
                "stage": "Production",
                "rollout": {
                    "phase": "Promoted",
                    "stableVersion": "iris-v1",
                    "analyses": [
                        {
                            "step": 0,
                            "weight": 33,
                            "verdict": "Pass",
                            "measurements": [{"metric": "onlineAccuracy", "value": 0.98, "passed": True}],
                        }
                    ],
                },
                "history": [{"from": "None", "to": "Production", "by": "rollout", "reason": "CanaryPassed"}],
            },
        }
    }
    monitor = {"status": {"lastRetrain": {"trainingRun": "iris-retrain-w4-abc", "window": 4}}}
    text = "\n".join(lineage_lines(versions, runs, monitor, {}))
    assert "DriftMonitor iris window #4: Drift (petal_width 296)" in text
    assert "the monitor's status records the same retrain: iris-retrain-w4-abc" in text
    assert "champion iris-v1 scored 0.74 on the same split" in text
    assert "Promoted next to iris-v1" in text
    assert "step 1 at 33%: Pass  onlineAccuracy 0.98 (ok)" in text
    assert text.endswith("registry index: not found")


def test_registry_lines():
    entry = {
        "model": "iris",
        "production": {"name": "iris-v2"},
        "versions": [{"name": "iris-v2", "stage": "Production"}, {"name": "iris-v1", "stage": "Archived"}],
        "history": [
            {
                "time": "t1",
                "name": "iris-v1",
                "from": "None",
                "to": "Production",
                "reason": "FirstVersion",
                "by": "op",
            }
        ],
    }
    lines = registry_lines(entry)
    assert (
        lines[0] == "registry index (iris): production iris-v2; versions iris-v2 Production, iris-v1 Archived"
    )
    assert lines[1] == "  t1  iris-v1: None -> Production (FirstVersion, by op)"
