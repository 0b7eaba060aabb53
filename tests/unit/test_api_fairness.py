"""``spec.promotion.fairness``: valid gates pass the types and the CRD, and carry their bound."""

from __future__ import annotations

from typing import Any

import pytest
from crd_support import crd_for, rejections

from modelops.api import DriftPolicySpec
from modelops.api.fairness import FAIRNESS_METRICS, Fairness, is_ratio


def policy(fairness: dict[str, Any]) -> dict[str, Any]:
    return {
        "modelDeploymentRef": {"name": "credit"},
        "retraining": {"dataUri": "pvc://data/credit.csv", "outputUri": "pvc://models/credit"},
        "promotion": {"mode": "manual", "fairness": fairness},
    }


@pytest.mark.parametrize("metric", FAIRNESS_METRICS)
def test_every_metric_with_the_bound_of_its_kind_passes_both_layers(metric: str) -> None:
    bound = {"min": 0.8} if is_ratio(metric) else {"max": 0.1}
    spec = policy({"sensitiveColumns": ["sex", "age band"], "metric": metric, **bound})
    gate = DriftPolicySpec.model_validate(spec).promotion.fairness
    assert gate is not None
    assert gate.bound == (0.8 if is_ratio(metric) else 0.1)
    resource = {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "DriftPolicy",
        "metadata": {"name": "credit-drift", "namespace": "default"},
        "spec": spec,
    }
    assert rejections(crd_for("DriftPolicy"), resource) == []


def test_the_defaults() -> None:
    gate = Fairness.model_validate(
        {"sensitiveColumns": ["sex"], "metric": "demographic_parity_difference", "max": 0.1}
    )
    assert (gate.min_group_rows, gate.intersection, gate.allow_sensitive_features) == (
        30,
        False,
        False,
    )
    assert gate.max_degradation is None
    assert gate.intersection_name is None


def test_the_intersection_is_named_after_the_columns_in_their_order() -> None:
    gate = Fairness.model_validate(
        {
            "sensitiveColumns": ["sex", "race"],
            "metric": "equalized_odds_ratio",
            "min": 0.8,
            "intersection": True,
        }
    )
    assert gate.intersection_name == "sex&race"
    single = gate.model_copy(update={"sensitive_columns": ["sex"]})
    assert single.intersection_name is None  # the intersection of one column is the column
