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

Missing values are a signal of their own. When the window brings missing counts per feature, each feature
whose missing values could have changed (at least one on either side, and ``min_samples`` rows on each)
also gets a one-sided exact test of a rise of its missing rate (:func:`missing_rate_test`). Those tests join
the same multiple-testing family as the distribution tests, and a feature drifts when either of its tests
does. So a feature that goes all-missing is ``Drift`` with that reason, although none of its values is left
to compare distributions with.
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
    missing_rate_test,
    sample_test,
)
from kubeloop.drift.profile import DriftProfile
from kubeloop.drift.report import (
    DriftConfig,
    DriftMethod,
    DriftReport,
    FeatureDrift,
    MissingRate,
    Verdict,
)
from kubeloop.drift.samples import stack_samples

__all__ = ["evaluate"]

Kind = Literal["numeric", "categorical"]
Counts = Mapping[str, Sequence[int] | np.ndarray]
Samples = Mapping[str, Sequence[float] | np.ndarray]
Missing = Mapping[str, int]


@dataclass
class _Missing:
    reference_missing: int
    reference_rows: int
    live_missing: int
    live_rows: int
    p_value: float = np.nan


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
    message: str = ""  # set when the distribution was not tested, and why
    missing: _Missing | None = None


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


def _run_missing(
    features: list[_Feature],
    profile: DriftProfile,
    numeric: Counts,
    categorical: Counts,
    live_missing: Missing,
    config: DriftConfig,
) -> None:
    """The missing-rate test of every feature the window has missing counts (and value counts) for."""
    ready: list[_Missing] = []
    for f in features:
        present = (numeric if f.kind == "numeric" else categorical).get(f.name)
        if f.name not in live_missing or f.name not in profile.missing or present is None:
            continue  # without the values that were there, the live rate has no denominator
        n_missing = int(live_missing[f.name])
        if n_missing < 0:
            raise ValueError(f"{f.name}: a negative live missing count ({n_missing})")
        m = _Missing(
            reference_missing=profile.missing[f.name],
            reference_rows=profile.n_rows,
            live_missing=n_missing,
            live_rows=int(np.asarray(present).sum()) + n_missing,
        )
        f.missing = m
        both = m.reference_missing + m.live_missing
        # No missing value anywhere, or nothing else: the margin leaves nothing to test (p would be 1).
        if (
            min(m.reference_rows, m.live_rows) >= config.min_samples
            and 0 < both < m.reference_rows + m.live_rows
        ):
            ready.append(m)
    if not ready:
        return
    p_values = missing_rate_test(
        np.array([m.reference_missing for m in ready]),
        np.array([m.reference_rows for m in ready]),
        np.array([m.live_missing for m in ready]),
        np.array([m.live_rows for m in ready]),
    )
    for m, p in zip(ready, p_values, strict=True):
        m.p_value = float(p)


def _optional(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def _missing_report(m: _Missing | None, adjusted: float, config: DriftConfig) -> MissingRate | None:
    if m is None:
        return None
    return MissingRate(
        reference_missing=m.reference_missing,
        reference_rows=m.reference_rows,
        live_missing=m.live_missing,
        live_rows=m.live_rows,
        p_value=_optional(m.p_value),
        adjusted_p_value=_optional(adjusted),
        drifted=bool(adjusted <= config.alpha),  # NaN (untested) compares false
    )


def _verdict(
    f: _Feature, adjusted: float, adjusted_missing: float, p_cut: float | None, config: DriftConfig
) -> FeatureDrift:
    threshold, threshold_on = None, None
    missing = _missing_report(f.missing, adjusted_missing, config)
    if f.message:
        verdict = Verdict.INSUFFICIENT
    elif config.threshold is not None:
        threshold, threshold_on = config.threshold, "score"
        verdict = Verdict.DRIFT if f.score > config.threshold else Verdict.NO_DRIFT
    else:
        threshold, threshold_on = p_cut, "p_value"
        big_enough = config.min_score is None or f.score >= config.min_score
        verdict = Verdict.DRIFT if adjusted <= config.alpha and big_enough else Verdict.NO_DRIFT
    message = f.message
    if missing is not None and missing.drifted:
        verdict = Verdict.DRIFT
        rose = (
            f"missing values rose from {missing.reference_rate:.1%} of {missing.reference_rows} reference rows "
            f"to {missing.live_rate:.1%} of {missing.live_rows} live rows (p={missing.p_value:.2g})"
        )
        message = f"{rose}; distribution not tested: {f.message}" if f.message else rose
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
        missing=missing,
        message=message,
    )


def evaluate(
    profile: DriftProfile,
    live_numeric_counts: Counts | None = None,
    live_categorical_counts: Counts | None = None,
    live_samples: Samples | None = None,
    config: DriftConfig | None = None,
    live_missing: Missing | None = None,
) -> DriftReport:
    """Judge one live window against the reference profile (see the module docstring).

    ``live_missing`` holds the window's missing values per feature (the server's ``missing`` counts);
    without it, or for a feature it leaves out, only the distribution is judged.
    """
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

    if live_missing is not None:
        _run_missing(features, profile, numeric_counts, categorical_counts, live_missing, config)

    for f in features:
        if not f.message and np.isnan(f.p_value):
            f.message = "the test is undefined for this window"
    # One family: the distribution tests and the missing-rate tests of this window.
    tested = [f for f in features if not f.message]
    gaps = [f for f in features if f.missing is not None and not np.isnan(f.missing.p_value)]
    raw = np.array([f.p_value for f in tested] + [f.missing.p_value for f in gaps if f.missing])
    family = adjust_pvalues(raw, config.correction)
    adjusted = dict(zip((f.name for f in tested), family[: len(tested)], strict=True))
    adjusted_missing = dict(zip((f.name for f in gaps), family[len(tested) :], strict=True))
    p_cut = float(critical_pvalue(raw, config.alpha, config.correction)) if raw.size else None
    verdicts = [
        _verdict(f, adjusted.get(f.name, np.nan), adjusted_missing.get(f.name, np.nan), p_cut, config)
        for f in features
    ]
    n_tested = sum(v.verdict != Verdict.INSUFFICIENT for v in verdicts)
    n_drifted = sum(v.verdict == Verdict.DRIFT for v in verdicts)
    share = n_drifted / n_tested if n_tested else 0.0
    if not n_tested:
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
        n_tested=n_tested,
        n_drifted=n_drifted,
        n_insufficient=len(features) - n_tested,
        drifted_share=share,
        n_live=max((max(f.n_live, f.missing.live_rows if f.missing else 0) for f in features), default=0),
        features=verdicts,
    )
