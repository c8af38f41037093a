"""The data gate and the model gate, decided from the trainer's summary. Pure.

Order: the data gate (the trainer checks the data against `spec.data.validation` and reports violations),
then absolute thresholds, then champion/challenger on the same held-out split (the trainer scores the
champion's artifact on the candidate's test rows). Every check becomes a `GateResult` with its numbers,
and a failed gate's message always names both the candidate's value and the bound or champion value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubeloop.api import GateResult, ValidationSpec
from kubeloop.contract import TrainerFailed, TrainerSucceeded


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6g}"


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    message: str
    results: list[GateResult] = field(default_factory=list)
    reason: str = "GatePassed"


def data_gate_results(summary: TrainerSucceeded | TrainerFailed) -> list[GateResult]:
    """The data gate's checks as the trainer reported them (violations only; a pass is one result)."""
    if isinstance(summary, TrainerSucceeded):
        return [
            GateResult(
                gate="Data",
                metric="rows",
                value=float(summary.data_rows),
                passed=True,
                message=f"{summary.data_rows} rows passed the data gate",
            )
        ]
    return [
        GateResult(
            gate="Data",
            metric=v.check if v.column is None else f"{v.check}:{v.column}",
            value=v.value,
            bound=v.bound,
            passed=False,
            message=v.message,
        )
        for v in summary.violations
    ]


def _threshold_results(validation: ValidationSpec, metrics: dict[str, float]) -> list[GateResult]:
    results = []
    for t in validation.thresholds:
        value = metrics.get(t.metric)
        if value is None:
            reported = ", ".join(sorted(metrics)) or "none"
            results.append(
                GateResult(
                    gate="Threshold",
                    metric=t.metric,
                    passed=False,
                    message=f"{t.metric} was not reported by the trainer (it reported {reported})",
                )
            )
            continue
        if t.min is not None and value < t.min:
            results.append(
                GateResult(
                    gate="Threshold",
                    metric=t.metric,
                    value=value,
                    bound=t.min,
                    passed=False,
                    message=f"{t.metric} {fmt(value)} is below the minimum {fmt(t.min)}",
                )
            )
        elif t.max is not None and value > t.max:
            results.append(
                GateResult(
                    gate="Threshold",
                    metric=t.metric,
                    value=value,
                    bound=t.max,
                    passed=False,
                    message=f"{t.metric} {fmt(value)} is above the maximum {fmt(t.max)}",
                )
            )
        else:
            bounds = " and ".join(
                part
                for part in (
                    f">= {fmt(t.min)}" if t.min is not None else "",
                    f"<= {fmt(t.max)}" if t.max is not None else "",
                )
                if part
            )
            results.append(
                GateResult(
                    gate="Threshold",
                    metric=t.metric,
                    value=value,
                    bound=t.min if t.min is not None else t.max,
                    passed=True,
                    message=f"{t.metric} {fmt(value)} {bounds}",
                )
            )
    return results


def _champion_result(
    validation: ValidationSpec, summary: TrainerSucceeded, champion: str | None
) -> GateResult | None:
    gate = validation.champion
    if gate is None or not gate.enabled:
        return None
    metric = gate.metric
    candidate = summary.metrics.get(metric)
    if champion is None:
        return GateResult(
            gate="Champion",
            metric=metric,
            value=candidate,
            passed=True,
            message="no production version to compare with: the candidate is the first champion",
        )
    if summary.champion_metrics is None:
        why = summary.champion_error or "the trainer did not evaluate it"
        return GateResult(
            gate="Champion",
            metric=metric,
            value=candidate,
            passed=False,
            message=f"the champion {champion} could not be evaluated on the same split: {why}",
        )
    incumbent = summary.champion_metrics.get(metric)
    if candidate is None or incumbent is None:
        return GateResult(
            gate="Champion",
            metric=metric,
            value=candidate,
            bound=incumbent,
            passed=False,
            message=f"{metric} is missing for the {'candidate' if candidate is None else 'champion'}",
        )
    improvement = candidate - incumbent if gate.higher_is_better else incumbent - candidate
    passed = improvement >= gate.min_improvement
    direction = "higher" if gate.higher_is_better else "lower"
    verdict = "beats" if passed else "does not beat"
    return GateResult(
        gate="Champion",
        metric=metric,
        value=candidate,
        bound=incumbent,
        passed=passed,
        message=(
            f"candidate {metric} {fmt(candidate)} {verdict} champion {champion} {metric} {fmt(incumbent)} "
            f"by the required {fmt(gate.min_improvement)} ({direction} is better; improvement "
            f"{fmt(improvement)})"
        ),
    )


def model_gate(validation: ValidationSpec, summary: TrainerSucceeded, champion: str | None) -> GateDecision:
    """Thresholds, then the champion. `champion` is the production ModelVersion given to the trainer."""
    results = _threshold_results(validation, summary.metrics)
    failed = [r for r in results if not r.passed]
    if failed:
        return GateDecision(
            False, "threshold not met: " + "; ".join(r.message for r in failed), results, "ThresholdNotMet"
        )
    champion_result = _champion_result(validation, summary, champion)
    if champion_result is not None:
        results.append(champion_result)
        if not champion_result.passed:
            return GateDecision(False, champion_result.message, results, "ChampionNotBeaten")
    passed = [r.message for r in results]
    message = "; ".join(passed) if passed else "no thresholds and no champion comparison configured"
    return GateDecision(True, message, results)
