"""The verdict of one canary step from the canary's and the stable's traffic in that step.

Pass needs data: the canary must have served at least `minRequests` requests, and the error rate, the p99
latency and the prediction shift must each be measured and within bounds. Missing data is Inconclusive,
never a pass; so is a prediction shift above its bound that the data cannot yet tell from sampling noise
(p >= 0.01 under "same distribution"), while a significant one fails; the state machine waits up to `inconclusiveTimeout` for it, then fails the step. Online
accuracy is judged only once `minRequests` of the canary's predictions have feedback labels, as the API
says; until then it is recorded as not judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from kubeloop.api import AnalysisSpec, Measurement
from kubeloop.drift import DriftMethod, binned_test, js_distance
from kubeloop.rollout.window import Traffic

Verdict = str  # "Pass", "Fail" or "Inconclusive" (kubeloop.api.modelversion.Verdict)

REQUESTS = "requests"
ERROR_RATE = "errorRate"
P99 = "p99LatencyMilliseconds"
SHIFT = "predictionShift"
ACCURACY = "onlineAccuracy"
# A prediction shift above its bound fails a step only when it is significant at this level.
SHIFT_ALPHA = 0.01


@dataclass(frozen=True)
class StepVerdict:
    verdict: Verdict
    measurements: list[Measurement]
    message: str
    failed: Measurement | None = None  # the first metric that failed, for the RolledBack condition


def histogram_quantile(q: float, bounds: list[float], counts: list[float]) -> tuple[float | None, bool]:
    """The q-quantile of a histogram, interpolated linearly inside its bucket as Prometheus does.

    Returns (value, overflow): value None without observations; overflow True when the quantile lies
    above the largest finite bound, in which case value is that bound (a lower limit of the truth).
    """
    total = float(sum(counts))
    if total <= 0 or not bounds:
        return None, False
    rank = q * total
    running, lower = 0.0, 0.0
    for i, upper in enumerate(bounds):
        n = counts[i]
        if running + n >= rank and n > 0:
            return lower + (upper - lower) * (rank - running) / n, False
        running += n
        lower = upper
    return bounds[-1], True


def _edges(labels: list[str]) -> list[float]:
    return [float(x) for x in labels if x not in ("+Inf", "Inf")]


def rebin(edges: list[float], counts: list[float], grid: list[float]) -> np.ndarray:
    """Counts on bins (-inf, e1], (e1, e2], ..., (ek, inf) moved onto the bins of `grid` (a superset of edges).

    Mass inside a finite bin is spread uniformly over it; the open outer bins keep their mass next to their
    finite edge. Exact when both versions share their edges (same training target quantiles).
    """
    out = np.zeros(len(grid) + 1)
    g = np.asarray(grid)
    for i, n in enumerate(counts):
        if n == 0:
            continue
        if i == 0:
            out[int(np.searchsorted(g, edges[0], side="left"))] += n
            continue
        if i == len(edges):
            out[int(np.searchsorted(g, edges[-1], side="right"))] += n
            continue
        lo, hi = edges[i - 1], edges[i]
        # grid bins strictly inside (lo, hi]: their share of the width
        first = int(np.searchsorted(g, lo, side="right"))
        last = int(np.searchsorted(g, hi, side="left"))
        for j in range(first, last + 1):
            left = max(lo, g[j - 1] if j > 0 else lo)
            right = min(hi, g[j] if j < len(g) else hi)
            if right > left:
                out[j] += n * (right - left) / (hi - lo)
    return out


def _aligned(
    canary: Mapping[str, float], stable: Mapping[str, float], kind: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """Both histograms on the same bins: classes matched by name, regression bins moved onto the union of
    both versions' edges (each version's bins are the quantiles of its own training target)."""
    if kind == "value":
        ce, se = _edges(list(canary)), _edges(list(stable))
        grid = sorted(set(ce) | set(se))
        c = rebin(ce, list(canary.values()), grid) if ce != grid else np.asarray(list(canary.values()))
        s = rebin(se, list(stable.values()), grid) if se != grid else np.asarray(list(stable.values()))
        return c, s
    labels = sorted(set(canary) | set(stable))
    return (
        np.asarray([canary.get(label, 0.0) for label in labels]),
        np.asarray([stable.get(label, 0.0) for label in labels]),
    )


def prediction_shift(
    canary: Mapping[str, float], stable: Mapping[str, float], kind: str | None
) -> float | None:
    """Jensen-Shannon distance (base 2, 0..1) between two prediction histograms; None without data.

    A class only one side predicts counts as zero on the other.
    """
    if sum(canary.values()) <= 0 or sum(stable.values()) <= 0:
        return None
    c, s = _aligned(canary, stable, kind)
    return float(js_distance(s, c)[0])


def shift_pvalue(canary: Mapping[str, float], stable: Mapping[str, float], kind: str | None) -> float | None:
    """p-value of the distance under "same distribution", from the drift statistics' binned JS test.

    Both histograms are samples (the test counts the stable's own noise), sparse bins are pooled, so a
    distance from fifty predictions is weighed as the noise it may be.
    """
    if sum(canary.values()) <= 0 or sum(stable.values()) <= 0:
        return None
    c, s = _aligned(canary, stable, kind)
    _, p = binned_test(s[None, :], c[None, :], DriftMethod.JENSEN_SHANNON)
    return None if np.isnan(p[0]) else float(p[0])


def _fmt(value: float | None) -> str:
    if value is None:
        return "no data"
    return f"{value:.4g}"


def analyse(
    spec: AnalysisSpec,
    canary: Traffic,
    stable: Traffic,
    stable_reference: Mapping[str, float] | None = None,
) -> StepVerdict:
    """Judge a step. `stable_reference` stands in for the stable's predictions when it served none."""
    requests = canary.requests if canary.pods else None
    measured: list[Measurement] = [
        Measurement(
            metric=REQUESTS,
            value=requests,
            threshold=float(spec.min_requests),
            passed=None if requests is None else requests >= spec.min_requests,
        )
    ]
    error_rate = canary.server_errors / canary.requests if canary.pods and canary.requests > 0 else None
    measured.append(
        Measurement(
            metric=ERROR_RATE,
            value=error_rate,
            threshold=spec.max_error_rate,
            passed=None if error_rate is None else error_rate <= spec.max_error_rate,
        )
    )
    p99, overflow = histogram_quantile(0.99, canary.latency_bounds, canary.latency)
    p99_ms = None if p99 is None else p99 * 1000.0
    measured.append(
        Measurement(
            metric=P99,
            value=p99_ms,
            threshold=spec.max_p99_latency_milliseconds,
            # Above the largest bucket the true p99 is unknown but at least that bound: never a pass.
            passed=None if p99_ms is None else (not overflow and p99_ms <= spec.max_p99_latency_milliseconds),
        )
    )
    reference = stable.predictions
    if sum(reference.values()) <= 0 and stable_reference:
        reference = dict(stable_reference)
    shift = prediction_shift(canary.predictions, reference, canary.prediction_kind)
    shift_passed: bool | None = None
    p_value: float | None = None
    if shift is not None:
        if shift <= spec.max_prediction_shift:
            shift_passed = True
        else:
            # Above the bound: a failure only if the data show it is not sampling noise; otherwise the
            # step waits for more of its traffic (and fails at the inconclusive deadline).
            p_value = shift_pvalue(canary.predictions, reference, canary.prediction_kind)
            shift_passed = False if p_value is not None and p_value < SHIFT_ALPHA else None
    measured.append(
        Measurement(metric=SHIFT, value=shift, threshold=spec.max_prediction_shift, passed=shift_passed)
    )
    if spec.min_online_accuracy is not None:
        enough = canary.feedback_correct is not None and canary.feedback_joined >= max(spec.min_requests, 1)
        accuracy = canary.feedback_correct / canary.feedback_joined if enough else None  # type: ignore[operator]
        measured.append(
            Measurement(
                metric=ACCURACY,
                value=accuracy,
                threshold=spec.min_online_accuracy,
                passed=None if accuracy is None else accuracy >= spec.min_online_accuracy,
            )
        )
    return _verdict(measured, canary, stable, overflow, p_value)


def _rejections(canary: Traffic, stable: Traffic) -> str:
    """Why a canary that served requests has no predictions: it refused them (4xx), where the stable did not."""
    if canary.client_errors <= 0 or sum(canary.predictions.values()) > 0:
        return ""
    return (
        f" (the canary answered {canary.client_errors:.0f} of {canary.requests:.0f} requests with a client "
        f"error; the stable {stable.client_errors:.0f} of {stable.requests:.0f})"
    )


def _verdict(
    measured: list[Measurement], canary: Traffic, stable: Traffic, overflow: bool, shift_p: float | None
) -> StepVerdict:
    by = {m.metric: m for m in measured}
    skipped = f"; pods left out: {', '.join(canary.skipped)}" if canary.skipped else ""
    if not canary.pods:
        return StepVerdict("Inconclusive", measured, f"no metrics from any canary pod{skipped}")
    n = by[REQUESTS]
    if not n.passed:
        return StepVerdict(
            "Inconclusive",
            measured,
            f"requests {_fmt(n.value)} < {int(n.threshold or 0)} in the step: too few to judge{skipped}",
        )
    for m in measured:
        if m.passed is False:
            relation = "<" if m.metric == ACCURACY else ">"
            extra = " (above the largest latency bucket)" if m.metric == P99 and overflow else ""
            return StepVerdict(
                "Fail", measured, f"{m.metric} {_fmt(m.value)} {relation} {_fmt(m.threshold)}{extra}", m
            )
    missing = [m.metric for m in measured if m.value is None and m.metric != ACCURACY]
    if missing:
        why = _rejections(canary, stable)
        return StepVerdict("Inconclusive", measured, f"no data for {', '.join(missing)}{why}{skipped}")
    shift = by[SHIFT]
    if shift.passed is None:
        evidence = "no p-value" if shift_p is None else f"p={shift_p:.3g} >= {SHIFT_ALPHA}"
        return StepVerdict(
            "Inconclusive",
            measured,
            f"predictionShift {_fmt(shift.value)} > {_fmt(shift.threshold)} but not significant yet "
            f"({evidence}): waiting for more predictions",
        )
    judged = ", ".join(f"{m.metric} {_fmt(m.value)}" for m in measured if m.passed is not None)
    accuracy = by.get(ACCURACY)
    pending = (
        "; onlineAccuracy not judged yet (too few labels)" if accuracy and accuracy.value is None else ""
    )
    return StepVerdict("Pass", measured, f"{judged}{pending}")
