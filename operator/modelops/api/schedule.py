"""Cron schedules and time zones as a Kubernetes CronJob reads them, checked at both layers.

The CRD refuses what a pattern can see (five fields of the right shapes and ranges, one of the
``@`` macros, a time-zone name of the IANA form); the pydantic types also parse the expression
with croniter and load the time zone, so a policy the operator accepts always has a schedule it
can compute. Only what a CronJob accepts passes: no seconds field, no ``L``/``W``/``#``, no
``TZ=`` prefix (use ``timeZone``).
"""

from __future__ import annotations

import re
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter  # type: ignore[import-untyped]
from pydantic import AfterValidator, Field, WithJsonSchema

_MINUTE = r"[0-5]?[0-9]"
_HOUR = r"(1[0-9]|2[0-3]|0?[0-9])"
_DAY = r"(3[01]|[12][0-9]|0?[1-9])"
_MONTH = r"(1[0-2]|0?[1-9]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))"
_WEEKDAY = r"([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat))"


def _field(value: str) -> str:
    """One cron field: a comma list of ``*``, ``v`` or ``a-b``, each with an optional ``/step``."""
    item = rf"(\*|{value}(-{value})?)(/[0-9]{{1,2}})?"
    return rf"{item}(,{item})*"


MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
CRON_PATTERN = (
    r"^\s*("
    + "|".join(MACROS)
    + "|"
    + r"\s+".join(_field(v) for v in (_MINUTE, _HOUR, _DAY, _MONTH, _WEEKDAY))
    + r")\s*$"
)
CRON_MESSAGE = (
    "must be a 5-field cron expression (minute hour day-of-month month day-of-week, e.g. "
    "'0 3 * * *') or one of " + ", ".join(MACROS)
)
TIME_ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$"


def check_cron(text: str) -> str:
    """The expression if a CronJob would accept it and croniter can compute it."""
    if not re.fullmatch(CRON_PATTERN, text) or not croniter.is_valid(text.strip()):
        raise ValueError(f"{text!r} {CRON_MESSAGE}")
    return text


def check_time_zone(name: str) -> str:
    """The name if it is an IANA time zone (as Go's time.LoadLocation, which CronJob uses)."""
    if not re.fullmatch(TIME_ZONE_PATTERN, name):
        raise ValueError(f"{name!r} is not a time zone name such as Europe/Berlin or UTC")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not a known time zone (IANA names, e.g. Europe/Berlin)"
        ) from None
    return name


Cron = Annotated[
    str,
    AfterValidator(check_cron),
    WithJsonSchema(
        {"type": "string", "maxLength": 256, "pattern": CRON_PATTERN},
    ),
    Field(max_length=256),
]
"""A 5-field cron expression or an ``@`` macro, as ``CronJob.spec.schedule``."""

TimeZone = Annotated[
    str,
    AfterValidator(check_time_zone),
    WithJsonSchema({"type": "string", "maxLength": 64, "pattern": TIME_ZONE_PATTERN}),
    Field(max_length=64),
]
"""An IANA time-zone name, as ``CronJob.spec.timeZone``."""
