"""Defaults, aliases and the public surface of modelops.api; the CRD defaults what the types do."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from crd_support import crd_for, defaulted
from pydantic import BaseModel, ValidationError

from modelops import api
from modelops.api import (
    APPROVE_ANNOTATION,
    HISTORY_LIMIT,
    LOWER_IS_BETTER,
    METRIC_TYPES,
    DriftPolicySpec,
    DriftPolicyStatus,
    HistoryEntry,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    describe_validation_error,
)
from modelops.api.driftpolicy import Promotion

MINIMAL = {
    "ModelDeployment": {"model": {"uri": "pvc://models/iris/v1"}},
    "DriftPolicy": {"modelDeploymentRef": {"name": "iris"}},
}
TYPES: dict[str, type[BaseModel]] = {
    "ModelDeployment": ModelDeploymentSpec,
    "DriftPolicy": DriftPolicySpec,
}


def test_model_deployment_defaults() -> None:
    spec = ModelDeploymentSpec.model_validate(MINIMAL["ModelDeployment"])
    assert spec.replicas == 1
    assert spec.model.format == "skops"
    assert spec.model.allow_unsafe_pickle is False
    assert spec.model.version is None
    assert spec.image is None
    assert spec.resources is None
    assert (spec.serving.port, spec.serving.max_rows) == (8080, 10_000)
    assert spec.serving.max_request_bytes == 8 * 1024 * 1024
    assert (spec.env, spec.node_selector, spec.tolerations) == ([], {}, [])


def test_drift_policy_defaults() -> None:
    spec = DriftPolicySpec.model_validate(MINIMAL["DriftPolicy"])
    assert spec.interval == "60s"
    assert spec.min_samples == 500
    assert [m.type for m in spec.metrics] == list(METRIC_TYPES)
    assert all(m.threshold is None for m in spec.metrics)
    assert (spec.trigger.min_breached_features, spec.trigger.consecutive_evaluations) == (1, 2)
    assert spec.source.type == "pods"
    assert spec.retraining is None
    assert spec.promotion.mode == "manual"
    assert spec.promotion.min_improvement == 0.0
    assert spec.features is None


def test_retraining_defaults() -> None:
    spec = DriftPolicySpec.model_validate(
        {
            **MINIMAL["DriftPolicy"],
            "retraining": {"dataUri": "pvc://data/x.csv", "outputUri": "pvc://models/x"},
        }
    )
    assert spec.retraining is not None
    retraining = spec.retraining
    assert retraining.enabled is True
    assert (retraining.cooldown, retraining.max_concurrent, retraining.backoff_limit) == (
        "1h",
        1,
        1,
    )
    assert retraining.active_deadline_seconds == 3600
    disabled = DriftPolicySpec.model_validate(
        {**MINIMAL["DriftPolicy"], "retraining": {"enabled": False}}
    )
    assert disabled.retraining is not None
    assert disabled.retraining.data_uri is None


def test_default_metric_lists_are_not_shared_between_objects() -> None:
    first = DriftPolicySpec.model_validate(MINIMAL["DriftPolicy"])
    second = DriftPolicySpec.model_validate(MINIMAL["DriftPolicy"])
    assert first.metrics == second.metrics
    assert first.metrics is not second.metrics


@pytest.mark.parametrize("kind", list(MINIMAL))
def test_the_crd_defaults_exactly_what_the_types_default(kind: str) -> None:
    """What `kubectl get -o yaml` shows after apply equals what the operator reads."""
    stored = defaulted(crd_for(kind), {"spec": MINIMAL[kind]})["spec"]
    typed = TYPES[kind].model_validate(MINIMAL[kind])
    assert stored == without_empty(typed.model_dump(mode="json", by_alias=True, exclude_none=True))
    assert TYPES[kind].model_validate(stored) == typed


def without_empty(value: Any) -> Any:
    """Empty lists and maps mean the same as absent ones (the CRD does not default them)."""
    if isinstance(value, dict):
        items = {k: without_empty(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v not in ({}, [])}
    if isinstance(value, list):
        return [without_empty(v) for v in value]
    return value


def test_camel_case_in_and_out_and_snake_case_by_name() -> None:
    by_alias = ModelDeploymentSpec.model_validate(
        {"model": {"uri": "file:///m", "allowUnsafePickle": True}, "nodeSelector": {"a": "b"}}
    )
    by_name = ModelDeploymentSpec(
        model={"uri": "file:///m", "allow_unsafe_pickle": True},  # type: ignore[arg-type]
        node_selector={"a": "b"},
    )
    assert by_alias == by_name
    dumped = by_alias.model_dump(by_alias=True, exclude_none=True)
    assert dumped["model"]["allowUnsafePickle"] is True
    assert dumped["nodeSelector"] == {"a": "b"}


def test_specs_are_immutable() -> None:
    spec = ModelDeploymentSpec.model_validate(MINIMAL["ModelDeployment"])
    with pytest.raises(ValidationError, match="frozen"):
        spec.replicas = 3  # type: ignore[misc]


def test_status_tolerates_fields_it_does_not_know() -> None:
    status = DriftPolicyStatus.model_validate(
        {"samples": 10, "consecutiveBreaches": 1, "writtenByANewerOperator": True}
    )
    assert (status.samples, status.consecutive_breaches) == (10, 1)


def test_history_is_bounded() -> None:
    entry = HistoryEntry(
        version="v1",
        uri="pvc://models/iris/v1",
        time=datetime(2026, 1, 1, tzinfo=UTC),
        reason="Created",
    )
    ModelDeploymentStatus(history=[entry] * HISTORY_LIMIT)
    with pytest.raises(ValidationError, match=f"at most {HISTORY_LIMIT} items"):
        ModelDeploymentStatus(history=[entry] * (HISTORY_LIMIT + 1))


def test_joblib_is_accepted_with_the_explicit_opt_in() -> None:
    spec = ModelDeploymentSpec.model_validate(
        {"model": {"uri": "pvc://models/m", "format": "joblib", "allowUnsafePickle": True}}
    )
    assert spec.model.format == "joblib"


def test_uri_forms_that_are_accepted() -> None:
    for uri in [
        "pvc://models/iris/v1",
        "pvc://models",
        "file:///srv/models/iris",
        "file://localhost/srv/models",
        "http://models.example.com/iris/v1",
        "https://models.example.com:8443/iris/v1",
        "PVC://models/iris",
    ]:
        assert ModelDeploymentSpec.model_validate({"model": {"uri": uri}}).model.uri == uri


def test_fractions_and_counts_of_breached_features() -> None:
    for value in (0.25, 1, 1.0, 3, 3.0):
        spec = DriftPolicySpec.model_validate(
            {**MINIMAL["DriftPolicy"], "trigger": {"minBreachedFeatures": value}}
        )
        assert spec.trigger.min_breached_features == value


def test_approval_timeout_with_manual_mode() -> None:
    assert Promotion(mode="manual", approval_timeout="24h").approval_timeout == "24h"


def test_public_constants_match_the_contracts() -> None:
    from modelops.drift import METRICS

    assert METRIC_TYPES == METRICS
    assert APPROVE_ANNOTATION == "modelops.dev/approve"
    promotion_metrics = set(
        Promotion.model_json_schema()["properties"]["metric"]["anyOf"][0]["enum"]
    )
    assert promotion_metrics >= LOWER_IS_BETTER
    assert {"accuracy", "f1", "roc_auc", "r2"} <= promotion_metrics
    assert (api.GROUP, api.VERSION) == ("modelops.dev", "v1alpha1")
    assert [k.kind for k in api.KINDS] == ["ModelDeployment", "DriftPolicy"]


def test_validation_errors_read_like_kubectl_paths() -> None:
    with pytest.raises(ValidationError) as caught:
        DriftPolicySpec.model_validate(
            {
                "modelDeploymentRef": {"name": "iris"},
                "metrics": [{"type": "psi"}, {"type": "ks", "threshold": -1}],
                "features": {"overrides": [{"name": "a", "metrics": [{"type": "x"}]}]},
            }
        )
    message = describe_validation_error(caught.value)
    assert message == (
        "spec.metrics[1].threshold: Input should be greater than 0; "
        "spec.features.overrides[0].metrics[0].type: "
        "Input should be 'psi', 'ks', 'js', 'wasserstein' or 'chi2'"
    )
    assert describe_validation_error(caught.value, prefix="").startswith("metrics[1].threshold: ")


def test_a_quantity_error_is_reported_once() -> None:
    with pytest.raises(ValidationError) as caught:
        ModelDeploymentSpec.model_validate(
            {"model": {"uri": "pvc://m/x"}, "resources": {"limits": {"cpu": [1]}}}
        )
    assert describe_validation_error(caught.value) == (
        "spec.resources.limits.cpu: [1] is not a resource quantity: use e.g. 500m, 1Gi or 2"
    )
