"""controller/trigger.py and controller/window.py at their edges: the exact Event messages of
the trigger gates, the boundaries of the cooldown and of the rules, the counter-reset rules of
the pods source (mutation-tested)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from modelops.controller.trigger import (
    TriggerDecision,
    decide_scheduled,
    decide_trigger,
    is_due,
    next_candidate_version,
    required_breaches,
    schedule_state,
)
from modelops.controller.window import WindowStore, restarted, window_delta

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def trigger(**overrides: object) -> TriggerDecision | None:
    args: dict[str, object] = {
        "consecutive": 3,
        "needed": 3,
        "enabled": True,
        "now": NOW,
        "last_trigger": None,
        "cooldown": timedelta(minutes=30),
        "running": 0,
        "max_concurrent": 1,
    }
    args.update(overrides)
    return decide_trigger(**args)  # type: ignore[arg-type]


def test_due_exactly_at_the_interval_and_not_a_second_before() -> None:
    interval = timedelta(seconds=60)
    assert is_due(interval, NOW)
    assert is_due(interval, NOW, None, None)
    assert is_due(interval, NOW, NOW - interval)
    assert not is_due(interval, NOW, NOW - interval + timedelta(seconds=1))
    assert not is_due(interval, NOW, None, NOW - interval + timedelta(seconds=1))


@pytest.mark.parametrize(
    ("rule", "evaluated", "needed"),
    [(1, 10, 1), (1.0, 0, 1), (2.7, 10, 2), (0.25, 10, 3), (0.5, 0, 1), (0.99, 100, 99)],
)
def test_required_breaches_boundaries(rule: float, evaluated: int, needed: int) -> None:
    assert required_breaches(rule, evaluated) == needed


def test_the_started_message_counts_the_evaluations() -> None:
    assert trigger(consecutive=4) == TriggerDecision(
        True,
        "RetrainingStarted",
        "Drift breached the trigger in 4 consecutive evaluations.",
    )
    assert trigger(consecutive=2) is None


def test_the_disabled_message() -> None:
    assert trigger(enabled=False) == TriggerDecision(
        False, "RetrainingDisabled", "Drift persists, but retraining is disabled."
    )


def test_the_cooldown_counts_the_seconds_left_and_ends_exactly() -> None:
    assert trigger(last_trigger=NOW - timedelta(minutes=10)) == TriggerDecision(
        False,
        "CooldownActive",
        "Drift persists; the next retraining may start in 1200s (cooldown).",
    )
    assert trigger(last_trigger=NOW - timedelta(minutes=30)).start  # type: ignore[union-attr]
    just_before = trigger(last_trigger=NOW - timedelta(minutes=30) + timedelta(seconds=1))
    assert just_before is not None
    assert just_before.reason == "CooldownActive"


def test_the_concurrency_message_and_its_boundary() -> None:
    assert trigger(running=2, max_concurrent=2) == TriggerDecision(
        False,
        "MaxConcurrentReached",
        "Drift persists; 2 retraining Job(s) running, at most 2.",
    )
    assert trigger(running=1, max_concurrent=2).start  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("current", "last", "candidate"),
    [
        ("v1", None, "v1-r1"),
        ("v1", "", "v1-r1"),
        ("v1", "v1-r4", "v1-r5"),
        ("v1-r2", "v1-r1", "v1-r3"),
        ("v1-r2", "v1-r9", "v1-r10"),
        ("v1", "v2-r7", "v1-r1"),  # another base does not count
        ("v1", "v1-rx", "v1-r1"),
        ("a-r", None, "a-r-r1"),
    ],
)
def test_next_candidate_version(current: str, last: str | None, candidate: str) -> None:
    assert next_candidate_version(current, last) == candidate


def test_a_candidate_of_exactly_63_characters_is_allowed() -> None:
    base = "v" * 60
    assert next_candidate_version(base, None) == base + "-r1"  # 63 characters
    with pytest.raises(ValueError, match=r"longer than 63 characters"):
        next_candidate_version(base + "x", None)


@pytest.fixture
def local_time_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone at UTC+05:30 (a POSIX TZ string: no zone database)."""
    monkeypatch.setenv("TZ", "IST-05:30")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_time_zone")
