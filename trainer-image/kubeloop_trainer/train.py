"""The ``train`` entrypoint: task -> data -> gate -> split -> fit -> evaluate -> artifact -> summary."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from kubeloop.contract import (
    DRIFT_PROFILE_FILE,
    METRICS_FILE,
    MODEL_CARD_FILE,
    MODEL_FILE,
    SIGNATURE_FILE,
    ChampionRef,
    Feature,
    Lineage,
    MetricsReport,
    ModelSignature,
    SplitInfo,
    TaskKind,
    TrainerSucceeded,
    TrainerTask,
    Violation,
    render_model_card,
)
from kubeloop.drift.profile import DriftProfile, build_profile
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import InvalidParameterError

from kubeloop_trainer.allowlist import allowed_modules
from kubeloop_trainer.artifact import ArtifactError, read_artifact, write_artifact
from kubeloop_trainer.data import load_data
from kubeloop_trainer.errors import TrainerError
from kubeloop_trainer.estimators import build_estimator
from kubeloop_trainer.evaluate import prediction_reference, score
from kubeloop_trainer.features import feature_list, feature_matrix, wrap_estimator
from kubeloop_trainer.gate import check_data, infer_type, learner_of
from kubeloop_trainer.progress import progress
from kubeloop_trainer.safe_model import dump_model
from kubeloop_trainer.split import RowGroups, row_groups, split_rows
from kubeloop_trainer.storage import StorageError


def _target(frame: pd.DataFrame, target: str, task: TaskKind) -> np.ndarray:
    series = frame[target]
    if task == "regression":
        if infer_type(series) not in ("int", "float"):
            message = f"target column {target!r} is not numeric, but the estimator is a regressor"
            raise TrainerError(
                "DataValidationFailed", message, [Violation(check="target", column=target, message=message)]
            )
        return series.to_numpy(dtype=float)
    if infer_type(series) == "float":
        return series.to_numpy(dtype=float)
    return series.to_numpy()


def _report_groups(groups: RowGroups) -> None:
    if groups.column:
        progress(f"{groups.n_groups} groups in {groups.column!r}; each stays on one side of the split")
    if not groups.duplicates:
        return
    found = f"found {groups.duplicates} duplicate rows (copies of {groups.repeated} distinct rows)"
    if groups.column:
        progress(f"{found}; copies share their group")
    else:
        progress(
            f"{found}: {groups.copies} repeat a row with a value found in no other row and stay on its "
            f"side of the split; {groups.duplicates - groups.copies} repeat only recurring values and "
            "split freely"
        )


def _fit(model: BaseEstimator, X: np.ndarray, y: np.ndarray, class_path: str) -> BaseEstimator:
    try:
        return model.fit(X, y)
    except InvalidParameterError as e:
        raise TrainerError("EstimatorRejected", f"bad parameters for {class_path}: {e}") from e
    except (ValueError, TypeError, ArithmeticError, MemoryError) as e:
        raise TrainerError("TrainingFailed", f"{class_path}.fit failed: {type(e).__name__}: {e}") from e


def evaluate_champion(
    ref: ChampionRef,
    task: TaskKind,
    test_frame: pd.DataFrame,
    y_test: np.ndarray,
    allowed: tuple[str, ...],
    env: Mapping[str, str] | None,
) -> tuple[dict[str, float] | None, str | None]:
    """The champion's metrics on the candidate's held-out rows, or why there are none.

    A champion that cannot be evaluated does not fail the run: the run reports why, and the operator's
    champion gate decides what a missing comparison means.
    """
    try:
        champion = read_artifact(ref.artifact_uri, allowed, expected_digest=ref.digest, env=env)
    except (ArtifactError, StorageError, OSError) as e:
        return None, f"champion artifact unusable: {e}"
    if champion.signature.task != task:
        return None, f"the champion is a {champion.signature.task} model, the candidate a {task} model"
    missing = [f.name for f in champion.signature.features if f.name not in test_frame.columns]
    if missing:
        return None, f"the data lacks the champion's features {missing}"
    X = feature_matrix(test_frame, champion.signature.features)
    try:
        return score(task, champion.model, X, y_test), None
    except Exception as e:  # the champion's own model failing must not fail the candidate's run
        return None, f"the champion failed on the held-out split: {type(e).__name__}: {e}"


def _profile(frame: pd.DataFrame, features: list[Feature], task: TrainerTask) -> DriftProfile:
    numeric = {
        f.name: frame[f.name].to_numpy(dtype=float, na_value=np.nan) for f in features if f.kind == "numeric"
    }
    categorical = {
        f.name: np.array([None if pd.isna(v) else str(v) for v in frame[f.name]], dtype=object)
        for f in features
        if f.kind == "categorical"
    }
    return build_profile(
        numeric,
        categorical,
        n_bins=task.profile.n_bins,
        sample_size=task.profile.sample_size,
        seed=task.seed,
        max_categories=task.profile.max_categories,
    )


def run_training(task: TrainerTask, env: Mapping[str, str] | None = None) -> TrainerSucceeded:
    """Run one training task to its artifact; raises TrainerError on any failure the user can act on."""
    allowed = allowed_modules(env)
    class_path = task.estimator.class_path
    progress(f"model {task.model}: estimator {class_path}, data {task.data.uri} ({task.data.format})")
    # Refuse a bad estimator before spending time on the data.
    estimator, kind = build_estimator(task.estimator, task.seed, allowed)
    progress(f"estimator accepted: {kind}")

    loaded = load_data(task.data, env)
    frame, fingerprint = loaded.frame, loaded.fingerprint
    progress(
        f"read {fingerprint.rows} rows, {len(frame.columns)} columns, "
        f"{fingerprint.size} bytes ({fingerprint.sha256})"
    )
    violations = check_data(frame, task.data, learner_of(estimator, kind, class_path))
    if violations:
        raise TrainerError(
            "DataValidationFailed",
            f"the data failed the data gate with {len(violations)} violation(s): "
            + "; ".join(v.message for v in violations),
            violations,
            data_hash=fingerprint.sha256,
        )
    progress("data gate passed")

    try:
        declared = task.data.validation.expected_columns if task.data.validation else {}
        features = feature_list(frame, task.data.target, declared, task.data.group_column)
        X = feature_matrix(frame, features)
        y = _target(frame, task.data.target, kind)
        groups = row_groups(frame, task.data.group_column)
        _report_groups(groups)
        split = split_rows(y, kind, task.test_size, task.seed, groups.codes)
    except TrainerError as e:
        e.data_hash = fingerprint.sha256
        raise
    how = "stratified" if split.stratified else "random"
    whole = f", whole groups of {groups.column!r}" if groups.column else ""
    progress(
        f"split {len(split.train)} train / {len(split.test)} test rows "
        f"({how}{whole}, seed {task.seed}); {len(features)} features"
    )

    model = _fit(wrap_estimator(estimator, features), X[split.train], y[split.train], class_path)
    metrics = score(kind, model, X[split.test], y[split.test])
    progress("candidate: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))

    champion_metrics, champion_error = None, None
    if task.champion is not None:
        test_frame = frame.iloc[split.test].reset_index(drop=True)
        champion_metrics, champion_error = evaluate_champion(
            task.champion, kind, test_frame, y[split.test], allowed, env
        )
        if champion_metrics is not None:
            progress("champion: " + ", ".join(f"{k}={v:.4f}" for k, v in champion_metrics.items()))
        else:
            progress(f"champion not evaluated: {champion_error}")

    profile = _profile(frame.iloc[split.train], features, task)
    classes = np.asarray(model.classes_).tolist() if kind == "classification" else None
    signature = ModelSignature(
        task=kind,
        target=task.data.target,
        target_type=declared.get(task.data.target) or infer_type(frame[task.data.target]) or "string",
        features=features,
        classes=classes,
        estimator=class_path,
        params=task.estimator.params,
        probabilities=hasattr(model, "predict_proba"),
    )
    report = MetricsReport(
        task=kind,
        candidate=metrics,
        champion=champion_metrics,
        champion_version=task.champion.version if task.champion else None,
        champion_error=champion_error,
        split=SplitInfo(
            test_size=task.test_size,
            seed=task.seed,
            stratified=split.stratified,
            train_rows=len(split.train),
            test_rows=len(split.test),
        ),
        predictions=prediction_reference(kind, model, X[split.test], y[split.train], task.profile.n_bins),
    )
    lineage = Lineage(
        model=task.model,
        training_run=task.training_run,
        namespace=task.namespace,
        trigger=task.trigger,
        image=task.image,
        estimator=class_path,
        params=task.estimator.params,
    )
    created = datetime.now(UTC)
    card = render_model_card(
        signature=signature,
        metrics=report,
        data=fingerprint,
        lineage=lineage,
        profile=profile,
        created=created,
    )
    contents = {
        MODEL_FILE: dump_model(model),
        SIGNATURE_FILE: signature.model_dump_json(indent=2).encode(),
        METRICS_FILE: report.model_dump_json(indent=2).encode(),
        DRIFT_PROFILE_FILE: profile.model_dump_json().encode(),
        MODEL_CARD_FILE: card.encode(),
    }
    progress(f"writing the artifact to {task.artifact_uri}")
    try:
        manifest = write_artifact(
            task.artifact_uri, contents, data=fingerprint, lineage=lineage, created=created, env=env
        )
    except StorageError as e:
        raise TrainerError("InvalidTask", str(e), data_hash=fingerprint.sha256) from e
    except OSError as e:
        raise TrainerError(
            "ArtifactWriteFailed", f"could not write {task.artifact_uri}: {e}", data_hash=fingerprint.sha256
        ) from e
    progress(f"artifact written: {manifest.digest}")
    return TrainerSucceeded(
        artifact_uri=task.artifact_uri,
        digest=manifest.digest,
        task=kind,
        metrics=metrics,
        champion_metrics=champion_metrics,
        champion_error=champion_error,
        data_hash=fingerprint.sha256,
        data_rows=fingerprint.rows,
        train_rows=len(split.train),
        test_rows=len(split.test),
    )
