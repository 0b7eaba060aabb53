"""controller/promotion.py pinned field by field: every value a Job's outcome, a termination
and a promotion decision carry ends up in a status, an Event or a log line (mutation-tested)."""

from __future__ import annotations

from typing import Any

import pytest

from modelops.artifacts import TrainingResult
from modelops.controller.promotion import (
    Decision,
    JobOutcome,
    Termination,
    decide_promotion,
    improvement,
    job_outcome,
    parse_result,
    promotion_metric,
    trainer_termination,
)


def condition(kind: str, status: str = "True", **fields: str) -> dict[str, str]:
    return {"type": kind, "status": status, **fields}


def test_a_complete_job_carries_its_reason_message_and_completion_time() -> None:
    job = {
        "status": {
            "completionTime": "2026-01-01T00:00:09Z",
            "conditions": [
                condition(
                    "Complete",
                    reason="CompletionsReached",
                    message="Reached expected number of succeeded pods",
                    lastTransitionTime="2026-01-01T00:00:08Z",
                )
            ],
        }
    }
    assert job_outcome(job) == JobOutcome(
        "succeeded",
        "CompletionsReached",
        "Reached expected number of succeeded pods",
        "2026-01-01T00:00:09Z",
    )


def test_a_complete_job_without_details_gets_the_defaults() -> None:
    job = {
        "status": {"conditions": [condition("Complete", lastTransitionTime="2026-01-01T00:00:08Z")]}
    }
    assert job_outcome(job) == JobOutcome("succeeded", "Completed", "", "2026-01-01T00:00:08Z")
    assert job_outcome({"status": {"conditions": [condition("Complete")]}}) == JobOutcome(
        "succeeded", "Completed", "", None
    )


def test_a_failed_job_carries_its_reason_message_and_transition_time() -> None:
    job = {
        "status": {
            "completionTime": "2026-01-01T00:00:09Z",  # not a Failed job's time
            "conditions": [
                condition(
                    "Failed",
                    reason="BackoffLimitExceeded",
                    message="Job has reached the specified backoff limit",
                    lastTransitionTime="2026-01-01T00:00:07Z",
                )
            ],
        }
    }
    assert job_outcome(job) == JobOutcome(
        "failed",
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
        "2026-01-01T00:00:07Z",
    )
    assert job_outcome({"status": {"conditions": [condition("Failed")]}}) == JobOutcome(
        "failed", "Failed", "", None
    )


def test_conditions_that_are_not_true_are_skipped_not_the_end() -> None:
    job = {
        "status": {
            "conditions": [
                condition("Suspended", status="False"),
                condition("Complete", status="False"),
                condition("Failed", reason="DeadlineExceeded"),
            ]
        }
    }
    assert job_outcome(job) == JobOutcome("failed", "DeadlineExceeded", "", None)
    pending = {"status": {"conditions": [condition("Complete", status="Unknown")]}}
    assert job_outcome(pending) == JobOutcome("running")
    assert job_outcome({"status": None}) == JobOutcome("running", "", "", None)
    assert job_outcome({"status": {"conditions": None}}) == JobOutcome("running")


def _pod(container: str, terminated: dict[str, Any] | None) -> dict[str, Any]:
    state = {"terminated": terminated} if terminated is not None else {"running": {}}
    return {"status": {"containerStatuses": [{"name": container, "state": state}]}}


def test_trainer_termination_reads_every_field_and_only_the_trainer() -> None:
    pods = [
        _pod("sidecar", {"exitCode": 9, "message": "side", "finishedAt": "2026-01-01T00:09:00Z"}),
        _pod("trainer", {"exitCode": 3, "message": "gate", "finishedAt": "2026-01-01T00:01:00Z"}),
        _pod("trainer", None),
        {"status": None},
        {"status": {"containerStatuses": None}},
        {"status": {"containerStatuses": [{"name": "trainer", "state": None}]}},
    ]
    assert trainer_termination(pods, "trainer") == Termination(3, "gate", "2026-01-01T00:01:00Z")
    assert trainer_termination(pods[2:], "trainer") is None


def test_the_trainer_is_found_after_a_sidecar_of_the_same_pod() -> None:
    pod = {
        "status": {
            "containerStatuses": [
                {"name": "istio-proxy", "state": {"running": {}}},
                {
                    "name": "trainer",
                    "state": {"terminated": {"exitCode": 0, "finishedAt": "2026-01-01T00:03:00Z"}},
                },
            ]
        }
    }
    assert trainer_termination([pod], "trainer") == Termination(0, "", "2026-01-01T00:03:00Z")


def test_a_termination_without_details_gets_the_defaults() -> None:
    assert trainer_termination([_pod("trainer", {"reason": "OOMKilled"})], "trainer") == (
        Termination(-1, "", "")
    )


def test_the_latest_of_several_terminations_wins_whatever_the_order() -> None:
    early = _pod("trainer", {"exitCode": 1, "message": "a", "finishedAt": "2026-01-01T00:01:00Z"})
    late = _pod("trainer", {"exitCode": 0, "message": "b", "finishedAt": "2026-01-01T00:02:00Z"})
    for pods in ([early, late], [late, early]):
        assert trainer_termination(pods, "trainer") == Termination(0, "b", "2026-01-01T00:02:00Z")


