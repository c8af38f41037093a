"""Real model-server monitors (the server's own LiveMonitor and FeedbackJoiner) to produce snapshots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from kubeloop.contract import ClassPredictions, Feature, ModelSignature
from kubeloop.drift import DriftProfile, build_profile
from kubeloop_trainer.serve.feedback import FeedbackJoiner
from kubeloop_trainer.serve.monitor import LiveMonitor

FEATURES = ("x0", "x1", "x2")
SIGNATURE = ModelSignature(
    task="classification",
    target="y",
    target_type="string",
    features=[Feature(name=n, type="float") for n in FEATURES] + [Feature(name="colour", type="string")],
    classes=["no", "yes"],
    estimator="sklearn.linear_model.LogisticRegression",
)
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def profile() -> DriftProfile:
    rng = np.random.default_rng(0)
    n = 20_000
    return build_profile(
        {n_: rng.normal(size=n) for n_ in FEATURES},
        {"colour": rng.choice(["red", "green", "blue"], p=[0.5, 0.3, 0.2], size=n)},
        sample_size=1000,
    )


class Server:
    """One model server process: a LiveMonitor and a FeedbackJoiner, started at ``started_at``."""

    def __init__(self, profile: DriftProfile, *, started_at: datetime, reservoir: int = 200, seed: int = 0):
        self.monitor = LiveMonitor(
            model="m",
            version="1",
            digest="sha256:" + "0" * 64,
            signature=SIGNATURE,
            profile=profile,
            predictions=ClassPredictions(classes=["no", "yes"], counts=[1, 1]),
            reservoir_size=reservoir,
            flush_rows=64,
            seed=seed,
        )
        self.monitor.started_at = started_at
        self.feedback = FeedbackJoiner("classification")
        self.rng = np.random.default_rng(seed + 100)
        self._ids = 0

    def traffic(self, rows: int, *, shift: float = 0.0, correct: float | None = None) -> np.ndarray:
        """Serve ``rows`` rows (x0 shifted by ``shift``); with ``correct``, label them with that accuracy."""
        X = np.empty((rows, 4), dtype=object)
        for j in range(3):
            X[:, j] = self.rng.normal(shift if j == 0 else 0.0, size=rows)
        X[:, 3] = self.rng.choice(["red", "green", "blue"], p=[0.5, 0.3, 0.2], size=rows)
        predicted = np.where(self.rng.random(rows) < 0.5, "yes", "no")
        self.monitor.record(X, predicted, 0.001)
        if correct is not None:
            self._ids += 1
            rid = f"r{self._ids}"
            self.feedback.remember(rid, predicted)
            right = self.rng.random(rows) < correct
            labels = [
                p if ok else ("no" if p == "yes" else "yes") for p, ok in zip(predicted, right, strict=True)
            ]
            self.feedback.join(rid, labels)
        return X

    def snapshot(self):
        return self.monitor.snapshot(self.feedback.stats())


@pytest.fixture
def server(profile):
    def make(
        *, started_at: datetime = T0 - timedelta(hours=1), reservoir: int = 200, seed: int = 0
    ) -> Server:
        return Server(profile, started_at=started_at, reservoir=reservoir, seed=seed)

    return make
