"""Pure drift statistics and the reference drift profile (numpy, scipy and pydantic only)."""

from kubeloop.drift.profile import (
    CategoricalReference,
    DriftProfile,
    NumericReference,
    build_profile,
    count_categorical,
    count_numeric,
)

__all__ = [
    "CategoricalReference",
    "DriftProfile",
    "NumericReference",
    "build_profile",
    "count_categorical",
    "count_numeric",
]
