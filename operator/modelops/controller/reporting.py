"""When a DriftPolicy's status is written: on a decision, or as a periodic report of the scores.

Every evaluation measures every feature, the predictions and the live metric, and the numbers
differ every time. Writing them at every interval costs a PATCH, the watch event it causes and a
fresh parse of the policy at the next tick: at 2,000 policies, most of the operator's work. The
kubelet faces the same with node status (computed every 10 s; written when it changed or when
``nodeStatusReportFrequency`` has passed). So here: the status is written when anything other
than the measurements changed (a condition's status or reason, the streak of breaches up to the
trigger's count, which features breached, the retraining, the schedule, the generation), and
otherwise once the status written last is ``report_every`` old. The gauges carry every
evaluation's scores; the streak counted meanwhile is kept in the operator's memory.

Each policy reports at a period of its own, a little under ``report_every`` (``report_period``):
policies created together (one ``kubectl apply`` of a GitOps directory) decide together and
would otherwise report together for ever; at 2,000 policies the 300 s reports came as 999
status PATCHes a minute (and an evaluation lag with a p99 of 11 s) where a whole period
averages 400.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta
from typing import Any

from modelops.api import reasons

MEASURED_KEYS = frozenset({"lastEvaluationTime", "samples"})
"""Top-level status fields that every evaluation changes."""
MEASURED_PARTS = {
    "features": frozenset({"scores"}),
    "predictionDrift": frozenset({"samples", "scores"}),
    "performance": frozenset({"value", "samples"}),
}
"""Measured fields inside status objects (or inside each item of a status list)."""
MEASURED_CONDITIONS = frozenset(
    {reasons.DRIFT_DETECTED, reasons.PREDICTION_DRIFT, reasons.PERFORMANCE_DEGRADED}
)
"""Conditions whose message quotes the evaluation's numbers (rows, scores): their status and
reason are decisions, their message a measurement. Other messages (which pods were read, and
how) are written when they change."""


def decisions(status: dict[str, Any], streak_cap: int | None = None) -> dict[str, Any]:
    """A dumped status (camelCase, as stored) without its measurements: what was decided.

    With ``streak_cap`` (the trigger's consecutiveEvaluations) a streak of breaches counts up to
    the cap: beyond it every evaluation adds one more and decides nothing new (retraining is
    disabled, cooling down or already running)."""
    kept: dict[str, Any] = {}
    for key, value in status.items():
        if key in MEASURED_KEYS:
            continue
        if key == "consecutiveBreaches" and streak_cap is not None and isinstance(value, int):
            kept[key] = min(value, streak_cap)
            continue
        measured = MEASURED_PARTS.get(key)
        if key == "conditions" and isinstance(value, list):
            kept[key] = [_condition_decision(c) for c in value]
        elif measured is None:
            kept[key] = value
        elif isinstance(value, list):
            kept[key] = [_without(item, measured) for item in value]
        else:
            kept[key] = _without(value, measured)
    return kept


REPORT_SPREAD = 0.2
"""Periods range over (1 - REPORT_SPREAD, 1] x ``report_every``, never longer than the setting,
at ~11 % more reports on average. Reports of policies in step drift apart by
up to a fifth of the period each period (a full period apart after five)."""


def report_period(report_every: timedelta, key: str) -> timedelta:
    """The report period of the policy ``key`` (``policy_key``): a fixed share of
    ``report_every`` from a hash of the key (stable across restarts, unlike ``hash``)."""
    share = zlib.crc32(key.encode()) / 2**32  # in [0, 1)
    return report_every * (1.0 - REPORT_SPREAD * share)


def needs_write(
    old: dict[str, Any],
    new: dict[str, Any],
    last_written: datetime | None,
    now: datetime,
    report_every: timedelta,
    *,
    streak_cap: int | None = None,
) -> bool:
    """Whether ``new`` goes to the API server, ``old`` being the stored status: a decision
    changed, or the stored measurements (written at ``last_written``) are due for a report."""
    if new == old:
        return False
    if decisions(new, streak_cap) != decisions(old, streak_cap):
        return True
    if "lastEvaluationTime" not in new:
        return False  # measurements without an evaluation: nothing to report
    return last_written is None or now - last_written >= report_every


def _condition_decision(condition: Any) -> Any:
    if isinstance(condition, dict) and condition.get("type") in MEASURED_CONDITIONS:
        return _without(condition, frozenset({"message"}))
    return condition


def _without(value: Any, measured: frozenset[str]) -> Any:
    if not isinstance(value, dict):
        return value
    return {k: v for k, v in value.items() if k not in measured}
