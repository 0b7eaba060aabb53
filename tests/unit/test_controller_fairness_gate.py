"""The fairness gate as a pure function of the policy's gate and the trainer's result JSON (the
``fairness`` block of issue #15's contract): every way to pass, to block, and the messages."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from modelops.api.fairness import Fairness
from modelops.controller.fairness_gate import GateVerdict, judge, read_report, storable

VERSION = "v1-r1"


def gate(**fields: Any) -> Fairness:
    base: dict[str, Any] = {
        "sensitiveColumns": ["sex"],
        "metric": "demographic_parity_difference",
        "max": 0.1,
    }
    return Fairness.model_validate({**base, **fields})


def result(columns: dict[str, Any] | None, metric: str = "demographic_parity_difference") -> str:
    """The trainer's termination message: the result JSON, with a fairness block if given."""
    document: dict[str, Any] = {
        "version": VERSION,
        "uri": f"pvc://models/credit/{VERSION}",
        "metrics": {"accuracy": 0.91},
        "baseline": {"accuracy": 0.90},
    }
    if columns is not None:
        document["fairness"] = {"metric": metric, "minGroupRows": 30, "columns": columns}
    return json.dumps(document)


def column(
    challenger: float | None,
    champion: float | None = 0.04,
    groups: tuple[str, ...] = ("F", "M"),
    small: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "challenger": challenger,
        "champion": champion,
        "groups": list(groups),
        "smallGroups": list(small),
    }


def verdict(fairness: Fairness, message: str) -> GateVerdict:
    return judge(fairness, read_report(message), VERSION)


def test_a_fair_candidate_passes_and_the_note_names_the_values() -> None:
    found = verdict(gate(), result({"sex": column(0.03)}))
    assert found.passed
    assert found.reason == ""
    assert found.message == "Fairness: demographic_parity_difference within max 0.1 (sex 0.03)."


def test_a_difference_over_max_fails_naming_metric_column_groups_and_values() -> None:
    found = verdict(gate(), result({"sex": column(0.21, 0.04)}))
    assert (found.passed, found.reason) == (False, "FairnessGateFailed")
    assert found.message == (
        "Kept the current model: candidate v1-r1 fails the fairness gate on "
        "demographic_parity_difference: sex: 0.21 between groups F and M, over max 0.1 "
        "(champion 0.04)."
    )


def test_exactly_the_bound_passes() -> None:
    assert verdict(gate(), result({"sex": column(0.1)})).passed
    ratio = gate(metric="demographic_parity_ratio", max=None, min=0.8)
    assert verdict(ratio, result({"sex": column(0.8, 0.9)}, "demographic_parity_ratio")).passed


def test_a_ratio_under_min_fails() -> None:
    ratio = gate(metric="equalized_odds_ratio", max=None, min=0.8)
    found = verdict(ratio, result({"sex": column(0.62, 0.91)}, "equalized_odds_ratio"))
    assert (found.passed, found.reason) == (False, "FairnessGateFailed")
    assert "sex: 0.62 between groups F and M, below min 0.8 (champion 0.91)" in found.message


@pytest.mark.parametrize(
    ("metric", "bound", "challenger", "champion", "blocked"),
    [
        ("demographic_parity_difference", {"max": 0.3}, 0.16, 0.10, True),  # 0.06 worse
        ("demographic_parity_difference", {"max": 0.3}, 0.15, 0.10, False),  # exactly 0.05
        ("demographic_parity_difference", {"max": 0.3}, 0.02, 0.20, False),  # fairer
        ("demographic_parity_ratio", {"min": 0.5}, 0.83, 0.90, True),  # 0.07 worse
        ("demographic_parity_ratio", {"min": 0.5}, 0.85, 0.90, False),  # exactly 0.05
        ("demographic_parity_ratio", {"min": 0.5}, 0.99, 0.70, False),  # fairer
    ],
)
def test_max_degradation_against_the_champion(
    metric: str, bound: dict[str, float], challenger: float, champion: float, blocked: bool
) -> None:
    fairness = gate(**{"metric": metric, "max": None, **bound, "maxDegradation": 0.05})
    found = verdict(fairness, result({"sex": column(challenger, champion)}, metric))
    assert found.passed is not blocked
    if blocked:
        assert found.reason == "FairnessGateFailed"
        assert "less fair, more than maxDegradation 0.05" in found.message
        assert f"against the champion's {champion:.4g}" in found.message


def test_without_a_champion_only_the_bound_counts() -> None:
    found = verdict(gate(maxDegradation=0.0), result({"sex": column(0.09, None)}))
    assert found.passed


