"""Checks of a TrainingRun spec that the CRD schema cannot express. Pure.

The API server has already enforced types, ranges, patterns and the CEL rules. What is left needs
knowledge the schema does not have: which metrics the trainer reports, which direction each metric goes,
Python keyword names, resource quantities compared with each other, a format that contradicts the file
name. Each problem names the field, in the wire (camelCase) spelling, so a user can fix it directly.
"""

from __future__ import annotations

import re

from pydantic import ValidationError

from kubeloop.api import TrainingRunSpec
from kubeloop.contract import CLASSIFICATION_METRICS, LOWER_IS_BETTER, REGRESSION_METRICS

KNOWN_METRICS = frozenset(CLASSIFICATION_METRICS) | frozenset(REGRESSION_METRICS)
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")
_SUFFIXES = {
    "": 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}


def parse_quantity(text: str) -> float | None:
    """A Kubernetes quantity as a number (e.g. 500m -> 0.5, 1Gi -> 2**30); None if unreadable."""
    match = _QUANTITY.match(str(text).strip())
    if not match or match.group(2) not in _SUFFIXES:
        return None
    try:
        return float(match.group(1)) * _SUFFIXES[match.group(2)]
    except ValueError:
        return None


def describe_validation_error(error: ValidationError, prefix: str = "spec") -> str:
    """`spec.training.estimator.classPath: String should match ...; spec.data: Field required`."""
    parts = []
    for item in error.errors():
        where = ".".join([prefix, *(str(p) for p in item["loc"])]) if item["loc"] else prefix
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def _metric_problem(field: str, metric: str) -> str | None:
    if metric in KNOWN_METRICS:
        return None
    known = ", ".join(sorted(KNOWN_METRICS))
    return f"{field}: {metric!r} is not a metric the trainer reports (it reports {known})"


def spec_problems(spec: TrainingRunSpec) -> list[str]:
    problems: list[str] = []
    for i, threshold in enumerate(spec.validation.thresholds):
        problem = _metric_problem(f"spec.validation.thresholds[{i}].metric", threshold.metric)
        if problem:
            problems.append(problem)
    champion = spec.validation.champion
    if champion is not None and champion.enabled:
        problem = _metric_problem("spec.validation.champion.metric", champion.metric)
        if problem:
            problems.append(problem)
        elif champion.higher_is_better == (champion.metric in LOWER_IS_BETTER):
            direction = "lower" if champion.metric in LOWER_IS_BETTER else "higher"
            problems.append(
                f"spec.validation.champion.higherIsBetter: {champion.metric} is better when {direction}, "
                f"so higherIsBetter must be {str(direction == 'higher').lower()}"
            )
    for key in spec.training.estimator.params:
        if not key.isidentifier():
            problems.append(f"spec.training.estimator.params: {key!r} is not a Python keyword argument name")
    resources = spec.training.resources
    if resources is not None:
        for name, request in resources.requests.items():
            limit = resources.limits.get(name)
            low, high = parse_quantity(request), parse_quantity(limit) if limit is not None else None
            if low is not None and high is not None and low > high:
                problems.append(
                    f"spec.training.resources.requests.{name}: the request {request} is more than "
                    f"the limit {limit}"
                )
    uri = spec.data.uri.lower().split("?", 1)[0]
    for suffix, implied in ((".parquet", "parquet"), (".csv", "csv"), (".csv.gz", "csv")):
        if uri.endswith(suffix) and spec.data.format != implied:
            problems.append(
                f"spec.data.format: {spec.data.format} does not match spec.data.uri, which ends in {suffix} "
                f"(set format: {implied})"
            )
    return problems
