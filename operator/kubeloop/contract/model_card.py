"""``model_card.md``: a human-readable account of one artifact (data, parameters, metrics, lineage).

Rendered from the same documents that the artifact stores as JSON, so the card can never disagree with
them. It is for people; programs read the JSON files.
"""

from __future__ import annotations

import json
from datetime import datetime

from kubeloop.contract.manifest import DataFingerprint, Lineage
from kubeloop.contract.metrics import MetricsReport
from kubeloop.contract.signature import ModelSignature
from kubeloop.drift.profile import DriftProfile


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"


def _metrics_table(metrics: MetricsReport) -> list[str]:
    champion = metrics.champion or {}
    names = list(metrics.candidate) + [m for m in champion if m not in metrics.candidate]
    if metrics.champion is None:
        rows = ["| metric | candidate |", "|---|---|"]
        rows += [f"| {m} | {_fmt(metrics.candidate.get(m))} |" for m in names]
        return rows
    rows = ["| metric | candidate | champion |", "|---|---|---|"]
    rows += [f"| {m} | {_fmt(metrics.candidate.get(m))} | {_fmt(champion.get(m))} |" for m in names]
    return rows


def render_model_card(
    *,
    signature: ModelSignature,
    metrics: MetricsReport,
    data: DataFingerprint,
    lineage: Lineage,
    profile: DriftProfile,
    created: datetime,
) -> str:
    """The markdown model card."""
    lines = [
        f"# Model card: {lineage.model}",
        "",
        f"- Task: {signature.task}, target `{signature.target}` ({signature.target_type})",
        f"- Estimator: `{signature.estimator}`",
        f"- Created: {created.isoformat()}",
        "",
        "## Parameters",
        "",
        "```json",
        json.dumps(signature.params, indent=2, sort_keys=True, default=str),
        "```",
        "",
        "## Data",
        "",
        f"- URI: `{data.uri}` ({data.format}, {data.size} bytes)",
        f"- Content hash: `{data.sha256}`",
        f"- Rows: {data.rows}; split: {metrics.split.train_rows} train / {metrics.split.test_rows} test "
        f"(test size {metrics.split.test_size}, seed {metrics.split.seed}, "
        f"{'stratified' if metrics.split.stratified else 'not stratified'})",
        "",
        "| feature | type | reference profile |",
        "|---|---|---|",
    ]
    for feature in signature.features:
        if feature.name in profile.numeric:
            ref = profile.numeric[feature.name]
            desc = f"{len(ref.counts)} quantile bins"
        elif feature.name in profile.categorical:
            desc = f"{len(profile.categorical[feature.name].categories)} categories"
        else:
            desc = "—"
        lines.append(f"| {_cell(feature.name)} | {feature.type} | {desc} |")
    if signature.classes is not None:
        lines += ["", "Classes: " + ", ".join(f"`{_cell(c)}`" for c in signature.classes)]
    lines += ["", "## Metrics (held-out split)", "", *_metrics_table(metrics)]
    if metrics.champion_version:
        lines += ["", f"Champion: version {metrics.champion_version}, evaluated on the same split."]
    if metrics.champion_error:
        lines += ["", f"Champion not evaluated: {_cell(metrics.champion_error)}"]
    lines += [
        "",
        "## Lineage",
        "",
        f"- Model: {lineage.model}",
        f"- TrainingRun: {lineage.namespace or '—'}/{lineage.training_run or '—'}",
        f"- Trigger: {lineage.trigger or '—'}",
        f"- Trainer image: {lineage.image or '—'}",
        "",
    ]
    return "\n".join(lines)
