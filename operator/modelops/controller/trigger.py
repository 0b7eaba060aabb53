"""When drift becomes a retraining (pure): due-check, breach rule, trigger gates, the schedule,
candidate name."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter  # type: ignore[import-untyped]

from modelops.api import reasons


def is_due(interval: timedelta, now: datetime, *last: datetime | None) -> bool:
    """Whether an evaluation is due: ``interval`` has passed since the latest of ``last``.

    Kopf timers tick at a fixed rate; each policy's own ``spec.interval`` is this check against
    ``status.lastEvaluationTime`` (and the in-memory time of an evaluation that wrote nothing).
    """
    known = [t for t in last if t is not None]
    return not known or now - max(known) >= interval


def required_breaches(min_breached_features: float, evaluated: int) -> int:
    """Drifted features the rule needs: a whole count, or a fraction (< 1) of those evaluated."""
    if min_breached_features >= 1:
        return int(min_breached_features)
    return max(1, math.ceil(min_breached_features * evaluated))


@dataclass(frozen=True)
class TriggerDecision:
    """Whether to start a retraining Job now, and if not, why not (a CamelCase reason)."""

    start: bool
    reason: str
    message: str


def decide_trigger(
    *,
    consecutive: int,
    needed: int,
    enabled: bool,
    now: datetime,
    last_trigger: datetime | None,
    cooldown: timedelta,
    running: int,
    max_concurrent: int,
) -> TriggerDecision | None:
    """The trigger rule; None while drift has not lasted ``needed`` evaluations in a row."""
    if consecutive < needed:
        return None
    if not enabled:
        return TriggerDecision(
            False, reasons.RETRAINING_DISABLED, "Drift persists, but retraining is disabled."
        )
    if last_trigger is not None and now - last_trigger < cooldown:
        remaining = int((cooldown - (now - last_trigger)).total_seconds())
        return TriggerDecision(
            False,
            reasons.COOLDOWN,
            f"Drift persists; the next retraining may start in {remaining}s (cooldown).",
        )
    if running >= max_concurrent:
        return TriggerDecision(
            False,
            reasons.MAX_CONCURRENT,
            f"Drift persists; {running} retraining Job(s) running, at most {max_concurrent}.",
        )
    return TriggerDecision(
        True,
        reasons.RETRAINING_STARTED,
        f"Drift breached the trigger in {consecutive} consecutive evaluations.",
    )


# --- The schedule --------------------------------------------------------------------------------

MAX_COUNTED_MISSES = 1000
"""Missed times counted for the message (a long outage of a minutely schedule stops here)."""


@dataclass(frozen=True)
class ScheduleState:
    """Where a schedule stands at ``now``: the time to run (the latest one not yet handled, at
    most one catch-up), how many older ones were missed, and the next time."""

    due: datetime | None
    missed: int
    next_time: datetime | None


def schedule_state(
    schedule: str, time_zone: str | None, now: datetime, since: datetime
) -> ScheduleState:
    """The schedule's times after ``since`` (the last handled one) up to ``now``, read as a
    CronJob reads ``schedule`` in ``time_zone`` (default UTC). Only the latest is due: times
    missed while the operator was down give one run, not one each. Times are returned in UTC."""
    zone = ZoneInfo(time_zone or "UTC")
    expression = schedule.strip()
    local_now = now.astimezone(zone)
    try:
        next_time = croniter(expression, local_now).get_next(datetime).astimezone(UTC)
    except CroniterBadDateError:
        next_time = None  # e.g. 0 0 30 2 *: a date that never comes
    times = croniter(expression, since.astimezone(zone))
    due: datetime | None = None
    missed = -1
    try:
        while missed < MAX_COUNTED_MISSES:
            candidate = times.get_next(datetime).astimezone(UTC)
            if candidate > now:
                break
            due = candidate
            missed += 1
    except CroniterBadDateError:
        pass
    if due is not None and missed >= MAX_COUNTED_MISSES:
        # The latest time <= now: cron times fall on whole seconds, so count back from the
        # second after now's whole second (now + 1 s could pass a time still ahead of now).
        base = local_now.replace(microsecond=0) + timedelta(seconds=1)
        latest = croniter(expression, base).get_prev(datetime)
        due = latest.astimezone(UTC)
    return ScheduleState(due=due, missed=max(missed, 0), next_time=next_time)


def schedule_since(
    last_scheduled: datetime | None,
    next_scheduled: datetime | None,
    created: datetime | None,
    generation: int,
    now: datetime,
) -> datetime:
    """From when the schedule's times count: after the last handled one; else just before the
    next time an earlier tick saw (written to status, so it survives a restart; but not after
    now, for a schedule changed to fire sooner); else from the policy's creation when its spec
    never changed (the schedule was there from the start, as a CronJob counts); else from now
    (a schedule added later does not fire for the past)."""
    if last_scheduled is not None:
        return last_scheduled
    if next_scheduled is not None:
        return min(next_scheduled - timedelta(seconds=1), now)
    if created is not None and generation <= 1:
        return created
    return now


def decide_scheduled(
    *, enabled: bool, running: int, max_concurrent: int, due: datetime, missed: int
) -> TriggerDecision:
    """Whether the scheduled time ``due`` starts a retraining: yes unless retraining is disabled
    or ``max_concurrent`` Jobs run (the time is then skipped, as a CronJob with Forbid does)."""
    when = due.strftime("%Y-%m-%dT%H:%M:%SZ")
    catch_up = f" ({missed} earlier time(s) missed while the operator was down)" if missed else ""
    if not enabled:
        return TriggerDecision(
            False,
            reasons.RETRAINING_DISABLED,
            f"Scheduled time {when} skipped: retraining is disabled.",
        )
    if running >= max_concurrent:
        return TriggerDecision(
            False,
            reasons.SCHEDULE_SKIPPED,
            f"Scheduled time {when} skipped: {running} retraining Job(s) running, at most "
            f"{max_concurrent}.",
        )
    return TriggerDecision(True, reasons.SCHEDULED, f"Scheduled retraining for {when}{catch_up}.")


_RETRAINED = re.compile(r"^(?P<base>.+)-r(?P<n>[0-9]+)$")


def next_candidate_version(current: str, last_candidate: str | None) -> str:
    """The version a retraining of ``current`` produces: ``<base>-r<N>``.

    Deterministic (no clock): the same status always gives the same candidate, so the Job name
    derived from it is an idempotency key across retries and restarts. N counts up from the
    current version's own suffix and from the last candidate of the same base, so a rejected
    candidate is never reused, and versions do not grow as ``v1-r1-r1``.
    """
    match = _RETRAINED.match(current)
    base, n = (match["base"], int(match["n"])) if match else (current, 0)
    if last_candidate:
        last = _RETRAINED.match(last_candidate)
        if last and last["base"] == base:
            n = max(n, int(last["n"]))
    candidate = f"{base}-r{n + 1}"
    if len(candidate) > 63:
        raise ValueError(f"candidate version {candidate!r} is longer than 63 characters")
    return candidate
