"""The live board, rendered to plain text from objects in the API server's shape."""

from __future__ import annotations

import io
import json

from kubeloop_demo.observe import Observer, Transition
from kubeloop_demo.story import Board
from kubeloop_demo.traffic import TrafficSummary
from kubeloop_demo.view import PlainView, board_renderable
from rich.console import Console

STEPS = ["DataValidated", "Trained", "ModelValidated", "Registered", "Succeeded"]


def _observer() -> Observer:
    observer = Observer(kube=None, namespace="ns", clock=lambda: 0.0)
    trigger = json.dumps({"reason": "Drift", "window": 4})
    observer.objects["TrainingRun"] = {
        "iris-retrain-w4-abc": {
            "metadata": {"name": "iris-retrain-w4-abc", "annotations": {"kubeloop.dev/trigger": trigger}},
            "status": {
                "conditions": [
                    {"type": "DataValidated", "status": "True"},
                    {"type": "Trained", "status": "False"},
                ]
            },
        }
    }
    measurements = [
        {"metric": "requests", "value": 31, "passed": True},
        {"metric": "onlineAccuracy", "value": 0.42, "passed": False},
    ]
    observer.objects["ModelVersion"] = {
        "iris-v2": {
            "metadata": {"name": "iris-v2"},
            "spec": {"stage": "Production"},
            "status": {
                "stage": "None",
                "readyReplicas": 1,
                "rollout": {
                    "phase": "Progressing",
                    "step": 0,
                    "weight": 33,
                    "analyses": [{"step": 0, "verdict": "Fail", "measurements": measurements}],
                },
                "conditions": [{"type": "RolledBack", "status": "True"}],
            },
        }
    }
    observer.objects["DriftMonitor"] = {
        "iris": {
            "metadata": {"name": "iris"},
            "status": {
                "modelVersion": "iris-v1",
                "window": 7,
                "sampleCount": 648,
                "verdict": "Drift",
                "performance": {"value": 0.76},
                "features": [
                    {"name": "petal_width", "pValue": 1e-60, "drifted": True},
                    {"name": "sepal_width", "pValue": 0.3, "drifted": False},
                ],
            },
        }
    }
    return observer


def test_board_shows_the_three_kinds_and_the_traffic():
    summary = TrafficSummary(1500, 2, 8.0, 0.83, {"1": 0.5, "2": 0.5}, 3, "iris, petal_width +0.6")
    board = Board(201.0, "3/3 rollout", 27.0, 300.0, _observer(), summary, [])
    console = Console(width=160, file=io.StringIO(), color_system=None)
    console.print(board_renderable(board))
    text = console.file.getvalue()
    assert "3/3 rollout  (27s of at most 300s)" in text
    assert "iris-retrain-w4-abc  Drift w4  ✔     ✘" in text
    assert "None (rolled back)  Progressing step 1 weight 33%" in text
    assert "step 1: Fail req 31 acc 0.42" in text
    assert "#7 (648 rows)  Drift" in text and "petal_width p=1e-60" in text and "0.76" in text
    assert "1 not drifted, lowest p=0.3" in text
    assert "online accuracy 0.83 (last 10 s; v1 50%, v2 50%), 1500 requests, 2 errors" in text


def test_plain_view_prints_timestamped_lines():
    out = io.StringIO()
    view = PlainView(out=out, t0=0.0)
    view.stage("1/3 training", 300)
    view.transition(Transition(5.0, "TrainingRun", "r", "Succeeded", None, "True (Succeeded)", "done"))
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("== 1/3 training (deadline 300s)")
    assert lines[1].endswith("TrainingRun r: Succeeded True (Succeeded)  (done)")
