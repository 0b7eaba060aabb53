"""The trigger rule, the due-check and candidate versions (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelops.controller.trigger import (
    decide_trigger,
    is_due,
    next_candidate_version,
    required_breaches,
)

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def test_due_check_uses_the_latest_known_time() -> None:
    assert is_due(MINUTE, NOW)
    assert is_due(MINUTE, NOW, NOW - 2 * MINUTE, None)
    assert not is_due(MINUTE, NOW, NOW - 2 * MINUTE, NOW - timedelta(seconds=5))


@pytest.mark.parametrize(
    ("rule", "evaluated", "needed"),
    [(1, 10, 1), (3, 10, 3), (0.25, 10, 3), (0.5, 4, 2), (0.01, 4, 1), (1.0, 50, 1)],
)
def test_required_breaches(rule: float, evaluated: int, needed: int) -> None:
    assert required_breaches(rule, evaluated) == needed


def gates(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {
        "consecutive": 2,
        "needed": 2,
        "enabled": True,
        "now": NOW,
        "last_trigger": None,
        "cooldown": 60 * MINUTE,
        "running": 0,
        "max_concurrent": 1,
    }
    return {**values, **overrides}


def test_trigger_waits_for_consecutive_breaches() -> None:
    assert decide_trigger(**gates(consecutive=1)) is None  # type: ignore[arg-type]
    decision = decide_trigger(**gates())  # type: ignore[arg-type]
    assert decision is not None
    assert decision.start
    assert decision.reason == "RetrainingStarted"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"enabled": False}, "RetrainingDisabled"),
        ({"last_trigger": NOW - 10 * MINUTE}, "CooldownActive"),
        ({"running": 1}, "MaxConcurrentReached"),
    ],
)
def test_trigger_gates(overrides: dict[str, object], reason: str) -> None:
    decision = decide_trigger(**gates(**overrides))  # type: ignore[arg-type]
    assert decision is not None
    assert not decision.start
    assert decision.reason == reason


def test_cooldown_over_allows_a_new_job() -> None:
    decision = decide_trigger(**gates(last_trigger=NOW - 61 * MINUTE))  # type: ignore[arg-type]
    assert decision is not None
    assert decision.start


@pytest.mark.parametrize(
    ("current", "last", "candidate"),
    [
        ("v1", None, "v1-r1"),
        ("v1", "v1-r1", "v1-r2"),  # the first candidate was rejected: never reuse its name
        ("v1-r1", "v1-r1", "v1-r2"),  # promoted: count on, do not grow to v1-r1-r1
        ("v1-r3", "v1-r1", "v1-r4"),
        ("v2", "v1-r5", "v2-r1"),
        ("2026.1", None, "2026.1-r1"),
    ],
)
def test_candidate_versions_are_deterministic(
    current: str, last: str | None, candidate: str
) -> None:
    assert next_candidate_version(current, last) == candidate
    assert next_candidate_version(current, last) == next_candidate_version(current, last)


def test_candidate_version_fits_a_label() -> None:
    with pytest.raises(ValueError, match="63"):
        next_candidate_version("v" * 62, None)
