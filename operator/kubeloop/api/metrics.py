"""Names of the operator's Prometheus metrics: an API too, since alerts and dashboards depend on them.

The chart's PrometheusRule and Grafana dashboard use only these names (a unit test checks it), so the
operator should export its metrics under these constants. Labels name the custom resource's namespace as
`namespace` (the ServiceMonitor keeps them with honorLabels).
"""

from __future__ import annotations

PREFIX = "kubeloop"

# Counter{kind, outcome}: reconciles of each kind, outcome "success" or "error".
RECONCILES_TOTAL = f"{PREFIX}_reconciles_total"
# Histogram{kind, phase}: seconds spent in each phase (e.g. TrainingRun Training, ModelVersion step).
PHASE_DURATION_SECONDS = f"{PREFIX}_phase_duration_seconds"
# Counter{namespace, model, outcome}: finished TrainingRuns, outcome "Succeeded" or "Failed".
TRAINING_RUNS_TOTAL = f"{PREFIX}_training_runs_total"
# Counter{namespace, model}: canary rollouts promoted / rolled back.
PROMOTIONS_TOTAL = f"{PREFIX}_promotions_total"
ROLLBACKS_TOTAL = f"{PREFIX}_rollbacks_total"
# Gauge{namespace, model, feature, method}: drift score of each feature in the last window.
DRIFT_SCORE = f"{PREFIX}_drift_score"
# Gauge{namespace, model}: 1 while the last window drifted, else 0.
DRIFT_DETECTED = f"{PREFIX}_drift_detected"
# Counter{namespace, model, reason}: retraining TrainingRuns started by DriftMonitors.
RETRAINS_TOTAL = f"{PREFIX}_retrains_total"

ALL = (
    RECONCILES_TOTAL,
    PHASE_DURATION_SECONDS,
    TRAINING_RUNS_TOTAL,
    PROMOTIONS_TOTAL,
    ROLLBACKS_TOTAL,
    DRIFT_SCORE,
    DRIFT_DETECTED,
    RETRAINS_TOTAL,
)
