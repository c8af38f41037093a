"""The typed vocabulary of a drift check: methods, verdicts, the configuration, and the report."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Correction",
    "DriftConfig",
    "DriftMethod",
    "DriftReport",
    "FeatureDrift",
    "MissingRate",
    "Verdict",
]


class DriftMethod(StrEnum):
    """The DriftMonitor's ``method`` enum. ``Auto`` picks per feature; a report never shows ``Auto``."""

    AUTO = "Auto"
    PSI = "PSI"
    KS = "KS"
    CHI_SQUARED = "ChiSquared"
    WASSERSTEIN = "Wasserstein"
    JENSEN_SHANNON = "JensenShannon"


class Verdict(StrEnum):
    DRIFT = "Drift"
    NO_DRIFT = "NoDrift"
    INSUFFICIENT = "InsufficientData"  # too few rows to tell: never to be read as "no drift"


class Correction(StrEnum):
    """Multiple-testing control across the features of one check."""

    BONFERRONI = "Bonferroni"  # family-wise error rate <= alpha: P(any false alarm in a window) <= alpha
    BENJAMINI_HOCHBERG = "BenjaminiHochberg"  # false discovery rate <= alpha; more power with many drifts
    NONE = "None"  # each feature at alpha: expect alpha x features false alarms per window


class DriftConfig(BaseModel):
    """How a window is judged. The defaults give about ``alpha`` false alarms per window at any size."""

    model_config = ConfigDict(frozen=True)

    method: DriftMethod = Field(DriftMethod.AUTO, description="Statistic and test to use.")
    alpha: float = Field(0.01, gt=0.0, lt=1.0, description="Target false-alarm rate of one window.")
    correction: Correction = Field(Correction.BONFERRONI, description="Multiple-testing control.")
    min_samples: int = Field(
        100,
        ge=1,
        description="Rows needed on each side of a feature; below it the verdict is InsufficientData.",
    )
    threshold: float | None = Field(
        None,
        description="Fixed score cut (drift when score > threshold) instead of the p-value rule. Not "
        "sample-size aware: a PSI cut alarms on small windows and misses real drift on large ones.",
    )
    min_score: float | None = Field(
        None,
        description="Effect-size floor: a significant feature only counts as drifted when its score is at "
        "least this. Use it to ignore differences that are real but too small to matter.",
    )
    min_drifted_share: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="The dataset drifts when at least one feature drifts and drifted / tested features "
        "reaches this share (0: any drifted feature).",
    )
    min_expected: float = Field(
        5.0, ge=0.0, description="Bins with a smaller expected count are pooled before binned tests."
    )
    psi_pseudo_count: float = Field(0.5, ge=0.0, description="Added to every bin before PSI.")
    features: list[str] | None = Field(None, description="Features to check (default: all in the profile).")


class MissingRate(BaseModel):
    """Missing values of one feature, reference against live, and whether their share rose significantly."""

    reference_missing: int = Field(ge=0, description="Reference rows without a value.")
    reference_rows: int = Field(ge=0, description="Reference rows.")
    live_missing: int = Field(ge=0, description="Live rows without a value.")
    live_rows: int = Field(ge=0, description="Live rows (with and without a value).")
    p_value: float | None = Field(
        None,
        description="One-sided p-value of a rise (Fisher's exact test); None when not tested: too few rows, "
        "or no missing value on either side.",
    )
    adjusted_p_value: float | None = Field(None, description="p-value after the multiple-testing control.")
    drifted: bool = Field(False, description="Whether the rise is significant at the window's alpha.")

    @property
    def reference_rate(self) -> float:
        return self.reference_missing / self.reference_rows if self.reference_rows else 0.0

    @property
    def live_rate(self) -> float:
        return self.live_missing / self.live_rows if self.live_rows else 0.0


class FeatureDrift(BaseModel):
    """The verdict on one feature: its distribution, and the share of its values that are missing."""

    name: str
    kind: Literal["numeric", "categorical"]
    method: DriftMethod = Field(description="The method actually used (never Auto).")
    verdict: Verdict
    score: float | None = Field(
        None,
        description="The statistic; None when not computed. Wasserstein is in reference standard deviations.",
    )
    p_value: float | None = Field(None, description="Raw p-value under 'no drift'.")
    adjusted_p_value: float | None = Field(None, description="p-value after the multiple-testing control.")
    n_reference: int = Field(description="Reference rows (counts) or reference sample size.")
    n_live: int = Field(description="Live rows (counts) or live sample size.")
    threshold: float | None = Field(
        None,
        description="The cut the verdict used: the fixed score cut when one is set (drift when score > it), "
        "otherwise the raw p-value cut after the multiple-testing control (drift when p-value <= it).",
    )
    threshold_on: Literal["score", "p_value"] | None = Field(None, description="What `threshold` applies to.")
    missing: MissingRate | None = Field(
        None, description="The missing-value test; None when the window brought no missing counts."
    )
    message: str = Field(
        "",
        description="Why the verdict is InsufficientData, or that the feature drifted on missing values.",
    )


class DriftReport(BaseModel):
    """The verdict on one window."""

    verdict: Verdict = Field(description="Dataset verdict; InsufficientData when no feature could be tested.")
    method: DriftMethod = Field(description="The method requested.")
    alpha: float
    correction: Correction
    n_tested: int
    n_drifted: int
    n_insufficient: int
    drifted_share: float = Field(description="Drifted / tested features (0 when none was tested).")
    n_live: int = Field(
        description="Largest live row count over the features (with the missing values, when they are known)."
    )
    features: list[FeatureDrift]

    def feature(self, name: str) -> FeatureDrift:
        return next(f for f in self.features if f.name == name)
