"""The canary rollout, pure: weights to replicas, scraped metrics to step windows, windows to verdicts, and
the state machine that turns the stored rollout status plus observations into the next action.

Nothing here talks to the API server or the network; `kubeloop.services.rollout` does, and calls this.
"""

from kubeloop.rollout.analysis import StepVerdict, analyse, histogram_quantile, prediction_shift
from kubeloop.rollout.machine import Decision, Observation, Scale, StableVersion, Workload, decide, start
from kubeloop.rollout.metrics import ServerCounters, parse_server_metrics
from kubeloop.rollout.weights import Split, split
from kubeloop.rollout.window import Baseline, Traffic, accumulate_stable, traffic

__all__ = [
    "Baseline",
    "Decision",
    "Observation",
    "Scale",
    "ServerCounters",
    "Split",
    "StableVersion",
    "StepVerdict",
    "Traffic",
    "Workload",
    "accumulate_stable",
    "analyse",
    "decide",
    "histogram_quantile",
    "parse_server_metrics",
    "prediction_shift",
    "split",
    "start",
    "traffic",
]
