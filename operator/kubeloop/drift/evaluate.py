"""One drift check: a reference profile and a live window in, a typed report out.

This is what the operator's DriftMonitor calls. The window is what the server collected: counts over the
profile's bins for every feature (all rows of the window) and, optionally, a bounded reservoir sample of
each numeric feature for Wasserstein (and for KS where there are no counts).

Every statistic is computed from the counts wherever it can be, so a check costs features x bins whatever
the traffic, and covers every live row and every reference row. Method per feature:

- ``Auto``: the chi-squared test on the counts, for numeric and categorical features alike. The test has
  an exact, size-free null, and needs no order of the bins. A numeric feature with a sample but no
  counts falls back to KS on the sample.
- ``PSI``, ``JensenShannon``, ``ChiSquared``: on the counts, for both kinds.
- ``KS``: for numeric features on the counts (the empirical CDFs read at the bin edges), or on the
  sample when there are no counts; categorical features use ``ChiSquared``.
- ``Wasserstein``: on the samples for numeric features (a distance in feature units needs the values,
  not bins); categorical features use ``ChiSquared``.

A feature with fewer than ``min_samples`` rows on either side is ``InsufficientData`` and takes no part in
the multiple-testing control or the dataset verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from kubeloop.drift.binned import stack_counts
from kubeloop.drift.decision import (
    BINNED_METHODS,
    CATEGORICAL_METHODS,
    adjust_pvalues,
    binned_test,
    critical_pvalue,
    sample_test,
)
from kubeloop.drift.profile import DriftProfile
from kubeloop.drift.report import DriftConfig, DriftMethod, DriftReport, FeatureDrift, Verdict
from kubeloop.drift.samples import stack_samples

__all__ = ["evaluate"]

Kind = Literal["numeric", "categorical"]
Counts = Mapping[str, Sequence[int] | np.ndarray]
Samples = Mapping[str, Sequence[float] | np.ndarray]


@dataclass
class _Feature:
    name: str
    kind: Kind
    method: DriftMethod
    on_counts: bool
    n_reference: int = 0
    n_live: int = 0
    score: float = np.nan
    p_value: float = np.nan
    message: str = ""


def _feature(name: str, kind: Kind, requested: DriftMethod, counts: Counts, samples: Samples) -> _Feature:
    if kind == "categorical":
        method = requested if requested in CATEGORICAL_METHODS else DriftMethod.CHI_SQUARED
        return _Feature(name, kind, method, on_counts=True)
    only_sample = name not in counts and name in samples
    if requested == DriftMethod.AUTO:
        method = DriftMethod.KS if only_sample else DriftMethod.CHI_SQUARED
    else:
        method = requested
    on_counts = method in BINNED_METHODS and not (method == DriftMethod.KS and only_sample)
    return _Feature(name, kind, method, on_counts)


def _selected(profile: DriftProfile, config: DriftConfig) -> list[tuple[str, Kind]]:
    every: list[tuple[str, Kind]] = [(n, "numeric") for n in profile.numeric]
    every += [(n, "categorical") for n in profile.categorical]
    if config.features is None:
        return every
    unknown = sorted(set(config.features) - {n for n, _ in every})
    if unknown:
        raise ValueError(f"features not in the reference profile: {unknown}")
    wanted = set(config.features)
    return [(n, k) for n, k in every if n in wanted]


def _gate(feature: _Feature, min_samples: int) -> bool:
    if feature.n_live < min_samples:
        feature.message = f"{feature.n_live} live rows, fewer than min_samples={min_samples}"
    elif feature.n_reference < min_samples:
        feature.message = f"{feature.n_reference} reference rows, fewer than min_samples={min_samples}"
    return not feature.message


def _run_binned(
    features: list[_Feature], profile: DriftProfile, numeric: Counts, categorical: Counts, config: DriftConfig
) -> None:
    refs, curs, ready = [], [], []
    for f in features:
        if f.kind == "numeric":
            ref, live = np.asarray(profile.numeric[f.name].counts), numeric
        else:
            ref, live = np.asarray(profile.categorical[f.name].counts), categorical
        if f.name not in live:
            f.n_reference, f.message = int(ref.sum()), "no live counts"
            continue
        cur = np.asarray(live[f.name]).ravel()
        if cur.shape != ref.shape:
            raise ValueError(f"{f.name}: {cur.size} live bins, the profile has {ref.size}")
        f.n_reference, f.n_live = int(ref.sum()), int(cur.sum())
        if _gate(f, config.min_samples):
            refs.append(ref)
            curs.append(cur)
            ready.append(f)
    if not ready:
        return
    score, p_value = binned_test(
        stack_counts(refs),
        stack_counts(curs),
        ready[0].method,
        min_expected=config.min_expected,
        pseudo_count=config.psi_pseudo_count,
    )
    for f, s, p in zip(ready, score, p_value, strict=True):
        f.score, f.p_value = float(s), float(p)


def _run_samples(features: list[_Feature], profile: DriftProfile, live: Samples, config: DriftConfig) -> None:
    refs, curs, ready = [], [], []
    for f in features:
        ref = np.asarray(profile.sample.get(f.name, []), dtype=float)
        f.n_reference = int(np.count_nonzero(~np.isnan(ref)))
        if f.name not in live:
            f.message = "no live sample"
            continue
        cur = np.asarray(live[f.name], dtype=float)
        f.n_live = int(np.count_nonzero(~np.isnan(cur)))
        if _gate(f, config.min_samples):
            refs.append(ref)
            curs.append(cur)
            ready.append(f)
    if not ready:
        return
    # The profile stores its sample sorted (NaN-padding sorts last too), so only live rows are sorted.
    reference = stack_samples(refs)
    score, p_value, _, _ = sample_test(reference, stack_samples(curs), ready[0].method, reference_sorted=True)
    if ready[0].method == DriftMethod.WASSERSTEIN:
        # In reference standard deviations, so one cut fits every feature; a constant reference keeps
        # the raw distance (any move away from the constant is then in feature units).
        spread = np.nanstd(reference, axis=1)
        score = score / np.where(spread > 0, spread, 1.0)
    for f, s, p in zip(ready, score, p_value, strict=True):
        f.score, f.p_value = float(s), float(p)


def _optional(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def _verdict(f: _Feature, adjusted: float, p_cut: float | None, config: DriftConfig) -> FeatureDrift:
    threshold, threshold_on = None, None
    if f.message:
        verdict = Verdict.INSUFFICIENT
    elif config.threshold is not None:
        threshold, threshold_on = config.threshold, "score"
        verdict = Verdict.DRIFT if f.score > config.threshold else Verdict.NO_DRIFT
    else:
        threshold, threshold_on = p_cut, "p_value"
        big_enough = config.min_score is None or f.score >= config.min_score
        verdict = Verdict.DRIFT if adjusted <= config.alpha and big_enough else Verdict.NO_DRIFT
    return FeatureDrift(
        name=f.name,
        kind=f.kind,
        method=f.method,
        verdict=verdict,
        score=_optional(f.score),
        p_value=_optional(f.p_value),
        adjusted_p_value=_optional(adjusted),
        threshold=threshold,
        threshold_on=threshold_on,
        n_reference=f.n_reference,
        n_live=f.n_live,
        message=f.message,
    )


def evaluate(
    profile: DriftProfile,
    live_numeric_counts: Counts | None = None,
    live_categorical_counts: Counts | None = None,
    live_samples: Samples | None = None,
    config: DriftConfig | None = None,
) -> DriftReport:
    """Judge one live window against the reference profile (see the module docstring)."""
    config = config or DriftConfig()
    numeric_counts, categorical_counts = live_numeric_counts or {}, live_categorical_counts or {}
    samples = live_samples or {}
    features = [
        _feature(name, kind, config.method, numeric_counts, samples)
        for name, kind in _selected(profile, config)
    ]
    for method, on_counts in dict.fromkeys((f.method, f.on_counts) for f in features):
        group = [f for f in features if (f.method, f.on_counts) == (method, on_counts)]
        if on_counts:
            _run_binned(group, profile, numeric_counts, categorical_counts, config)
        else:
            _run_samples(group, profile, samples, config)

    for f in features:
        if not f.message and np.isnan(f.p_value):
            f.message = "the test is undefined for this window"
    tested = [f for f in features if not f.message]
    raw = np.array([f.p_value for f in tested])
    adjusted = dict(zip((f.name for f in tested), adjust_pvalues(raw, config.correction), strict=True))
    p_cut = float(critical_pvalue(raw, config.alpha, config.correction)) if tested else None
    verdicts = [_verdict(f, adjusted.get(f.name, np.nan), p_cut, config) for f in features]
    n_drifted = sum(v.verdict == Verdict.DRIFT for v in verdicts)
    share = n_drifted / len(tested) if tested else 0.0
    if not tested:
        dataset = Verdict.INSUFFICIENT
    elif n_drifted > 0 and share >= config.min_drifted_share:
        dataset = Verdict.DRIFT
    else:
        dataset = Verdict.NO_DRIFT
    return DriftReport(
        verdict=dataset,
        method=config.method,
        alpha=config.alpha,
        correction=config.correction,
        n_tested=len(tested),
        n_drifted=n_drifted,
        n_insufficient=len(features) - len(tested),
        drifted_share=share,
        n_live=max((f.n_live for f in features), default=0),
        features=verdicts,
    )
