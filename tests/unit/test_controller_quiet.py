"""When a DriftPolicy tick may skip its work (``controller.quiet``): only when nothing is being
followed, the status is of the current generation, the schedule's next time is known and ahead,
and the interval has not passed since the last evaluation (stored or only remembered)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelops.api import DriftPolicySpec, DriftPolicyStatus
from modelops.controller.quiet import Digest

NOW = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
EVALUATED = NOW - timedelta(seconds=30)


def spec(**retraining: Any) -> DriftPolicySpec:
    body: dict[str, Any] = {"modelDeploymentRef": {"name": "iris"}, "interval": "60s"}
    if retraining:
        body["retraining"] = {"dataUri": "pvc://data/fresh.csv", "outputUri": "pvc://m/iris"}
        body["retraining"].update(retraining)
    return DriftPolicySpec.model_validate(body)


def status(**fields: Any) -> DriftPolicyStatus:
    return DriftPolicyStatus.model_validate(
        {"observedGeneration": 1, "lastEvaluationTime": "2030-01-01T11:59:30Z", **fields}
    )


def digest(policy: DriftPolicySpec | None = None, **fields: Any) -> Digest:
    return Digest.of("42", 1, policy or spec(), status(**fields))


def retraining(result: str, reason: str = "") -> dict[str, Any]:
    return {"job": "j", "candidateVersion": "v1-r1", "result": result, "reason": reason}


def test_a_settled_policy_is_quiet_until_its_interval_passes() -> None:
    calm = digest()
    assert calm.is_quiet(NOW, None)
    assert calm.is_quiet(EVALUATED + timedelta(seconds=59), None)
    assert not calm.is_quiet(EVALUATED + timedelta(seconds=60), None)


def test_an_evaluation_only_remembered_counts_too() -> None:
    later = EVALUATED + timedelta(seconds=50)
    assert digest().is_quiet(later + timedelta(seconds=59), later)
    assert not digest().is_quiet(later + timedelta(seconds=60), later)


def test_a_policy_never_evaluated_is_due() -> None:
    fresh = Digest.of("42", 1, spec(), DriftPolicyStatus(observed_generation=1))
    assert not fresh.is_quiet(NOW, None)
    assert fresh.is_quiet(NOW, NOW - timedelta(seconds=1))


@pytest.mark.parametrize(
    "last",
    [
        retraining("Running", "RetrainingStarted"),
        retraining("AwaitingApproval", "PromotionPending"),
        retraining("Promoted", "CandidatePromoted"),  # its rollout is followed
    ],
)
def test_a_retraining_being_followed_is_never_quiet(last: dict[str, Any]) -> None:
    assert not digest(lastRetraining=last).is_quiet(NOW, None)


@pytest.mark.parametrize(
    "last",
    [
        retraining("Promoted", "RolloutComplete"),
        retraining("Rejected", "CandidateRejected"),
        retraining("Failed", "RetrainingFailed"),
        retraining("RolledBack", "RolledBack"),
        retraining("Succeeded", "CandidateRecorded"),
    ],
)
def test_a_finished_retraining_lets_the_policy_rest(last: dict[str, Any]) -> None:
    assert digest(lastRetraining=last).is_quiet(NOW, None)


def test_superseded_jobs_are_followed() -> None:
    assert not digest(supersededJobs=["j0"]).is_quiet(NOW, None)


def test_a_status_of_an_older_generation_is_rewritten() -> None:
    assert not Digest.of("42", 2, spec(), status()).is_quiet(NOW, None)


def test_a_schedule_is_quiet_only_before_its_known_next_time() -> None:
    scheduled = spec(schedule="0 * * * *")
    ahead = digest(scheduled, nextScheduledTime="2030-01-01T13:00:00Z")
    assert ahead.is_quiet(NOW, None)
    assert not ahead.is_quiet(datetime(2030, 1, 1, 13, 0, tzinfo=UTC), NOW)
    assert not digest(scheduled).is_quiet(NOW, None)  # the next time is yet to be written


def test_a_next_time_left_by_a_removed_schedule_is_cleared() -> None:
    assert not digest(nextScheduledTime="2030-01-01T13:00:00Z").is_quiet(NOW, None)


# --- When the next tick has work (what the scheduler waits for) ------------------------------


def test_the_next_work_of_a_settled_policy_is_its_next_evaluation() -> None:
    assert digest().next_work(NOW, None) == EVALUATED + timedelta(seconds=60)
    later = NOW - timedelta(seconds=5)
    assert digest().next_work(NOW, later) == later + timedelta(seconds=60)


def test_a_policy_never_evaluated_has_work_now() -> None:
    fresh = Digest.of("42", 1, spec(), DriftPolicyStatus(observed_generation=1))
    assert fresh.next_work(NOW, None) == NOW


def test_a_scheduled_retraining_due_first_is_the_next_work() -> None:
    scheduled = spec(schedule="0 * * * *")
    soon = digest(scheduled, nextScheduledTime="2030-01-01T12:00:10Z")
    assert soon.next_work(NOW, None) == datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC)
    late = digest(scheduled, nextScheduledTime="2030-01-01T13:00:00Z")
    assert late.next_work(NOW, None) == EVALUATED + timedelta(seconds=60)


@pytest.mark.parametrize(
    "unsettled",
    [
        digest(lastRetraining=retraining("Running", "RetrainingStarted")),
        digest(supersededJobs=["j0"]),
        Digest.of("42", 2, spec(), status()),
        digest(spec(schedule="0 * * * *")),  # the next time is yet to be written
        digest(nextScheduledTime="2030-01-01T13:00:00Z"),  # a removed schedule's
    ],
)
def test_an_unsettled_policy_cannot_say_and_is_ticked_after_the_period(
    unsettled: Digest,
) -> None:
    assert unsettled.next_work(NOW, None) is None
    assert not unsettled.is_quiet(NOW, None)
