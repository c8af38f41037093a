"""The demo's data and custom resources: what the story relies on, checked without a cluster."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from kubeloop.api import DriftMonitor, TrainingRun
from kubeloop_demo import manifests
from kubeloop_demo.config import DemoConfig
from kubeloop_demo.data import FEATURES, TARGET, iris


def test_iris_and_its_shift():
    world = iris()
    assert world.features.shape == (150, 4) and sorted(set(world.labels.tolist())) == [0, 1, 2]
    moved = world.shifted("petal_width", 0.6)
    column = FEATURES.index("petal_width")
    np.testing.assert_allclose(moved.features[:, column], world.features[:, column] + 0.6)
    others = [i for i in range(4) if i != column]
    np.testing.assert_array_equal(moved.features[:, others], world.features[:, others])
    np.testing.assert_array_equal(moved.labels, world.labels)
    assert "petal_width +0.6" in moved.label


def test_csv_round_trips_and_passes_its_own_gate():
    world = iris().shifted("petal_width", 0.6)
    frame = pd.read_csv(io.BytesIO(world.to_csv()))
    assert list(frame.columns) == [*FEATURES, TARGET]
    np.testing.assert_allclose(frame[list(FEATURES)].to_numpy(), world.features)
    gate = manifests.training_run_spec(DemoConfig(), "s3://b/k.csv").data.validation
    assert len(frame) >= gate.min_rows
    for name, bounds in gate.ranges.items():
        assert bounds.min <= frame[name].min() and frame[name].max() <= bounds.max


def test_sample_draws_existing_rows():
    world = iris()
    rows, labels = world.sample(np.random.default_rng(0), 64)
    assert rows.shape == (64, 4) and labels.shape == (64,)
    known = {(*tuple(r), int(y)) for r, y in zip(world.features, world.labels, strict=True)}
    assert all((*tuple(r), int(y)) in known for r, y in zip(rows, labels, strict=True))


def test_training_run_manifest_is_a_valid_training_run():
    config = DemoConfig()
    manifest = manifests.training_run(config, "iris-initial", "s3://kubeloop/datasets/iris/initial.csv")
    run = TrainingRun.model_validate(manifest)
    assert manifest["metadata"] == {
        "name": "iris-initial",
        "namespace": config.namespace,
        "labels": {manifests.DEMO_LABEL: config.cluster},
    }
    assert run.spec.promotion.policy == "Auto"
    assert [s.weight for s in run.spec.promotion.canary.steps] == [w for w, _ in config.canary_steps]
    assert manifest["spec"]["promotion"]["canary"]["steps"][0]["interval"] == "12s"
    assert run.spec.validation.champion is not None and run.spec.validation.champion.metric == "accuracy"
    assert run.spec.promotion.canary.analysis.min_online_accuracy == config.canary_min_online_accuracy


def test_drift_monitor_retrains_on_drift_only_by_cloning_onto_fresh_data():
    config = DemoConfig()
    manifest = manifests.drift_monitor(config, "s3://kubeloop/datasets/iris/fresh.csv")
    monitor = DriftMonitor.model_validate(manifest)
    assert monitor.spec.interval.total_seconds() == 10
    policy = monitor.spec.retrain
    assert policy.on_drift and not policy.on_performance
    assert policy.clone is not None and policy.clone.data_uri == "s3://kubeloop/datasets/iris/fresh.csv"
    assert monitor.spec.consecutive_windows == config.consecutive_windows


def test_min_samples_fits_the_reference_profile():
    """The monitor needs min_samples rows on both sides; the reference is the training split of iris. A larger
    min_samples makes every window InsufficientData, and the story never sees drift."""
    config = DemoConfig()
    spec = manifests.training_run_spec(config, "s3://b/k.csv")
    train_rows = int(len(iris().labels) * (1 - spec.training.test_size))
    assert config.min_samples <= train_rows
    rows_per_window = config.request_rate * config.rows_per_request * 10  # monitor_interval 10s
    assert rows_per_window >= 2 * config.min_samples


@pytest.mark.parametrize("field", ["shift_feature"])
def test_the_shifted_feature_exists(field):
    assert getattr(DemoConfig(), field) in FEATURES
