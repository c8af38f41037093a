"""Watching the story happen: snapshots of the three kinds, the transitions between them, and the monitor's
windows, as the demo and the end-to-end test both read them.

`facts()` reduces an object to the few values a reader follows (each condition, a version's stage and
rollout step, a monitor's last window); `Observer.refresh()` polls the namespace and records every fact that
changed as a `Transition`. Polling every second can miss a state that lasts less than that; the test checks
those from the cumulative status (rollout analyses, stage history) instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kubeloop_demo.kube import Kube

KINDS = ("TrainingRun", "ModelVersion", "DriftMonitor")
RUN_CONDITIONS = ("DataValidated", "Trained", "ModelValidated", "Registered", "Succeeded")
Fact = tuple[str, str]  # (value, message)


@dataclass(frozen=True)
class Transition:
    time: float  # seconds since the demo started
    kind: str
    name: str
    key: str  # a condition type, "stage", "rollout", "window", ...
    old: str | None
    new: str
    message: str = ""

    def line(self) -> str:
        was = f"{self.old} -> " if self.old is not None else ""
        text = f"{self.kind} {self.name}: {self.key} {was}{self.new}"
        return f"{text}  ({self.message})" if self.message else text


@dataclass(frozen=True)
class FeatureScore:
    score: float | None
    p_value: float | None
    threshold: float | None
    drifted: bool


@dataclass(frozen=True)
class Window:
    """One window the DriftMonitor judged, as its status reported it."""

    time: float
    index: int
    model_version: str | None
    verdict: str | None
    samples: int
    drifted: str | None  # the Drifted condition's status
    features: dict[str, FeatureScore] = field(default_factory=dict)
    accuracy: float | None = None  # online accuracy from feedback labels, when watched


def status(obj: dict[str, Any] | None) -> dict[str, Any]:
    return (obj or {}).get("status") or {}


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    return next((c for c in status(obj).get("conditions") or [] if c.get("type") == type_), None)


def _condition_fact(obj: dict[str, Any], type_: str) -> Fact | None:
    c = condition(obj, type_)
    if c is None:
        return None
    return f"{c.get('status')} ({c.get('reason', '')})", c.get("message", "")


def rollout_label(rollout: dict[str, Any] | None) -> str | None:
    if not rollout or not rollout.get("phase"):
        return None
    phase = rollout["phase"]
    if phase in ("Progressing", "Paused"):
        return f"{phase} step {int(rollout.get('step') or 0) + 1} weight {rollout.get('weight') or 0}%"
    return phase


def facts(kind: str, obj: dict[str, Any]) -> dict[str, Fact]:
    """What a reader follows on one object: key -> (value, message)."""
    st = status(obj)
    out: dict[str, Fact] = {}
    if kind == "TrainingRun":
        for type_ in RUN_CONDITIONS:
            fact = _condition_fact(obj, type_)
            if fact:
                out[type_] = fact
        if st.get("modelVersion"):
            out["modelVersion"] = (st["modelVersion"], "")
    elif kind == "ModelVersion":
        spec = obj.get("spec") or {}
        out["desired"] = (spec.get("stage") or "None", "")
        if st.get("stage"):
            out["stage"] = (st["stage"], st.get("message") or "")
        label = rollout_label(st.get("rollout"))
        if label:
            out["rollout"] = (label, "")
        for i, analysis in enumerate((st.get("rollout") or {}).get("analyses") or []):
            out[f"analysis {i + 1}"] = (
                f"step {int(analysis.get('step', 0)) + 1} {analysis.get('verdict')}",
                analysis.get("message") or "",
            )
        for type_ in ("Ready", "RolledBack"):
            fact = _condition_fact(obj, type_)
            if fact:
                out[type_] = fact
    elif kind == "DriftMonitor":
        if st.get("modelVersion"):
            out["modelVersion"] = (st["modelVersion"], "")
        if st.get("window"):
            out["window"] = (
                f"#{st['window']} {st.get('verdict') or '?'} ({st.get('sampleCount', 0)} rows)",
                st.get("message") or "",
            )
        fact = _condition_fact(obj, "Drifted")
        if fact:
            out["Drifted"] = fact
        last = st.get("lastRetrain") or {}
        if last.get("trainingRun"):
            out["lastRetrain"] = (last["trainingRun"], last.get("message") or "")
    return out


def diff(
    before: dict[str, Fact], after: dict[str, Fact], kind: str, name: str, now: float
) -> list[Transition]:
    return [
        Transition(now, kind, name, key, before[key][0] if key in before else None, value, message)
        for key, (value, message) in after.items()
        if key not in before or before[key][0] != value
    ]


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def window_of(monitor: dict[str, Any], now: float) -> Window | None:
    st = status(monitor)
    if not st.get("window"):
        return None
    drifted = condition(monitor, "Drifted")
    performance = st.get("performance") or {}
    return Window(
        time=now,
        index=int(st["window"]),
        model_version=st.get("modelVersion"),
        verdict=st.get("verdict"),
        samples=int(st.get("sampleCount") or 0),
        drifted=drifted.get("status") if drifted else None,
        features={
            f["name"]: FeatureScore(
                _finite(f.get("score")),
                _finite(f.get("pValue")),
                _finite(f.get("threshold")),
                bool(f.get("drifted")),
            )
            for f in st.get("features") or []
        },
        accuracy=_finite(performance.get("value")),
    )


class Observer:
    """Polls the demo's namespace and keeps the latest objects, every transition, and every window."""

    def __init__(self, kube: Kube, namespace: str, clock: Callable[[], float]):
        self.kube = kube
        self.namespace = namespace
        self.clock = clock
        self.objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.transitions: list[Transition] = []
        self.windows: list[Window] = []
        self._facts: dict[tuple[str, str], dict[str, Fact]] = {}
        self.error = ""

    def refresh(self) -> list[Transition]:
        """One poll; returns the transitions it saw. An API error is remembered, not raised."""
        now = self.clock()
        new: list[Transition] = []
        try:
            listed = {kind: self.kube.list(kind, self.namespace) for kind in KINDS}
        except Exception as e:  # one slow poll must not end the demo; the stage deadline will
            self.error = f"{type(e).__name__}: {e}"
            return new
        self.error = ""
        for kind, items in listed.items():
            self.objects[kind] = {o["metadata"]["name"]: o for o in items}
            for name, obj in self.objects[kind].items():
                after = facts(kind, obj)
                new += diff(self._facts.get((kind, name), {}), after, kind, name, now)
                self._facts[(kind, name)] = after
                if kind == "DriftMonitor":
                    window = window_of(obj, now)
                    if window and (not self.windows or self.windows[-1].index != window.index):
                        self.windows.append(window)
        self.transitions += new
        return new

    # -- reading -------------------------------------------------------------------------------------------
    def get(self, kind: str, name: str | None) -> dict[str, Any] | None:
        return self.objects[kind].get(name) if name else None

    def items(self, kind: str) -> Iterable[dict[str, Any]]:
        return self.objects[kind].values()

    def of(self, kind: str, name: str) -> list[Transition]:
        return [t for t in self.transitions if t.kind == kind and t.name == name]

    def first(self, kind: str, name: str, key: str, value_prefix: str) -> Transition | None:
        return next((t for t in self.of(kind, name) if t.key == key and t.new.startswith(value_prefix)), None)
