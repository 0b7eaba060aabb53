"""Reading a Job's outcome and deciding a promotion (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from modelops.artifacts import TrainingResult
from modelops.controller.promotion import (
    decide_promotion,
    improvement,
    job_outcome,
    parse_result,
    promotion_metric,
    trainer_termination,
)


def result(candidate: float, baseline: float, metric: str = "accuracy") -> TrainingResult:
    return TrainingResult(
        version="v1-r1",
        uri="pvc://models/iris/v1-r1",
        metrics={metric: candidate},
        baseline={metric: baseline},
    )


def test_job_outcome() -> None:
    assert job_outcome({}).state == "running"
    assert job_outcome({"status": {"active": 1}}).state == "running"
    done = job_outcome(
        {
            "status": {
                "completionTime": "2026-01-01T00:00:00Z",
                "conditions": [{"type": "Complete", "status": "True"}],
            }
        }
    )
    assert done.state == "succeeded"
    assert done.completion_time == "2026-01-01T00:00:00Z"
    failed = job_outcome(
        {
            "status": {
                "conditions": [{"type": "Failed", "status": "True", "reason": "PodFailurePolicy"}]
            }
        }
    )
    assert failed.state == "failed"
    assert failed.reason == "PodFailurePolicy"


def pod(code: int, message: str, finished: str, container: str = "trainer") -> dict[str, Any]:
    terminated = {"exitCode": code, "message": message, "finishedAt": finished}
    return {
        "status": {"containerStatuses": [{"name": container, "state": {"terminated": terminated}}]}
    }


def test_the_latest_trainer_termination_wins() -> None:
    pods = [pod(1, "first", "2026-01-01T00:00:01Z"), pod(3, "second", "2026-01-01T00:00:09Z")]
    found = trainer_termination(pods, "trainer")
    assert found is not None
    assert (found.exit_code, found.message) == (3, "second")
    assert trainer_termination([pod(0, "x", "t", container="sidecar")], "trainer") is None
    assert trainer_termination([{"status": {}}], "trainer") is None


def test_parse_result() -> None:
    text = result(0.9, 0.8).to_json()
    parsed = parse_result(text + "\n")
    assert parsed is not None
    assert parsed.metrics == {"accuracy": 0.9}
    assert parse_result("Traceback (most recent call last): ...") is None
    assert parse_result('{"version": 3}') is None
    assert parse_result("{not json") is None


def test_metric_defaults_and_direction() -> None:
    assert promotion_metric(None, {"accuracy": 1.0}) == "accuracy"
    assert promotion_metric(None, {"r2": 0.5, "mae": 1.0}) == "r2"
    assert promotion_metric("f1", {"accuracy": 1.0}) == "f1"
    assert improvement("accuracy", 0.9, 0.8) == pytest.approx(0.1)
    assert improvement("rmse", 1.0, 1.5) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("candidate", "baseline", "min_improvement", "action"),
    [
        (0.95, 0.90, 0.01, "promote"),
        (0.905, 0.90, 0.01, "reject"),
        (0.90, 0.90, 0.0, "reject"),  # equal is not better
        (0.85, 0.90, 0.0, "reject"),
    ],
)
def test_auto_promotion(
    candidate: float, baseline: float, min_improvement: float, action: str
) -> None:
    decision = decide_promotion(
        mode="auto",
        metric="accuracy",
        min_improvement=min_improvement,
        result=result(candidate, baseline),
        approved_version=None,
    )
    assert decision.action == action
    assert decision.reason == ("CandidatePromoted" if action == "promote" else "CandidateRejected")


def test_lower_is_better_metrics() -> None:
    decision = decide_promotion(
        mode="auto",
        metric="log_loss",
        min_improvement=0.05,
        result=result(0.2, 0.4, metric="log_loss"),
        approved_version=None,
    )
    assert decision.action == "promote"


def test_missing_scores_reject() -> None:
    decision = decide_promotion(
        mode="auto",
        metric="f1",
        min_improvement=0,
        result=result(0.9, 0.8),
        approved_version=None,
    )
    assert decision.action == "reject"
    assert "no f1 score" in decision.message


def test_manual_needs_the_exact_version() -> None:
    common: dict[str, Any] = {"mode": "manual", "metric": None, "min_improvement": 0}
    waiting = decide_promotion(**common, result=result(0.9, 0.8), approved_version="v1-r2")
    assert waiting.action == "await"
    assert waiting.reason == "AwaitingApproval"
    assert "modelops.dev/approve=v1-r1" in waiting.message
    approved = decide_promotion(**common, result=result(0.7, 0.8), approved_version="v1-r1")
    assert approved.action == "promote"


def test_none_only_records() -> None:
    decision = decide_promotion(
        mode="none", metric=None, min_improvement=0, result=result(0.99, 0.1), approved_version=None
    )
    assert decision.action == "record"
    assert decision.reason == "CandidateRecorded"
