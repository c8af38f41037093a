"""Reading a Job and its pods, and the TrainingRun status transitions built from them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kubeloop.api import TrainingRunStatus, find_condition
from kubeloop.api import status as conditions
from kubeloop.contract import TrainerFailed, TrainerSucceeded, Violation, render_termination_message
from kubeloop.services import training_status as steps
from kubeloop.services.gates import GateDecision
from kubeloop.services.job_state import JobState, KilledByRuntime, job_state, trainer_report

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CLOCK = steps.Clock(T0, 3)

SUCCESS = TrainerSucceeded(
    artifact_uri="s3://a/ml/iris/run-1",
    digest="sha256:" + "2" * 64,
    task="classification",
    metrics={"accuracy": 0.97, "f1": 0.96},
    data_hash="sha256:" + "3" * 64,
    data_rows=150,
    train_rows=112,
    test_rows=38,
)


def pod(exit_code: int, message: str, finished: str, reason: str = "Completed") -> dict:
    terminated = {"exitCode": exit_code, "message": message, "finishedAt": finished, "reason": reason}
    return {"status": {"containerStatuses": [{"name": "trainer", "state": {"terminated": terminated}}]}}


def test_job_phases_follow_the_terminal_conditions_only():
    running = {"status": {"active": 1, "startTime": "2026-01-01T00:00:00Z"}}
    assert job_state(running) == JobState("Running", 1, start_time=T0)
    interim = {"status": {"active": 1, "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}]}}
    assert job_state(interim).phase == "Running"  # pods may still be terminating
    done = {
        "status": {
            "succeeded": 1,
            "startTime": "2026-01-01T00:00:00Z",
            "completionTime": "2026-01-01T00:00:09Z",
            "conditions": [{"type": "Complete", "status": "True"}],
        }
    }
    state = job_state(done)
    assert state.phase == "Succeeded" and state.completion_time - state.start_time == timedelta(seconds=9)
    failed = {
        "status": {
            "failed": 3,
            "conditions": [
                {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "too long"}
            ],
        }
    }
    assert job_state(failed) == JobState("Failed", 3, "DeadlineExceeded", "too long")


def test_the_report_is_the_deciding_pods_summary():
    bad = TrainerFailed(reason="DataUnavailable", message="s3://x missing")
    pods = [
        pod(5, render_termination_message(bad), "2026-01-01T00:00:05Z", "Error"),
        pod(1, "older failure", "2026-01-01T00:00:01Z", "Error"),
    ]
    assert trainer_report(pods, "Failed", "trainer") == bad
    ok = [pod(0, render_termination_message(SUCCESS), "2026-01-01T00:00:09Z"), *pods]
    assert trainer_report(ok, "Succeeded", "trainer") == SUCCESS
    crashed = [pod(137, "", "2026-01-01T00:00:05Z", "Error")]
    assert "137 (Error)" in trainer_report(crashed, "Failed", "trainer")
    logs = [pod(1, "Traceback ...\nMemoryError", "2026-01-01T00:00:05Z", "Error")]
    assert trainer_report(logs, "Failed", "trainer") == "Traceback ...\nMemoryError"
    assert trainer_report([], "Succeeded", "trainer") is None


def test_an_oom_killed_trainer_is_reported_as_such_with_its_limit_and_the_field_to_raise():
    killed = pod(
        137, "Traceback ... (the log's end, not why it stopped)", "2026-01-01T00:00:05Z", "OOMKilled"
    )
    killed["spec"] = {"containers": [{"name": "trainer", "resources": {"limits": {"memory": "64Mi"}}}]}
    report = trainer_report([killed], "Failed", "trainer")
    assert isinstance(report, KilledByRuntime) and report.reason == "OOMKilled"
    assert "(64Mi)" in report.message and "spec.training.resources.limits.memory" in report.message
    state = JobState("Failed", 1, "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    status = steps.trainer_failed(TrainingRunStatus(), CLOCK, report, state)
    assert cond(status, "Trained") == ("False", "OOMKilled")
    assert cond(status, "Succeeded") == ("False", "OOMKilled")
    assert "spec.training.resources" in status.message


def cond(status: TrainingRunStatus, type_: str):
    found = find_condition(status.conditions, type_)
    return (found.status, found.reason) if found else None


def test_a_successful_run_walks_every_step():
    status = steps.started(
        TrainingRunStatus(),
        CLOCK,
        job="r-train",
        config_map="r-task",
        image="img",
        champion=None,
        artifact_uri="s3://a",
    )
    assert cond(status, "Succeeded") == ("Unknown", "Running") and status.job_name == "r-train"
    assert status.start_time == T0
    decision = GateDecision(True, "accuracy 0.97 >= 0.9")
    status = steps.trained(status, CLOCK, SUCCESS, decision)
    assert cond(status, "DataValidated") == ("True", "DataValid")
    assert cond(status, "Trained") == ("True", "TrainingComplete")
    assert cond(status, "ModelValidated") == ("True", "GatePassed")
    assert not steps.is_finished(status)
    assert status.candidate_metrics == SUCCESS.metrics and status.artifact_digest == SUCCESS.digest
    status = steps.finish(steps.registered(status, CLOCK, name="iris-v1", version=1, stage="Staging"), CLOCK)
    assert steps.is_finished(status) and cond(status, "Succeeded") == ("True", "Succeeded")
    assert status.model_version == "iris-v1" and status.version == 1 and status.observed_generation == 3
    assert cond(status, "Ready") == ("True", "Succeeded") and cond(status, "Reconciling") is None


def test_a_failed_gate_ends_the_run_and_skips_registration():
    decision = GateDecision(False, "candidate accuracy 0.6 does not beat 0.9", reason="ChampionNotBeaten")
    status = steps.finish(steps.trained(TrainingRunStatus(), CLOCK, SUCCESS, decision), CLOCK)
    assert cond(status, "ModelValidated") == ("False", "ChampionNotBeaten")
    assert cond(status, "Succeeded") == ("False", "GateFailed")
    assert cond(status, "Registered") == ("False", "Skipped")
    assert "0.6" in status.message and status.completion_time == T0
    assert cond(status, "Stalled") == ("True", "GateFailed")


def test_a_failed_job_ends_with_the_trainers_own_words():
    report = TrainerFailed(
        reason="DataValidationFailed",
        message="the data failed the data gate with 1 violation(s): 150 rows, need 1000",
        violations=[Violation(check="min_rows", message="150 rows, need 1000", value=150, bound=1000)],
        violations_omitted=2,
    )
    state = JobState("Failed", 1, "PodFailurePolicy", "container trainer exited with 3")
    status = steps.trainer_failed(TrainingRunStatus(), CLOCK, report, state)
    assert cond(status, "DataValidated") == ("False", "DataInvalid")
    assert cond(status, "Succeeded") == ("False", "DataValidationFailed")
    message = find_condition(status.conditions, "Succeeded").message
    assert "150 rows, need 1000" in message and "2 more violations" in message
    assert status.gates[0].metric == "min_rows"
    assert cond(status, "ModelValidated") == ("False", "Skipped")


def test_a_job_that_died_without_a_summary_reports_the_job_and_the_log_tail():
    state = JobState("Failed", 1, "DeadlineExceeded", "Job was active longer than specified deadline")
    status = steps.trainer_failed(TrainingRunStatus(), CLOCK, "Killed", state)
    succeeded = find_condition(status.conditions, "Succeeded")
    assert succeeded.reason == "DeadlineExceeded"
    assert "longer than specified deadline" in succeeded.message and "Killed" in succeeded.message


def test_transitions_name_only_the_steps_that_changed():
    before = steps.started(
        TrainingRunStatus(), CLOCK, job="j", config_map="c", image="i", champion=None, artifact_uri="s3://a"
    )
    later = steps.Clock(T0 + timedelta(seconds=5), 3)
    same = steps.started(
        before, later, job="j", config_map="c", image="i", champion=None, artifact_uri="s3://a"
    )
    assert steps.transitions(before, same) == []
    after = steps.trained(before, later, SUCCESS, GateDecision(True, "ok"))
    assert [t.type for t in steps.transitions(before, after)] == [
        conditions.DATA_VALIDATED,
        conditions.TRAINED,
        conditions.MODEL_VALIDATED,
    ]


def test_invalid_spec_is_final_and_stalled():
    status = steps.finish(steps.invalid_spec(TrainingRunStatus(), "spec.x: bad", CLOCK), CLOCK)
    assert steps.is_finished(status) and cond(status, "Succeeded") == ("False", "InvalidSpec")
    assert cond(status, "Stalled") == ("True", "InvalidSpec") and cond(status, "Ready") == (
        "False",
        "InvalidSpec",
    )
    assert status.message == "invalid spec: spec.x: bad"
