"""When drift becomes a retraining (pure): due-check, breach rule, trigger gates, candidate name."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

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
