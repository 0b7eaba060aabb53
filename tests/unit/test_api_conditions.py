"""Conditions: shaped like metav1.Condition; lastTransitionTime moves only when status flips."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import kubernetes_validate
import pytest
from crd_support import crd_for, open_api_schema
from pydantic import ValidationError

from modelops.api import (
    Condition,
    find_condition,
    is_condition_true,
    reasons,
    set_condition,
    utcnow,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
T2 = T0 + timedelta(minutes=10)


def metav1_condition_schema() -> dict[str, object]:
    """Kubernetes' own metav1.Condition schema, as shipped with kubernetes-validate."""
    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    schema: dict[str, object] = json.loads(
        (base / "v1.30.0-local-strict" / "condition-meta-v1.json").read_text()
    )
    return schema


def test_a_new_condition_gets_the_current_time() -> None:
    conditions = set_condition([], reasons.READY, "False", reasons.ROLLOUT_IN_PROGRESS, now=T0)
    (ready,) = conditions
    assert (ready.type, ready.status, ready.reason) == ("Ready", "False", "RolloutInProgress")
    assert ready.last_transition_time == T0
    assert ready.message == ""


def test_the_same_status_keeps_the_transition_time_but_updates_reason_and_message() -> None:
    first = set_condition([], "Ready", "False", "RolloutInProgress", "0/2 ready", now=T0)
    second = set_condition(first, "Ready", "False", "MinimumReplicasUnavailable", "1/2", now=T1)
    (ready,) = second
    assert ready.last_transition_time == T0
    assert (ready.reason, ready.message) == ("MinimumReplicasUnavailable", "1/2")


def test_a_flip_moves_the_transition_time_each_time() -> None:
    conditions = set_condition([], "Ready", "False", "RolloutInProgress", now=T0)
    conditions = set_condition(conditions, "Ready", "True", "MinimumReplicasAvailable", now=T1)
    assert conditions[0].last_transition_time == T1
    conditions = set_condition(conditions, "Ready", "Unknown", "SourceUnreachable", now=T2)
    assert conditions[0].last_transition_time == T2


def test_other_conditions_are_kept_sorted_and_the_input_is_not_changed() -> None:
    start = set_condition([], "Ready", "True", "MinimumReplicasAvailable", now=T0)
    start = set_condition(start, "Progressing", "True", "RolloutComplete", now=T0)
    snapshot = [c.model_copy() for c in start]
    after = set_condition(start, "Degraded", "False", "RolloutComplete", now=T1)
    assert start == snapshot
    assert [c.type for c in after] == ["Degraded", "Progressing", "Ready"]
    assert find_condition(after, "Ready") == find_condition(start, "Ready")


def test_observed_generation_is_recorded() -> None:
    (ready,) = set_condition([], "Ready", "True", "RolloutComplete", observed_generation=7, now=T0)
    assert ready.observed_generation == 7


def test_without_now_the_time_is_utc_whole_seconds() -> None:
    before = utcnow()
    (ready,) = set_condition([], "Ready", "True", "RolloutComplete")
    assert ready.last_transition_time.tzinfo is not None
    assert ready.last_transition_time.microsecond == 0
    assert before <= ready.last_transition_time <= utcnow()


def test_find_and_is_true() -> None:
    conditions = set_condition([], "DriftDetected", "True", "DriftFound", now=T0)
    conditions = set_condition(conditions, "SourceReady", "False", "SourceUnreachable", now=T0)
    assert is_condition_true(conditions, "DriftDetected")
    assert not is_condition_true(conditions, "SourceReady")
    assert not is_condition_true(conditions, "Retraining")
    assert find_condition(conditions, "Retraining") is None
    found = find_condition(conditions, "SourceReady")
    assert found is not None
    assert found.reason == "SourceUnreachable"


def test_dump_has_exactly_the_metav1_fields_in_camel_case() -> None:
    (ready,) = set_condition([], "Ready", "True", "RolloutComplete", "done", now=T0)
    dumped = ready.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped == {
        "type": "Ready",
        "status": "True",
        "reason": "RolloutComplete",
        "message": "done",
        "lastTransitionTime": "2026-01-02T03:04:05Z",
    }
    metav1 = metav1_condition_schema()
    assert set(dumped) <= set(metav1["properties"])  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["ModelDeployment", "DriftPolicy"])
def test_the_crd_condition_schema_matches_metav1(kind: str) -> None:
    metav1 = metav1_condition_schema()
    status = open_api_schema(crd_for(kind))["properties"]["status"]["properties"]
    ours = status["conditions"]["items"]
    assert set(ours["properties"]) == set(metav1["properties"])  # type: ignore[arg-type]
    assert set(ours["required"]) == set(metav1["required"])  # type: ignore[arg-type]
    assert ours["properties"]["lastTransitionTime"]["format"] == "date-time"
    assert ours["properties"]["status"]["enum"] == ["True", "False", "Unknown"]


def test_conditions_from_the_api_server_parse() -> None:
    condition = Condition.model_validate(
        {
            "type": "Ready",
            "status": "True",
            "reason": "RolloutComplete",
            "message": "",
            "lastTransitionTime": "2026-01-02T03:04:05Z",
            "observedGeneration": 3,
            "someFutureField": "ignored",
        }
    )
    assert condition.last_transition_time == T0
    assert condition.observed_generation == 3


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("status", "Yes", "Input should be 'True', 'False' or 'Unknown'"),
        ("reason", "not camel case", "should match pattern"),
        ("reason", "", "at least 1 character"),
        ("type", "Ready!", "should match pattern"),
    ],
)
def test_invalid_conditions_are_refused(field: str, value: str, reason: str) -> None:
    data = {"type": "Ready", "status": "True", "reason": "Done", "lastTransitionTime": T0}
    with pytest.raises(ValidationError, match=reason):
        Condition.model_validate({**data, field: value})


def test_every_reason_constant_is_a_valid_reason() -> None:
    values = [v for k, v in vars(reasons).items() if k.isupper() and isinstance(v, str)]
    assert len(values) > 20
    for value in values:
        Condition(type=value, status="True", reason=value, last_transition_time=T0)
