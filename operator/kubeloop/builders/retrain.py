"""The retraining TrainingRun a DriftMonitor creates: pure, a typed monitor and trigger in, a manifest out.

The run comes from the monitor's template, or is a clone of the TrainingRun that produced the production
version with the configured data URI. Either way it is labelled with the model, the monitor and the
trigger reason (for selection: ``kubectl get tr -l kubeloop.dev/drift-monitor=iris``), and annotated with
the whole trigger as JSON (reason, monitor, window, scores, message) in the shape of the ModelVersion's
``spec.lineage.trigger``, which the registry copies from the run (:func:`read_trigger`).

The name is derived from the monitor, its uid, the window and the reason, so a check that runs again
after a crash names the same run, and get-or-create finds it instead of starting a second one. There is
no owner reference: a retrain outlives its monitor, as the lineage of the version it produced does.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from kubeloop.api import API_VERSION, DriftMonitor, RetrainRecord, TrainingRun, TrainingRunSpec, Trigger

__all__ = [
    "MODEL_LABEL",
    "MONITOR_LABEL",
    "TRIGGER_ANNOTATION",
    "TRIGGER_LABEL",
    "read_trigger",
    "retrain_record",
    "retrain_run",
    "retrain_run_name",
]

MODEL_LABEL = "kubeloop.dev/model"
MONITOR_LABEL = "kubeloop.dev/drift-monitor"
TRIGGER_LABEL = "kubeloop.dev/trigger"
TRIGGER_ANNOTATION = "kubeloop.dev/trigger"
MANAGED_BY = {"app.kubernetes.io/managed-by": "kubeloop"}
# Short enough for a label value (63) with room for the suffixes other objects derive from the run's name.
MAX_NAME = 52
_OWN_PREFIX = "kubeloop.dev/"


def retrain_run_name(monitor: str, uid: str, window: int, reason: str) -> str:
    """``<monitor>-retrain-w<window>-<hash>``: the same inputs always give the same name."""
    digest = hashlib.sha256(f"{uid}/{window}/{reason}".encode()).hexdigest()[:6]
    suffix = f"-retrain-w{window}-{digest}"
    prefix = re.sub(r"[^a-z0-9-]", "-", monitor)[: MAX_NAME - len(suffix)].rstrip("-")
    return f"{prefix}{suffix}"


def _labels(monitor: DriftMonitor, trigger: Trigger, base: Mapping[str, str]) -> dict[str, str]:
    return {
        **base,
        **MANAGED_BY,
        MODEL_LABEL: monitor.spec.model,
        MONITOR_LABEL: monitor.metadata["name"],
        TRIGGER_LABEL: trigger.reason,
    }


def _clone_spec(source: TrainingRun, data_uri: str | None) -> TrainingRunSpec:
    spec = source.spec
    if data_uri:
        spec = spec.model_copy(update={"data": spec.data.model_copy(update={"uri": data_uri})})
    return spec


def retrain_run(
    monitor: DriftMonitor, trigger: Trigger, *, name: str, source: TrainingRun | None = None
) -> dict[str, Any]:
    """The TrainingRun manifest for ``trigger``.

    With a template policy ``source`` is unused; with a clone policy it is the run to clone (its user labels
    are kept, its kubeloop labels and every annotation are not).
    """
    policy = monitor.spec.retrain
    if policy is None:
        raise ValueError(f"DriftMonitor {monitor.metadata.get('name')} has no retrain policy")
    if policy.template is not None:
        spec = policy.template.spec
        labels, annotations = dict(policy.template.labels), dict(policy.template.annotations)
    else:
        if source is None:
            raise ValueError("a clone policy needs the TrainingRun to clone")
        spec = _clone_spec(source, policy.clone.data_uri if policy.clone else None)
        labels = {
            k: v for k, v in (source.metadata.get("labels") or {}).items() if not k.startswith(_OWN_PREFIX)
        }
        annotations = {}
    if spec.model != monitor.spec.model:
        raise ValueError(
            f"the retrain would train model {spec.model}, not the monitor's {monitor.spec.model}"
        )
    annotations[TRIGGER_ANNOTATION] = trigger.model_dump_json(exclude_none=True)
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingRun",
        "metadata": {
            "name": name,
            "namespace": monitor.metadata["namespace"],
            "labels": _labels(monitor, trigger, labels),
            "annotations": annotations,
        },
        "spec": spec.model_dump(mode="json", exclude_none=True),
    }


def read_trigger(annotations: Mapping[str, str] | None) -> Trigger | None:
    """The trigger a retrain was annotated with; None for runs nobody triggered (or a mangled annotation)."""
    raw = (annotations or {}).get(TRIGGER_ANNOTATION)
    if not raw:
        return None
    try:
        return Trigger.model_validate_json(raw)
    except (ValidationError, ValueError):
        return None


def retrain_record(run: Mapping[str, Any]) -> RetrainRecord | None:
    """A TrainingRun a monitor created, as its status records it (the time is the run's creation)."""
    meta = run.get("metadata") or {}
    trigger = read_trigger(meta.get("annotations"))
    created = meta.get("creationTimestamp")
    if trigger is None or trigger.reason not in ("Drift", "PerformanceBreach", "Schedule") or not created:
        return None
    time = (
        created if isinstance(created, datetime) else datetime.fromisoformat(created.replace("Z", "+00:00"))
    )
    return RetrainRecord(
        training_run=meta["name"],
        reason=trigger.reason,
        window=trigger.window,
        time=time,
        scores=trigger.scores,
        message=trigger.message,
    )
