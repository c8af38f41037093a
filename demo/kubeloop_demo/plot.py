"""The PNG at the end of the demo: drift evidence per feature and online accuracy over time, with the
story's milestones marked. matplotlib with the Agg backend (no display needed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from kubeloop_demo.observe import Window
from kubeloop_demo.traffic import Request

CAP = 20.0  # -log10 p is capped here: a p-value of 1e-300 says nothing more than 1e-20
BUCKET = 5.0  # seconds per accuracy point


def evidence(p_value: float | None) -> float | None:
    """-log10 p (capped), the height of drift evidence; None without a p-value."""
    if p_value is None:
        return None
    return CAP if p_value <= 10**-CAP else min(CAP, -math.log10(p_value))


def accuracy_series(
    requests: Sequence[Request], bucket: float = BUCKET
) -> dict[str, list[tuple[float, float]]]:
    """Online accuracy per version per `bucket` seconds: version -> [(bucket middle, accuracy)]."""
    sums: dict[str, dict[int, list[int]]] = {}
    for r in requests:
        if not r.ok or not r.rows:
            continue
        slot = sums.setdefault(r.version or "?", {}).setdefault(int(r.time // bucket), [0, 0])
        slot[0] += r.correct
        slot[1] += r.rows
    return {
        version: [((i + 0.5) * bucket, c / n) for i, (c, n) in sorted(slots.items())]
        for version, slots in sorted(sums.items())
    }


def write_plot(
    path: Path,
    windows: Sequence[Window],
    requests: Sequence[Request],
    milestones: Mapping[str, float],
    title: str,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (drift_ax, accuracy_ax) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    features = sorted({name for w in windows for name in w.features})
    for name in features:
        points = [(w.time, evidence(w.features[name].p_value)) for w in windows if name in w.features]
        points = [(t, v) for t, v in points if v is not None]
        if points:
            drift_ax.plot(*zip(*points, strict=True), marker="o", label=name)
    thresholds = [
        f.threshold
        for w in windows
        for f in w.features.values()
        if f.threshold is not None and 0 < f.threshold < 1
    ]
    if thresholds:
        drift_ax.axhline(-math.log10(min(thresholds)), color="grey", linestyle="--", label="drift threshold")
    drift_ax.set_ylabel(f"drift evidence\n-log10 p (capped at {CAP:g})")
    if drift_ax.get_legend_handles_labels()[0]:
        drift_ax.legend(loc="upper left", fontsize="small")
    drift_ax.set_title(title)

    for version, points in accuracy_series(requests).items():
        accuracy_ax.plot(*zip(*points, strict=True), marker=".", label=f"served by v{version}")
    labelled = [(w.time, w.accuracy) for w in windows if w.accuracy is not None]
    if labelled:
        accuracy_ax.plot(*zip(*labelled, strict=True), "k^", label="DriftMonitor window (feedback labels)")
    accuracy_ax.set_ylabel("online accuracy")
    accuracy_ax.set_ylim(0, 1.05)
    accuracy_ax.set_xlabel("seconds since the demo started")
    if accuracy_ax.get_legend_handles_labels()[0]:
        accuracy_ax.legend(loc="lower left", fontsize="small")

    for i, (name, when) in enumerate(sorted(milestones.items(), key=lambda item: item[1])):
        for ax in (drift_ax, accuracy_ax):
            ax.axvline(when, color="tab:red" if "shift" in name else "tab:grey", alpha=0.4, linewidth=1)
        # staggered, so that milestones a few seconds apart stay readable
        drift_ax.annotate(
            name,
            (when, 0.97 - 0.14 * (i % 4)),
            xycoords=("data", "axes fraction"),
            ha="left",
            va="top",
            fontsize=7,
            color="tab:red" if "shift" in name else "dimgrey",
        )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
