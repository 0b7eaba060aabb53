"""Status conditions shaped exactly like Kubernetes' ``metav1.Condition``, and pure helpers.

The helpers never mutate: they return a new list, and move ``lastTransitionTime`` only when a
condition's status flips, as the Kubernetes API conventions require.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from modelops.api.base import StatusModel

ConditionStatus = Literal["True", "False", "Unknown"]

CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


def _message_is_required(schema: dict[str, Any]) -> None:
    """metav1.Condition requires ``message`` (it may be empty); the dump always carries it."""
    schema["required"] = [*schema.get("required", []), "message"]


class Condition(StatusModel):
    """One aspect of the resource's state (metav1.Condition)."""

    model_config = StatusModel.model_config | {"json_schema_extra": _message_is_required}

    type: Annotated[str, Field(max_length=316, pattern=CONDITION_TYPE_PATTERN)]
    """Type of condition in CamelCase, e.g. ``Ready``."""
    status: ConditionStatus
    """``True``, ``False`` or ``Unknown``."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The ``metadata.generation`` this condition was set for."""
    last_transition_time: datetime
    """When the status last changed from one value to another."""
    reason: Annotated[str, Field(min_length=1, max_length=1024, pattern=REASON_PATTERN)]
    """Programmatic CamelCase identifier of the cause of the last transition."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """Human-readable details about the transition."""


ConditionList = Annotated[
    list[Condition],
    Field(
        max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    ),
]
"""Conditions keyed by ``type`` (one of each), as ``metav1.Condition`` lists are."""


def utcnow() -> datetime:
    """The current time in UTC, to the second (Kubernetes timestamps carry no fractions)."""
    return datetime.now(UTC).replace(microsecond=0)


def find_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    """The condition of ``type_``, or None."""
    return next((c for c in conditions if c.type == type_), None)


def is_condition_true(conditions: Sequence[Condition], type_: str) -> bool:
    """Whether the condition of ``type_`` exists and is ``True``."""
    found = find_condition(conditions, type_)
    return found is not None and found.status == "True"


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str = "",
    *,
    observed_generation: int | None = None,
    now: datetime | None = None,
) -> list[Condition]:
    """A copy of ``conditions`` with ``type_`` set; its transition time moves only on a flip."""
    previous = find_condition(conditions, type_)
    if previous is None or previous.status != status:
        transition = now or utcnow()
    else:
        transition = previous.last_transition_time
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        observed_generation=observed_generation,
        last_transition_time=transition,
    )
    result = [c for c in conditions if c.type != type_]
    result.append(updated)
    return sorted(result, key=lambda c: c.type)
