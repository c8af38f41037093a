"""Pure drift statistics and the reference drift profile (numpy, scipy and pydantic only).

- :mod:`~kubeloop.drift.profile`: the reference profile the trainer writes and the server counts against.
- :mod:`~kubeloop.drift.binned`: PSI, Jensen-Shannon, chi-squared and KS from ``(features, bins)`` counts.
- :mod:`~kubeloop.drift.samples`: exact KS and Wasserstein-1 from ``(features, rows)`` samples.
- :mod:`~kubeloop.drift.decision`: p-values under "no drift" (the missing-rate test among them) and the
  multiple-testing control.
- :mod:`~kubeloop.drift.evaluate`: :func:`evaluate`, one window in, one :class:`DriftReport` out.
"""

from kubeloop.drift.binned import (
    ChiSquaredResult,
    chi2_test,
    js_distance,
    ks_distance,
    pool_sparse_bins,
    psi,
    stack_counts,
)
from kubeloop.drift.decision import (
    SAMPLE_ONLY_METHODS,
    adjust_pvalues,
    binned_test,
    critical_pvalue,
    missing_rate_test,
    sample_test,
)
from kubeloop.drift.evaluate import evaluate
from kubeloop.drift.profile import (
    CategoricalReference,
    DriftProfile,
    NumericReference,
    build_profile,
    count_categorical,
    count_numeric,
)
from kubeloop.drift.report import (
    Correction,
    DriftConfig,
    DriftMethod,
    DriftReport,
    FeatureDrift,
    MissingRate,
    Verdict,
)
from kubeloop.drift.samples import EcdfDistances, ecdf_distances, ks_pvalue, stack_samples, wasserstein_pvalue

__all__ = [
    "SAMPLE_ONLY_METHODS",
    "CategoricalReference",
    "ChiSquaredResult",
    "Correction",
    "DriftConfig",
    "DriftMethod",
    "DriftProfile",
    "DriftReport",
    "EcdfDistances",
    "FeatureDrift",
    "MissingRate",
    "NumericReference",
    "Verdict",
    "adjust_pvalues",
    "binned_test",
    "build_profile",
    "chi2_test",
    "count_categorical",
    "count_numeric",
    "critical_pvalue",
    "ecdf_distances",
    "evaluate",
    "js_distance",
    "ks_distance",
    "ks_pvalue",
    "missing_rate_test",
    "pool_sparse_bins",
    "psi",
    "sample_test",
    "stack_counts",
    "stack_samples",
    "wasserstein_pvalue",
]
