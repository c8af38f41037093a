from datetime import UTC, datetime

from kubeloop.contract import (
    ClassPredictions,
    DataFingerprint,
    Feature,
    Lineage,
    MetricsReport,
    ModelSignature,
    SplitInfo,
    render_model_card,
)
from kubeloop.drift.profile import build_profile


def test_model_card_shows_data_params_metrics_and_lineage():
    import numpy as np

    profile = build_profile({"x": np.arange(100.0)}, {"c": np.array(["a", "b"] * 50, dtype=object)})
    card = render_model_card(
        signature=ModelSignature(
            task="classification",
            target="y",
            target_type="int",
            features=[Feature(name="x", type="float"), Feature(name="c", type="string")],
            classes=[0, 1],
            estimator="sklearn.linear_model.LogisticRegression",
            params={"C": 0.5},
        ),
        metrics=MetricsReport(
            task="classification",
            candidate={"accuracy": 0.91234567, "f1": 0.8},
            champion={"accuracy": 0.85},
            champion_version="4",
            split=SplitInfo(test_size=0.2, seed=7, stratified=True, train_rows=80, test_rows=20),
            predictions=ClassPredictions(classes=["0", "1"], counts=[10, 10]),
        ),
        data=DataFingerprint(
            uri="s3://d/x.csv", format="csv", sha256="sha256:abc", size=10, rows=100, columns=["x"]
        ),
        lineage=Lineage(
            model="churn", training_run="churn-7", namespace="ml", trigger="drift", estimator="e"
        ),
        profile=profile,
        created=datetime(2024, 5, 1, tzinfo=UTC),
    )
    assert card.startswith("# Model card: churn")
    assert '"C": 0.5' in card
    assert "sha256:abc" in card
    assert "| accuracy | 0.912346 | 0.85 |" in card
    assert "| f1 | 0.8 | — |" in card
    assert "| c | string | 2 categories |" in card
    assert "ml/churn-7" in card and "Trigger: drift" in card
    assert "80 train / 20 test" in card and "seed 7" in card
