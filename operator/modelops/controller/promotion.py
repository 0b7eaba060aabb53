"""What happens to a retrained candidate (pure): read the Job's outcome, decide the promotion."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from modelops.api import LOWER_IS_BETTER, reasons
from modelops.artifacts import TrainingResult

Action = Literal["promote", "reject", "await", "record"]
JobState = Literal["running", "succeeded", "failed"]

#: Exit code of ``modelops train`` when the data-quality gate failed.
EXIT_DATA_QUALITY = 3


@dataclass(frozen=True)
class JobOutcome:
    """How a Job ended (or that it has not)."""

    state: JobState
    reason: str = ""
    message: str = ""
    completion_time: str | None = None


def job_outcome(job: Mapping[str, Any]) -> JobOutcome:
    """The Job's state from its status conditions (Complete or Failed, else running)."""
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return JobOutcome(
                "succeeded",
                str(condition.get("reason") or "Completed"),
                str(condition.get("message") or ""),
                status.get("completionTime") or condition.get("lastTransitionTime"),
            )
        if condition.get("type") == "Failed":
            return JobOutcome(
                "failed",
                str(condition.get("reason") or "Failed"),
                str(condition.get("message") or ""),
                condition.get("lastTransitionTime"),
            )
    return JobOutcome("running")


@dataclass(frozen=True)
class Termination:
    """The trainer container's last termination: exit code and termination message."""

    exit_code: int
    message: str
    finished_at: str


def trainer_termination(pods: Iterable[Mapping[str, Any]], container: str) -> Termination | None:
    """The most recent termination of ``container`` among a Job's pods."""
    found: list[Termination] = []
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if status.get("name") != container:
                continue
            terminated = (status.get("state") or {}).get("terminated")
            if not terminated:
                continue
            found.append(
                Termination(
                    exit_code=int(terminated.get("exitCode", -1)),
                    message=str(terminated.get("message") or ""),
                    finished_at=str(terminated.get("finishedAt") or ""),
                )
            )
    return max(found, key=lambda t: t.finished_at) if found else None


def parse_result(message: str) -> TrainingResult | None:
    """The trainer's result JSON from a termination message, or None if it is not one."""
    text = message.strip()
    if not text.startswith("{"):
        return None
    try:
        return TrainingResult.model_validate(json.loads(text))
    except (ValueError, ValidationError):
        return None


@dataclass(frozen=True)
class Decision:
    """What to do with a candidate, with the CamelCase reason and message of its Event."""

    action: Action
    reason: str
    message: str


def promotion_metric(configured: str | None, metrics: Mapping[str, float]) -> str:
    """The metric that decides: the configured one, else accuracy (classification) or r2."""
    if configured:
        return configured
    return "accuracy" if "accuracy" in metrics or "r2" not in metrics else "r2"


def improvement(metric: str, candidate: float, baseline: float) -> float:
    """How much better the candidate is (positive = better), whichever direction is better."""
    return baseline - candidate if metric in LOWER_IS_BETTER else candidate - baseline


def decide_promotion(
    *,
    mode: str,
    metric: str | None,
    min_improvement: float,
    result: TrainingResult,
    approved_version: str | None,
) -> Decision:
    """Promote, reject, wait for approval or only record a successfully trained candidate."""
    name = promotion_metric(metric, result.metrics)
    candidate = result.metrics.get(name)
    baseline = result.baseline.get(name)
    if mode == "manual":
        if approved_version == result.version:
            return Decision(
                "promote", reasons.CANDIDATE_PROMOTED, f"Promoted {result.version}: approved."
            )
        return Decision(
            "await",
            reasons.AWAITING_APPROVAL,
            f"Candidate {result.version} ({_scores(name, candidate, baseline)}) awaits approval: "
            f"annotate the DriftPolicy with modelops.dev/approve={result.version}.",
        )
    if mode == "none":
        return Decision(
            "record",
            reasons.CANDIDATE_RECORDED,
            f"Recorded candidate {result.version} ({_scores(name, candidate, baseline)}).",
        )
    if candidate is None or baseline is None:
        missing = "candidate" if candidate is None else "current model"
        return Decision(
            "reject",
            reasons.CANDIDATE_REJECTED,
            f"Kept the current model: the result has no {name} score for the {missing}.",
        )
    gain = improvement(name, candidate, baseline)
    if gain > 0 and gain >= min_improvement:
        return Decision(
            "promote",
            reasons.CANDIDATE_PROMOTED,
            f"Promoted {result.version}: {_scores(name, candidate, baseline)}, "
            f"better by {gain:.4g} (at least {min_improvement:g} needed).",
        )
    return Decision(
        "reject",
        reasons.CANDIDATE_REJECTED,
        f"Kept the current model: candidate {result.version} scored "
        f"{_scores(name, candidate, baseline)}, better by {gain:.4g}; "
        f"more than {min_improvement:g} needed.",
    )


def _scores(metric: str, candidate: float | None, baseline: float | None) -> str:
    def show(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4g}"

    return f"{metric} {show(candidate)} vs {show(baseline)}"
