"""The lineage of the loop, read back from the cluster: which drift window caused which TrainingRun, which
ModelVersion it produced, and how that version's rollout went. Pure: objects in, lines of text out.

Every fact comes from what the operator recorded (the ModelVersion's `spec.lineage`, the TrainingRun's status
and trigger annotation, the rollout's analyses, the stage history, the DriftMonitor's retrain record), not
from what the demo did, so the lines show what a user would find with `kubectl get -o yaml`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kubeloop_demo.observe import status

TRIGGER_ANNOTATION = "kubeloop.dev/trigger"


def _short_hash(value: str | None) -> str:
    if not value:
        return "?"
    algorithm, _, digest = value.partition(":")
    return f"{algorithm}:{digest[:12]}" if digest else value[:19]


def _num(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}g}" if isinstance(value, int | float) else "?"


def _scores(scores: Mapping[str, float] | None) -> str:
    return ", ".join(f"{name} {_num(score)}" for name, score in (scores or {}).items()) or "no scores"


def trigger_lines(trigger: Mapping[str, Any], monitor: Mapping[str, Any] | None) -> list[str]:
    reason = trigger.get("reason") or "Manual"
    if reason == "Manual":
        return ["  caused by    a user (kubectl apply of the TrainingRun)"]
    window = trigger.get("window")
    lines = [
        f"  caused by    DriftMonitor {trigger.get('monitor', '?')} window #{window}: {reason} "
        f"({_scores(trigger.get('scores'))})"
    ]
    if trigger.get("message"):
        lines.append(f"               {trigger['message']}")
    last = status(dict(monitor or {})).get("lastRetrain") or {}
    if last.get("window") == window and last.get("trainingRun"):
        lines.append(f"               the monitor's status records the same retrain: {last['trainingRun']}")
    return lines


def analysis_line(analysis: Mapping[str, Any]) -> str:
    values = []
    for m in analysis.get("measurements") or []:
        mark = {True: "ok", False: "FAIL", None: "n/a"}[m.get("passed")]
        values.append(f"{m.get('metric')} {_num(m.get('value'))} ({mark})")
    step = int(analysis.get("step", 0)) + 1
    return f"    step {step} at {analysis.get('weight')}%: {analysis.get('verdict')}  " + ", ".join(values)


def rollout_lines(version: Mapping[str, Any]) -> list[str]:
    rollout = status(dict(version)).get("rollout") or {}
    if not rollout:
        return ["  rollout      none"]
    stable = rollout.get("stableVersion")
    head = f"  rollout      {rollout.get('phase')}"
    head += f" next to {stable}" if stable else " (first production version: no stable to compare with)"
    if rollout.get("completionTime"):
        head += f", done {rollout['completionTime']}"
    return [head, *(analysis_line(a) for a in rollout.get("analyses") or [])]


def history_line(version: Mapping[str, Any]) -> str:
    changes = status(dict(version)).get("history") or []
    steps = [f"{c.get('to')} ({c.get('reason')}, by {c.get('by')})" for c in changes]
    return "  stages       " + (" -> ".join(steps) if steps else "no stage changes recorded")


def version_lines(
    version: Mapping[str, Any], runs: Mapping[str, Mapping[str, Any]], monitor: Mapping[str, Any] | None
) -> list[str]:
    spec = version.get("spec") or {}
    lineage = spec.get("lineage") or {}
    name = version["metadata"]["name"]
    run_name = lineage.get("trainingRun") or "?"
    run = runs.get(run_name) or {}
    run_status = status(dict(run))
    lines = [f"{name} (version {spec.get('version')}): now {status(dict(version)).get('stage', '?')}"]
    lines += trigger_lines(lineage.get("trigger") or {}, monitor)
    lines.append(f"  trained by   TrainingRun {run_name}, Job {run_status.get('jobName', '?')}")
    lines.append(
        f"  data         {lineage.get('dataUri', '?')}  {_short_hash(lineage.get('dataHash'))}"
        f"  ({run_status.get('dataRows', '?')} rows)"
    )
    metrics = spec.get("metrics") or {}
    champion = run_status.get("championMetrics") or {}
    line = f"  metrics      accuracy {_num(metrics.get('accuracy'))} on the held-out split"
    if champion and run_status.get("championVersion"):
        line += f"; champion {run_status['championVersion']} scored {_num(champion.get('accuracy'))} on the same split"
    lines.append(line)
    lines.append(
        f"  artifact     {spec.get('artifact', {}).get('uri', '?')}  {_short_hash(spec.get('artifact', {}).get('digest'))}"
    )
    lines += rollout_lines(version)
    lines.append(history_line(version))
    return lines


def registry_lines(entry: Mapping[str, Any]) -> list[str]:
    if not entry:
        return ["registry index: not found"]
    production = (entry.get("production") or {}).get("name", "none")
    versions = ", ".join(f"{v.get('name')} {v.get('stage')}" for v in entry.get("versions") or [])
    lines = [f"registry index ({entry.get('model')}): production {production}; versions {versions}"]
    for change in entry.get("history") or []:
        lines.append(
            f"  {change.get('time')}  {change.get('name')}: {change.get('from')} -> {change.get('to')} "
            f"({change.get('reason')}, by {change.get('by')})"
        )
    return lines


def lineage_lines(
    versions: Mapping[str, Mapping[str, Any]],
    runs: Mapping[str, Mapping[str, Any]],
    monitor: Mapping[str, Any] | None,
    registry: Mapping[str, Any],
) -> list[str]:
    lines: list[str] = []
    for version in sorted(versions.values(), key=lambda v: int(v["spec"]["version"])):
        lines += version_lines(version, runs, monitor)
        lines.append("")
    return lines + registry_lines(registry)


def trigger_annotation(run: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = ((run.get("metadata") or {}).get("annotations") or {}).get(TRIGGER_ANNOTATION)
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