def test_small_groups_have_their_own_reason() -> None:
    found = verdict(gate(), result({"sex": column(0.05, small=("X",))}))
    assert (found.passed, found.reason) == (False, "FairnessGroupTooSmall")
    assert "sex: groups with fewer than 30 holdout rows: X" in found.message
    assert "challenger 0.05, champion 0.04, max 0.1" in found.message


def test_a_broken_bound_outranks_small_groups_and_both_are_named() -> None:
    found = verdict(
        gate(sensitiveColumns=["sex", "race"]),
        result({"sex": column(0.05, small=("X",)), "race": column(0.4, groups=("a", "b"))}),
    )
    assert found.reason == "FairnessGateFailed"
    assert [f.kind for f in found.findings] == ["bound", "small_groups"]
    assert found.message.index("race: 0.4") < found.message.index("sex: groups with fewer")


@pytest.mark.parametrize(
    "message",
    [
        result(None),  # a trainer without fairness support
        result(None).replace("}", ', "fairness": null}', 1)[:-1] + "}",
    ],
    ids=["absent", "null"],
)
def test_a_configured_gate_blocks_a_result_without_fairness(message: str) -> None:
    found = verdict(gate(), message)
    assert (found.passed, found.reason) == (False, "FairnessGateFailed")
    assert "the trainer reported no fairness measurement of sex" in found.message
    assert "never promoted" in found.message


def test_a_malformed_fairness_block_blocks_and_says_where() -> None:
    document = json.loads(result({"sex": column(0.01)}))
    document["fairness"]["columns"]["sex"]["groups"] = "F,M"
    found = verdict(gate(), json.dumps(document))
    assert found.reason == "FairnessGateFailed"
    assert "its fairness block is malformed at columns.sex.groups" in found.message
    assert "so sex went unmeasured; an unmeasured candidate is never promoted" in found.message


def test_another_metric_than_the_gate_asks_blocks() -> None:
    found = verdict(gate(), result({"sex": column(0.01)}, metric="recall_difference"))
    assert found.reason == "FairnessGateFailed"
    assert "measured recall_difference, the gate asks for demographic_parity_difference" in (
        found.message
    )


def test_a_smaller_group_minimum_than_the_gate_asks_blocks() -> None:
    found = verdict(gate(minGroupRows=100), result({"sex": column(0.01)}))
    assert found.reason == "FairnessGateFailed"
    assert "below 30 holdout rows, the gate asks for 100" in found.message


def test_a_column_the_trainer_did_not_measure_blocks() -> None:
    found = verdict(gate(sensitiveColumns=["sex", "age"]), result({"sex": column(0.01)}))
    assert found.reason == "FairnessGateFailed"
    assert "age: not measured" in found.message


def test_the_intersection_is_required_when_asked_and_matched_in_any_order() -> None:
    fairness = gate(sensitiveColumns=["sex", "race"], intersection=True)
    both = {"sex": column(0.01), "race": column(0.02)}
    missing = verdict(fairness, result(both))
    assert "sex&race: not measured" in missing.message
    passed = verdict(fairness, result({**both, "race&sex": column(0.03)}))
    assert passed.passed
    assert "race&sex 0.03" in passed.message
    failed = verdict(fairness, result({**both, "sex&race": column(0.3, groups=("F&b", "M&a"))}))
    assert "sex&race: 0.3 between groups F&b and M&a" in failed.message


@pytest.mark.parametrize("value", [None, math.nan, math.inf])
def test_a_value_that_could_not_be_computed_blocks(value: float | None) -> None:
    message = result({"sex": column(0.0)}).replace('"challenger": 0.0', f'"challenger": {value}')
    message = message.replace("None", "null").replace("inf", "Infinity").replace("nan", "NaN")
    found = verdict(gate(), message)
    assert found.reason == "FairnessGateFailed"
    assert "sex: the challenger's demographic_parity_difference could not be computed" in (
        found.message
    )


def test_many_findings_are_counted_not_listed() -> None:
    columns = [f"c{i}" for i in range(7)]
    found = verdict(gate(sensitiveColumns=columns), result({c: column(0.5) for c in columns}))
    assert found.message.endswith("; and 3 more.")
    assert len(found.message) < 1024


def test_the_report_is_kept_with_nulls_for_values_not_numbers() -> None:
    message = result({"sex": column(0.2, None)}).replace('"challenger": 0.2', '"challenger": NaN')
    report = read_report(message).report
    assert report is not None
    kept = storable(report).model_dump(by_alias=True, mode="json", exclude_none=True)
    assert kept == {
        "metric": "demographic_parity_difference",
        "minGroupRows": 30,
        "columns": {"sex": {"groups": ["F", "M"], "smallGroups": []}},
    }
