import json

import pytest
from kubeloop.contract import (
    EXIT_CODES,
    PERMANENT_FAILURES,
    TERMINATION_MESSAGE_LIMIT,
    TrainerFailed,
    TrainerSucceeded,
    Violation,
    parse_termination_message,
    permanent_exit_codes,
    render_termination_message,
)
from pydantic import ValidationError


def _success(**kw) -> TrainerSucceeded:
    base = dict(
        artifact_uri="s3://bucket/ns/model/run",
        digest="sha256:" + "a" * 64,
        task="classification",
        metrics={"accuracy": 0.95, "f1": 0.9},
        data_hash="sha256:" + "b" * 64,
        data_rows=100,
        train_rows=75,
        test_rows=25,
    )
    base.update(kw)
    return TrainerSucceeded(**base)


def test_success_round_trips():
    summary = _success(champion_metrics={"accuracy": 0.9})
    text = render_termination_message(summary)
    assert json.loads(text)["championMetrics"] == {"accuracy": 0.9}
    assert parse_termination_message(text) == summary


def test_failure_round_trips_with_violations():
    failure = TrainerFailed(
        reason="DataValidationFailed",
        message="2 violations",
        violations=[
            Violation(check="missing_column", column="age", message="column 'age' is missing"),
            Violation(check="null_fraction", column="x", message="too many nulls", value=0.5, bound=0.1),
        ],
        data_hash="sha256:00",
    )
    parsed = parse_termination_message(render_termination_message(failure))
    assert isinstance(parsed, TrainerFailed)
    assert parsed == failure
    assert parsed.exit_code == 3


def test_many_violations_are_cut_to_the_limit_and_counted():
    violations = [
        Violation(
            check="range",
            column=f"column_{i}",
            message=f"column 'column_{i}': 3 values below min 0 " + "x" * 80,
        )
        for i in range(200)
    ]
    failure = TrainerFailed(reason="DataValidationFailed", message="many", violations=violations)
    text = render_termination_message(failure)
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    parsed = parse_termination_message(text)
    assert isinstance(parsed, TrainerFailed)
    assert 0 < len(parsed.violations) < 200
    assert len(parsed.violations) + parsed.violations_omitted == 200
    # the kept ones are the first ones, in order
    assert [v.column for v in parsed.violations] == [f"column_{i}" for i in range(len(parsed.violations))]


def test_a_huge_message_is_shortened_not_cut_mid_json():
    failure = TrainerFailed(reason="TrainingFailed", message="é" * 10_000)
    text = render_termination_message(failure)
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    parsed = parse_termination_message(text)
    assert parsed.message.endswith("…")


def test_exit_codes_are_distinct_and_permanent_ones_known():
    assert len(set(EXIT_CODES.values())) == len(EXIT_CODES)
    assert 0 not in EXIT_CODES.values()
    assert permanent_exit_codes() == sorted(EXIT_CODES[r] for r in PERMANENT_FAILURES)
    assert EXIT_CODES["DataValidationFailed"] in permanent_exit_codes()
    assert EXIT_CODES["DataUnavailable"] not in permanent_exit_codes()


def test_garbage_is_not_a_summary():
    with pytest.raises(ValidationError):
        parse_termination_message('{"status": "Maybe"}')
    with pytest.raises(ValidationError):
        parse_termination_message("Error: OOMKilled")


def test_an_ascii_message_keeps_most_of_the_budget():
    failure = TrainerFailed(reason="TrainingFailed", message="x" * 10_000)
    text = render_termination_message(failure)
    assert 3500 < len(text.encode()) <= TERMINATION_MESSAGE_LIMIT


def test_escaped_characters_still_fit():
    failure = TrainerFailed(reason="TrainingFailed", message='"\n\x01' * 5000)
    text = render_termination_message(failure)
    assert len(text.encode()) <= TERMINATION_MESSAGE_LIMIT
    assert parse_termination_message(text).message.endswith("…")
