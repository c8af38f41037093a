"""Judge one window: the DriftMonitor's spec becomes a drift configuration, the window a verdict.

The window-level gate comes first: with fewer live rows than ``spec.minSamples`` there is no verdict at
all (InsufficientData), never a healthy one. Above it, :func:`kubeloop.drift.evaluate` judges every feature
with the sample-size-aware rule (or the fixed cut the spec sets for the method) and the multiple-testing
correction across features.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from kubeloop.api import DriftMonitorSpec
from kubeloop.api import FeatureDrift as FeatureStatus
from kubeloop.drift import (
    SAMPLE_ONLY_METHODS,
    Correction,
    DriftConfig,
    DriftMethod,
    DriftProfile,
    DriftReport,
    Verdict,
    evaluate,
)

__all__ = ["WindowOutcome", "drift_config", "judge_window"]

TOP_FEATURES = 3


@dataclass(frozen=True)
class WindowOutcome:
    """The verdict on one window, in the shapes the status and the metrics need."""

    verdict: str  # NoDrift, Drift or InsufficientData
    sample_count: int
    message: str
    drift_share: float | None = None
    features: list[FeatureStatus] = field(default_factory=list)
    top: list[FeatureStatus] = field(default_factory=list)  # drifted features, strongest evidence first

    @property
    def drifted(self) -> bool:
        return self.verdict == Verdict.DRIFT

    def scores(self, features: list[FeatureStatus] | None = None) -> dict[str, float]:
        return {f.name: f.score for f in (self.top if features is None else features) if f.score is not None}


def drift_config(spec: DriftMonitorSpec, *, sample_capacity: int | None = None) -> DriftConfig:
    """The :class:`DriftConfig` that ``spec`` asks for.

    A fixed cut (psi, jensenShannon, wasserstein) applies only to its own method; ``pValue`` is a raw
    p-value cut per feature (no correction), replacing the false-alarm rate. For Wasserstein, which judges
    the reservoirs, the per-feature minimum is capped at the servers' reservoir size, since a window's
    sample can never be larger.
    """
    method = DriftMethod(spec.method)
    t = spec.thresholds
    fixed = {
        DriftMethod.PSI: t.psi,
        DriftMethod.JENSEN_SHANNON: t.jensen_shannon,
        DriftMethod.WASSERSTEIN: t.wasserstein,
    }.get(method)
    min_samples = spec.min_samples
    if method in SAMPLE_ONLY_METHODS and sample_capacity:
        min_samples = min(min_samples, sample_capacity)
    return DriftConfig(
        method=method,
        # pValue is a raw cut ("before correction"): with it, no multiple-testing correction applies.
        alpha=t.p_value if t.p_value is not None else t.false_alarm_rate,
        correction=Correction.NONE if t.p_value is not None else Correction(t.correction),
        min_samples=min_samples,
        threshold=fixed,
        min_drifted_share=t.drift_share,
        features=list(spec.features) or None,
    )


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _feature_status(report: DriftReport) -> list[FeatureStatus]:
    return [
        FeatureStatus(
            name=f.name,
            kind=f.kind,
            method=str(f.method),
            score=_finite(f.score),
            p_value=_finite(f.p_value),
            threshold=_finite(f.threshold),
            drifted=f.verdict == Verdict.DRIFT,
        )
        for f in report.features
    ]


def _strength(f: FeatureStatus) -> tuple[float, float]:
    # Scores of different methods are not comparable; p-values are, so they rank first.
    return (f.p_value if f.p_value is not None else 1.0, -(f.score or 0.0))


def _describe(f: FeatureStatus, report: DriftReport | None = None) -> str:
    parts = [f"{f.method} {f.score:.3g}" if f.score is not None else f.method]
    if f.p_value is not None:
        parts.append(f"p={f.p_value:.2g}")
    gaps = report.feature(f.name).missing if report is not None else None
    if gaps is not None and gaps.drifted:
        parts = [f"missing {gaps.reference_rate:.1%} -> {gaps.live_rate:.1%}, p={gaps.p_value:.2g}"]
    return f"{f.name} ({', '.join(parts)})"


def _drift_message(top: list[FeatureStatus], report: DriftReport, rows: int) -> str:
    n_drifted, n_tested = report.n_drifted, report.n_tested
    named = ", ".join(_describe(f, report) for f in top[:TOP_FEATURES])
    more = f" and {n_drifted - TOP_FEATURES} more" if n_drifted > TOP_FEATURES else ""
    return f"drift in {n_drifted} of {n_tested} features over {rows} rows: {named}{more}"


def judge_window(
    spec: DriftMonitorSpec,
    profile: DriftProfile,
    *,
    rows: int,
    numeric: Mapping[str, np.ndarray],
    categorical: Mapping[str, np.ndarray],
    samples: Mapping[str, np.ndarray] | None = None,
    sample_capacity: int | None = None,
    missing: Mapping[str, int] | None = None,
) -> WindowOutcome:
    """The verdict on one window of ``rows`` live rows, summed over replicas.

    Raises ValueError when the spec names features the reference profile does not have.
    """
    if rows < spec.min_samples:
        return WindowOutcome(
            verdict=str(Verdict.INSUFFICIENT),
            sample_count=rows,
            message=f"insufficient data: {rows} live rows in the window, fewer than minSamples={spec.min_samples}",
        )
    config = drift_config(spec, sample_capacity=sample_capacity)
    report = evaluate(profile, numeric, categorical, samples or {}, config, live_missing=missing)
    features = _feature_status(report)
    if report.verdict == Verdict.INSUFFICIENT:
        why = "; ".join(f"{f.name}: {f.message}" for f in report.features[:TOP_FEATURES])
        return WindowOutcome(
            verdict=str(Verdict.INSUFFICIENT),
            sample_count=rows,
            features=features,
            message=f"insufficient data: no feature could be tested ({why})",
        )
    top = sorted((f for f in features if f.drifted), key=_strength)
    if report.verdict == Verdict.DRIFT:
        message = _drift_message(top, report, rows)
    else:
        closest = min((f for f in features if f.p_value is not None), key=_strength, default=None)
        hint = f"; closest: {_describe(closest)}" if closest is not None else ""
        below = f", {report.n_drifted} below the driftShare cut" if report.n_drifted else ""
        message = f"no drift in {report.n_tested} features over {rows} rows{below}{hint}"
    return WindowOutcome(
        verdict=str(report.verdict),
        sample_count=rows,
        message=message,
        drift_share=report.drifted_share,
        features=features,
        top=top,
    )