def test_schedule_times_are_utc_whatever_the_local_time_zone() -> None:
    now = datetime(2026, 1, 1, 12, 30, tzinfo=UTC)
    state = schedule_state("0 * * * *", None, now, now - timedelta(hours=3))
    assert state.due is not None
    assert state.next_time is not None
    assert state.due.isoformat() == "2026-01-01T12:00:00+00:00"
    assert state.next_time.isoformat() == "2026-01-01T13:00:00+00:00"
    assert state.missed == 2
    decision = decide_scheduled(
        enabled=True, running=0, max_concurrent=1, due=state.due, missed=state.missed
    )
    assert decision.message == (
        "Scheduled retraining for 2026-01-01T12:00:00Z "
        "(2 earlier time(s) missed while the operator was down)."
    )


@pytest.mark.usefixtures("local_time_zone")
def test_the_due_time_after_a_long_outage_is_utc_whatever_the_local_time_zone() -> None:
    now = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)
    state = schedule_state("* * * * *", None, now, now - timedelta(days=2))
    assert state.due is not None
    assert state.due.isoformat() == "2026-01-01T12:00:00+00:00"
    assert state.missed == 1000  # counted up to the cap, then the latest time


def test_a_time_less_than_a_second_ahead_is_not_due_yet() -> None:
    now = datetime(2026, 1, 1, 11, 59, 59, 500_000, tzinfo=UTC)
    state = schedule_state("* * * * *", None, now, datetime(2026, 1, 1, 11, 55, tzinfo=UTC))
    assert state.due == datetime(2026, 1, 1, 11, 59, tzinfo=UTC)
    assert state.missed == 3  # 11:56, 11:57, 11:58
    assert state.next_time == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_after_a_long_outage_a_time_one_second_ahead_is_not_due_yet() -> None:
    now = datetime(2026, 1, 1, 11, 59, 59, tzinfo=UTC)
    state = schedule_state("* * * * *", None, now, now - timedelta(days=2))
    assert state.due == datetime(2026, 1, 1, 11, 59, tzinfo=UTC)
    assert state.missed == 1000
    assert state.next_time == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_restart_rules() -> None:
    assert restarted({("f", "0"): 0.0}, {})  # a series vanished, even a zero one
    assert not restarted({("f", "0"): 2.0}, {("f", "0"): 2.0})
    assert restarted({("f", "0"): 2.0}, {("f", "0"): 1.0})
    assert not restarted({}, {("f", "0"): 1.0})


def test_a_new_series_of_a_known_pod_counts_in_full_and_zero_growth_is_left_out() -> None:
    previous = {"p/1": {("f", "0"): 5.0}}
    current = {"p/1": {("f", "0"): 5.0, ("f", "1"): 3.0}}
    assert window_delta(previous, current) == {("f", "1"): 3.0}


def test_a_signed_series_counts_when_it_falls_but_not_when_it_stays() -> None:
    previous = {"p/1": {("sum", "0"): 5.0, ("sum", "1"): 2.0}}
    current = {"p/1": {("sum", "0"): 5.0, ("sum", "1"): 1.0}}
    signed = {("sum", "0"), ("sum", "1")}
    assert window_delta(previous, current, signed) == {("sum", "1"): -1.0}


def test_a_restarted_pod_counts_all_its_values_and_pods_add_up() -> None:
    previous = {"p/1": {("f", "0"): 10.0}, "q/2": {("f", "0"): 1.0}}
    current = {"p/1": {("f", "0"): 4.0}, "q/2": {("f", "0"): 3.0}, "r/3": {("f", "0"): 0.0}}
    assert window_delta(previous, current) == {("f", "0"): 6.0}


def test_the_store_keeps_windows_per_policy_and_version_and_forgets() -> None:
    store = WindowStore()
    assert store.baseline_time("a") is None
    assert store.advance("a", "v1", NOW, {"p": {("f", "0"): 1.0}}) is None
    assert store.baseline_time("a") == NOW
    later = NOW + timedelta(minutes=1)
    assert store.advance("a", "v1", later, {"p": {("f", "0"): 4.0}}) == {("f", "0"): 3.0}
    assert store.baseline_time("a") == later
    assert store.advance("b", "v1", later, {"p": {("f", "0"): 4.0}}) is None  # its own
    assert store.advance("a", "v2", later, {"p": {("f", "0"): 9.0}}) is None  # new version
    store.forget("a")
    store.forget("never-seen")
    assert store.baseline_time("a") is None
    assert store.baseline_time("b") == later
    assert store.advance("a", "v2", later, {"p": {("f", "0"): 9.0}}) is None
