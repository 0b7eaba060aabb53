"""When a DriftPolicy's status is written: decisions at once, measurements as a periodic report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelops.controller.reporting import REPORT_SPREAD, decisions, needs_write, report_period

T0 = datetime(2030, 1, 1, tzinfo=UTC)
EVERY = timedelta(minutes=5)


def status(**changes: Any) -> dict[str, Any]:
    """A stored status after an evaluation without drift, with ``changes`` applied."""
    base: dict[str, Any] = {
        "observedGeneration": 1,
        "lastEvaluationTime": "2030-01-01T00:00:00Z",
        "samples": 1000,
        "consecutiveBreaches": 0,
        "driftedFeatures": 0,
        "features": [
            {"name": "x", "scores": {"psi": 0.01}, "breached": False, "breachedMetrics": []}
        ],
        "predictionDrift": {"samples": 1000, "scores": {"psi": 0.02}, "breachedMetrics": []},
        "performance": {"metric": "accuracy", "value": 0.91, "baseline": 0.93, "samples": 400},
        "conditions": [
            {
                "type": "DriftDetected",
                "status": "False",
                "reason": "NoDrift",
                "message": "0 of 1 features drifted in 1000 rows; 1 needed.",
            },
            {
                "type": "SourceReady",
                "status": "True",
                "reason": "SourceReachable",
                "message": "Read 2 serving pod(s) through the counts endpoint.",
            },
        ],
    }
    return base | changes


def condition(stored: dict[str, Any], type_: str, **changes: str) -> dict[str, Any]:
    """``stored`` with the condition ``type_`` changed."""
    conditions = [c | changes if c["type"] == type_ else c for c in stored["conditions"]]
    return stored | {"conditions": conditions}


MEASURED = {
    "samples": status(samples=1200),
    "scores": status(
        features=[{"name": "x", "scores": {"psi": 0.04}, "breached": False, "breachedMetrics": []}]
    ),
    "prediction scores": status(
        predictionDrift={"samples": 1200, "scores": {"psi": 0.03}, "breachedMetrics": []}
    ),
    "live metric": status(
        performance={"metric": "accuracy", "value": 0.9, "baseline": 0.93, "samples": 500}
    ),
    "drift message": condition(
        status(), "DriftDetected", message="0 of 1 features drifted in 1200 rows; 1 needed."
    ),
}

DECIDED = {
    "streak": status(consecutiveBreaches=1),
    "drifted count": status(driftedFeatures=1),
    "a breach": status(
        features=[
            {"name": "x", "scores": {"psi": 0.01}, "breached": True, "breachedMetrics": ["psi"]}
        ]
    ),
    "condition status": condition(status(), "DriftDetected", status="True", reason="DriftFound"),
    "how the pods were read": condition(
        status(), "SourceReady", message="Read 2 serving pod(s) through /metrics text."
    ),
    "a prediction breach": status(
        predictionDrift={"samples": 1000, "scores": {"psi": 0.02}, "breachedMetrics": ["psi"]}
    ),
    "the baseline": status(
        performance={"metric": "accuracy", "value": 0.91, "baseline": 0.8, "samples": 400}
    ),
    "a retraining": status(lastRetraining={"job": "j", "candidateVersion": "v2"}),
    "the generation": status(observedGeneration=2),
}


@pytest.mark.parametrize("changed", list(MEASURED.values()), ids=list(MEASURED))
def test_measurements_wait_for_the_report_period(changed: dict[str, Any]) -> None:
    new = changed | {"lastEvaluationTime": "2030-01-01T00:01:00Z"}
    assert decisions(new) == decisions(status())
    assert not needs_write(status(), new, T0, T0 + timedelta(minutes=1), EVERY)
    assert needs_write(status(), new, T0, T0 + EVERY, EVERY)


@pytest.mark.parametrize("changed", list(DECIDED.values()), ids=list(DECIDED))
def test_a_decision_is_written_at_once(changed: dict[str, Any]) -> None:
    assert decisions(changed) != decisions(status())
    assert needs_write(status(), changed, T0, T0 + timedelta(seconds=1), EVERY)


def test_an_unchanged_status_is_never_written() -> None:
    assert not needs_write(status(), status(), T0, T0 + EVERY * 10, EVERY)


def test_the_first_evaluation_is_written() -> None:
    before = {k: v for k, v in status().items() if k not in ("lastEvaluationTime", "samples")}
    assert needs_write(before, status(), None, T0, EVERY)


def test_measurements_without_an_evaluation_are_not_reported() -> None:
    """A tick that only recorded the counters' baseline evaluated nothing to report."""
    old = {k: v for k, v in status().items() if k != "lastEvaluationTime"}
    assert not needs_write(old, old | {"samples": 5}, None, T0, EVERY)


def test_decisions_keep_what_is_not_measured() -> None:
    kept = decisions(status())
    assert "lastEvaluationTime" not in kept
    assert "samples" not in kept
    assert kept["features"] == [{"name": "x", "breached": False, "breachedMetrics": []}]
    assert kept["performance"] == {"metric": "accuracy", "baseline": 0.93}
    assert kept["conditions"][0] == {
        "type": "DriftDetected",
        "status": "False",
        "reason": "NoDrift",
    }
    assert kept["conditions"][1] == status()["conditions"][1]


def test_a_streak_counts_as_a_decision_up_to_the_trigger_count() -> None:
    one, two, three = (status(consecutiveBreaches=n) for n in (1, 2, 3))
    assert needs_write(one, two, T0, T0, EVERY, streak_cap=2)  # the trigger's count reached
    assert not needs_write(two, three, T0, T0, EVERY, streak_cap=2)  # nothing new decided
    assert needs_write(two, three, T0, T0 + EVERY, EVERY, streak_cap=2)  # reported in time
    assert needs_write(three, status(), T0, T0, EVERY, streak_cap=2)  # reset: a Job started
    assert needs_write(two, three, T0, T0, EVERY)  # without a cap every count is a decision


def test_each_policy_reports_at_a_period_of_its_own_never_longer_than_the_setting() -> None:
    keys = [f"bench/policy-{i:04d}/{i:08x}-uid" for i in range(2000)]
    periods = [report_period(EVERY, key) for key in keys]
    assert all(EVERY * (1 - REPORT_SPREAD) < period <= EVERY for period in periods)
    # The same policy keeps its period (a restarted operator too: not Python's salted hash).
    assert [report_period(EVERY, key) for key in keys] == periods
    assert report_period(EVERY, "ns/p/uid") == EVERY * (1 - REPORT_SPREAD * 0.14991092821583152)
    # Policies applied together are spread over the whole range: in ten equal slices of it,
    # each slice holds about a tenth of them.
    shares = [(EVERY - period) / (EVERY * REPORT_SPREAD) for period in periods]
    slices = [sum(1 for share in shares if k / 10 <= share < (k + 1) / 10) for k in range(10)]
    assert all(150 <= count <= 250 for count in slices), slices