def test_parse_result_takes_the_json_after_whitespace_and_refuses_the_rest() -> None:
    message = '  {"version": "v2", "uri": "pvc://m/v2", "metrics": {"accuracy": 0.9}}\n'
    assert parse_result(message) == TrainingResult(
        version="v2", uri="pvc://m/v2", metrics={"accuracy": 0.9}
    )
    assert parse_result("error: {not json}") is None
    assert parse_result("{not json}") is None
    assert parse_result('{"uri": "no version"}') is None


@pytest.mark.parametrize(
    ("configured", "metrics", "expected"),
    [
        ("f1", {"accuracy": 0.9, "r2": 0.1}, "f1"),
        (None, {"accuracy": 0.9, "r2": 0.1}, "accuracy"),
        ("", {"r2": 0.1}, "r2"),
        (None, {"rmse": 1.0}, "accuracy"),
        (None, {}, "accuracy"),
    ],
)
def test_promotion_metric(configured: str | None, metrics: dict[str, float], expected: str) -> None:
    assert promotion_metric(configured, metrics) == expected


def test_improvement_direction() -> None:
    assert improvement("accuracy", 0.9, 0.8) == pytest.approx(0.1)
    for metric in ("log_loss", "mae", "rmse"):
        assert improvement(metric, 0.8, 0.9) == pytest.approx(0.1)


def training(candidate: float | None, baseline: float | None, metric: str = "accuracy") -> Any:
    return TrainingResult(
        version="v1-r2",
        uri="pvc://models/iris/v1-r2",
        metrics={} if candidate is None else {metric: candidate},
        baseline={} if baseline is None else {metric: baseline},
    )


def decide(result: TrainingResult, **kwargs: Any) -> Decision:
    args: dict[str, Any] = {
        "mode": "auto",
        "metric": None,
        "min_improvement": 0.0,
        "approved_version": None,
    }
    args.update(kwargs)
    return decide_promotion(result=result, **args)


def test_the_messages_of_every_decision() -> None:
    assert decide(training(0.9, 0.8), min_improvement=0.05) == Decision(
        "promote",
        "CandidatePromoted",
        "Promoted v1-r2: accuracy 0.9 vs 0.8, better by 0.1 (at least 0.05 needed).",
    )
    assert decide(training(0.82, 0.8), min_improvement=0.05) == Decision(
        "reject",
        "CandidateRejected",
        "Kept the current model: candidate v1-r2 scored accuracy 0.82 vs 0.8, better by 0.02; "
        "more than 0.05 needed.",
    )
    assert decide(training(None, 0.8)) == Decision(
        "reject",
        "CandidateRejected",
        "Kept the current model: the result has no accuracy score for the candidate.",
    )
    assert decide(training(0.9, None)) == Decision(
        "reject",
        "CandidateRejected",
        "Kept the current model: the result has no accuracy score for the current model.",
    )
    assert decide(training(0.9, 0.8), mode="manual", approved_version="v1-r2") == Decision(
        "promote", "CandidatePromoted", "Promoted v1-r2: approved."
    )
    assert decide(training(0.9, None), mode="manual", approved_version="v1-r1") == Decision(
        "await",
        "AwaitingApproval",
        "Candidate v1-r2 (accuracy 0.9 vs n/a) awaits approval: "
        "annotate the DriftPolicy with modelops.dev/approve=v1-r2.",
    )
    assert decide(training(None, 0.123456), mode="none") == Decision(
        "record", "CandidateRecorded", "Recorded candidate v1-r2 (accuracy n/a vs 0.1235)."
    )


def test_awaiting_and_recorded_candidates_show_both_scores() -> None:
    assert decide(training(0.9, 0.8), mode="manual") == Decision(
        "await",
        "AwaitingApproval",
        "Candidate v1-r2 (accuracy 0.9 vs 0.8) awaits approval: "
        "annotate the DriftPolicy with modelops.dev/approve=v1-r2.",
    )
    assert decide(training(0.9, 0.8), mode="none") == Decision(
        "record", "CandidateRecorded", "Recorded candidate v1-r2 (accuracy 0.9 vs 0.8)."
    )


def test_the_configured_metric_decides_and_lower_is_better_is_honoured() -> None:
    result = TrainingResult(
        version="v3",
        uri="pvc://m/v3",
        metrics={"accuracy": 0.5, "log_loss": 0.2},
        baseline={"accuracy": 0.9, "log_loss": 0.4},
    )
    decision = decide(result, metric="log_loss", min_improvement=0.1)
    assert decision.action == "promote"
    assert "log_loss 0.2 vs 0.4, better by 0.2" in decision.message
    assert decide(result, min_improvement=0.0).action == "reject"


@pytest.mark.parametrize(
    ("candidate", "baseline", "minimum", "action"),
    [
        (0.9, 0.9, 0.0, "reject"),  # equal is no improvement, even with no minimum
        (0.75, 0.5, 0.25, "promote"),  # exactly the minimum is enough (exact binary values)
        (0.75, 0.5, 0.2500001, "reject"),
        (0.7, 0.8, -1.0, "reject"),  # worse is never promoted
    ],
)
def test_the_promotion_threshold(
    candidate: float, baseline: float, minimum: float, action: str
) -> None:
    result = TrainingResult(
        version="v9",
        uri="pvc://m/v9",
        metrics={"accuracy": candidate},
        baseline={"accuracy": baseline},
    )
    assert decide(result, min_improvement=minimum).action == action
