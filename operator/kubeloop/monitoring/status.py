"""The DriftMonitor's status after a check: small pure functions from the old status to the new one.

Drifted reads the last judged window: True (DriftDetected, the message names the strongest drifted
features), False (NoDrift), or Unknown (InsufficientData, or Baseline before the first window closed).
Ready follows kstatus: Current while windows are being judged, InProgress while there is nothing to watch
yet (no production version, no reachable server), Failed (Stalled) when the spec cannot work.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from kubeloop.api import DriftMonitorStatus, PerformanceObservation, RetrainRecord
from kubeloop.api import status as conditions
from kubeloop.api.condition import set_condition
from kubeloop.drift import Verdict
from kubeloop.monitoring.evaluation import WindowOutcome
from kubeloop.monitoring.policy import RetrainDecision

__all__ = ["baseline_status", "judged_status", "unobservable_status"]


def _drifted(outcome: WindowOutcome, *, generation: int | None, now: datetime):
    if outcome.verdict == Verdict.DRIFT:
        return conditions.drifted(True, outcome.message, generation=generation, now=now)
    if outcome.verdict == Verdict.NO_DRIFT:
        return conditions.drifted(False, outcome.message, generation=generation, now=now)
    return conditions.drifted(None, outcome.message, generation=generation, now=now)


def _current(before: DriftMonitorStatus, model_version: str) -> DriftMonitorStatus:
    """The status to build on: what spans windows is dropped when the watched version changed."""
    if before.model_version in (None, model_version):
        return before
    return before.model_copy(
        update={"consecutive_drifted_windows": 0, "features": [], "verdict": None, "drift_share": None}
    )


def baseline_status(
    before: DriftMonitorStatus,
    *,
    model_version: str,
    pods: int,
    generation: int | None,
    now: datetime,
) -> DriftMonitorStatus:
    """Baselines were taken (first check, new version, or lost baselines): the next check judges a window."""
    base = _current(before, model_version)
    message = f"baselines taken from {pods} server pod(s) of {model_version}; the next check judges a window"
    conds = list(base.conditions)
    if base.verdict is None:
        conds = set_condition(
            conds, conditions.drifted(None, message, reason="Baseline", generation=generation, now=now)
        )
    conds = conditions.with_kstatus(conds, "Current", "Monitoring", message, generation=generation, now=now)
    return base.model_copy(
        update={
            "observed_generation": generation,
            "conditions": conds,
            "model_version": model_version,
            "last_check_time": now,
            "message": message,
        }
    )


def _with(history: Sequence[RetrainRecord], started: RetrainRecord | None) -> list[RetrainRecord]:
    out = list(history)
    if started is not None and all(r.training_run != started.training_run for r in out):
        out.append(started)
    return out


def judged_status(
    before: DriftMonitorStatus,
    *,
    model_version: str,
    window: int,
    window_start: datetime | None,
    outcome: WindowOutcome,
    performance: PerformanceObservation | None,
    consecutive: int,
    decision: RetrainDecision,
    started: RetrainRecord | None,
    history: Sequence[RetrainRecord],
    generation: int | None,
    now: datetime,
) -> DriftMonitorStatus:
    """The status after window ``window`` was judged and the policy decided (``started``: the run created)."""
    base = _current(before, model_version)
    message = decision.message or outcome.message
    conds = set_condition(base.conditions, _drifted(outcome, generation=generation, now=now))
    conds = conditions.with_kstatus(conds, "Current", "Monitoring", message, generation=generation, now=now)
    update: dict = {
        "observed_generation": generation,
        "conditions": conds,
        "model_version": model_version,
        "window": window,
        "window_start": window_start,
        "last_check_time": now,
        "sample_count": outcome.sample_count,
        "verdict": outcome.verdict,
        "drift_share": outcome.drift_share,
        "consecutive_drifted_windows": consecutive,
        "features": outcome.features,
        "performance": performance,
        "retrain_history": _with(history, started),
        "message": message,
    }
    if started is not None:
        update["last_retrain"] = started
        if started.reason == "Drift":
            # The run answers these windows; a next retrain needs a new run of drifted windows.
            update["consecutive_drifted_windows"] = 0
        if decision.schedule_fire is not None:
            update["last_schedule_time"] = decision.schedule_fire
    elif history and (base.last_retrain is None or history[-1].time > base.last_retrain.time):
        update["last_retrain"] = history[-1]  # found on a TrainingRun the status had lost
    return base.model_copy(update=update)


def unobservable_status(
    before: DriftMonitorStatus,
    *,
    state: Literal["Current", "InProgress", "Failed"],
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> DriftMonitorStatus:
    """Nothing could be judged: suspended (Current), no production version or no reachable server
    (InProgress), or a spec that cannot work (Failed).

    Drifted becomes Unknown with the same reason (nothing is known about the traffic). The window counters
    are kept as they are: the next judged window continues from them.
    """
    conds = set_condition(
        before.conditions, conditions.drifted(None, message, reason=reason, generation=generation, now=now)
    )
    conds = conditions.with_kstatus(conds, state, reason, message, generation=generation, now=now)
    return before.model_copy(
        update={
            "observed_generation": generation,
            "conditions": conds,
            "last_check_time": now,
            "message": message,
        }
    )
