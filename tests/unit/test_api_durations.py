"""Durations: Kubernetes/Go-style strings, the same in pydantic, in the pattern and in CEL."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import celpy
import pytest
from crd_support import crd_for, open_api_schema
from pydantic import ValidationError

from modelops.api import Duration, parse_duration
from modelops.api.base import DURATION_PATTERN, ApiModel, at_least

CEL = celpy.Environment()

VALID = {
    "30s": 30,
    "5m": 300,
    "1h": 3600,
    "1h30m": 5400,
    "250ms": 0.25,
    "1.5h": 5400,
    "0s": 0,
    "2h45m30.5s": 9930.5,
    "90s": 90,
}
INVALID = ["abc", "", "10", "-5s", "5 s", "1d", "1H", "s", "1.s", "5m ", "1us"]


@pytest.mark.parametrize(("text", "seconds"), VALID.items())
def test_valid_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", INVALID)
def test_invalid_durations_are_refused_with_a_hint(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration: use a number with ms, s, m or h"):
        parse_duration(text)


@pytest.mark.parametrize("text", [*VALID, *INVALID])
def test_the_crd_pattern_agrees_with_the_parser(text: str) -> None:
    assert bool(re.fullmatch(DURATION_PATTERN, text)) == (text in VALID)


@pytest.mark.parametrize(("text", "seconds"), VALID.items())
def test_cel_duration_agrees_with_the_parser(text: str, seconds: float) -> None:
    program = CEL.program(CEL.compile("duration(self)"))
    value = program.evaluate({"self": celpy.celtypes.StringType(text)})
    assert value.total_seconds() == seconds


class Timing(ApiModel):
    every: Annotated[Duration, at_least("10s")] = "60s"
    """How often."""


@pytest.mark.parametrize("text", ["10s", "0.5m", "10000ms", "1h", "9.5s", "5s", "9999ms"])
def test_minimum_is_the_same_in_pydantic_and_in_cel(text: str) -> None:
    schema = Timing.model_json_schema(by_alias=True)["properties"]["every"]
    (rule,) = schema["x-kubernetes-validations"]
    assert rule == {"rule": "duration(self) >= duration('10s')", "message": "must be at least 10s"}
    accepted_by_cel = bool(
        CEL.program(CEL.compile(rule["rule"])).evaluate({"self": celpy.celtypes.StringType(text)})
    )
    expected = parse_duration(text).total_seconds() >= 10
    if expected:
        assert Timing(every=text).every == text
    else:
        with pytest.raises(ValidationError, match=f"must be at least 10s, got {text}"):
            Timing(every=text)
    assert accepted_by_cel == expected


def test_the_value_stays_as_written() -> None:
    assert Timing(every="1h30m").every == "1h30m"
    assert Timing().every == "60s"


def test_an_overlong_duration_is_refused_by_both_layers() -> None:
    text = "1s" * 20
    with pytest.raises(ValidationError, match="at most 32 characters"):
        Timing(every=text)
    assert Timing.model_json_schema()["properties"]["every"]["maxLength"] == 32


def test_an_invalid_minimum_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        at_least("ten seconds")


def test_every_duration_in_the_crds_carries_the_pattern() -> None:
    spec = open_api_schema(crd_for("DriftPolicy"))["properties"]["spec"]["properties"]
    nodes = [
        spec["interval"],
        spec["source"]["properties"]["window"],
        spec["retraining"]["properties"]["cooldown"],
        spec["promotion"]["properties"]["approvalTimeout"],
    ]
    for node in nodes:
        assert node["pattern"] == DURATION_PATTERN
        assert node["maxLength"] == 32
    assert spec["interval"]["x-kubernetes-validations"][0]["message"] == "must be at least 10s"
