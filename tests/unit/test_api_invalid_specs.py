"""Bad input: every invalid spec is refused by the types AND by the generated CRD.

One table, one parametrised test. Each case states the pydantic error (field path + reason) and
which CRD layer the API server would refuse it with: ``schema`` (OpenAPI: required, type,
pattern, enum, bounds, unknown fields, list-map keys) or ``cel`` (x-kubernetes-validations), each
with the path and the message it reports. A case with no CRD layer would be a rule only the
operator can enforce; the test then proves the CRD really accepts it, so the gap is visible.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest
from crd_support import crd_for, rejections
from pydantic import BaseModel, ValidationError

from modelops.api import (
    DriftPolicySpec,
    ModelDeploymentSpec,
    describe_validation_error,
)

REMOVE = object()

MODEL_DEPLOYMENT = {"model": {"uri": "pvc://models/iris/v1"}}
DRIFT_POLICY = {
    "modelDeploymentRef": {"name": "iris"},
    "retraining": {"dataUri": "pvc://data/iris/fresh.csv", "outputUri": "pvc://models/iris"},
}


def merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``patch`` deep-merged in; ``REMOVE`` deletes a key."""
    result = copy.deepcopy(base)
    for key, value in patch.items():
        if value is REMOVE:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # ModelDeployment | DriftPolicy
    patch: dict[str, Any]
    field: str  # the path the pydantic message names
    reason: str  # ... and the reason it gives
    crd: tuple[tuple[str, str, str], ...] = field(default=())  # (layer, path, message part)

    @property
    def spec(self) -> dict[str, Any]:
        return merged(
            MODEL_DEPLOYMENT if self.kind == "ModelDeployment" else DRIFT_POLICY, self.patch
        )


def md(
    id_: str, patch: dict[str, Any], field_: str, reason: str, *crd: tuple[str, str, str]
) -> Case:
    return Case(id_, "ModelDeployment", patch, field_, reason, crd)


def dp(
    id_: str, patch: dict[str, Any], field_: str, reason: str, *crd: tuple[str, str, str]
) -> Case:
    return Case(id_, "DriftPolicy", patch, field_, reason, crd)


URI_SHAPE = "the scheme must be pvc, file, http, https or s3"
DOTDOT = "'..' is not allowed in a path"

CASES = [
    # --- ModelDeployment ----------------------------------------------------------------------
    md(
        "missing-model-uri",
        {"model": {"uri": REMOVE}},
        "spec.model.uri",
        "Field required",
        ("schema", "spec.model", "'uri' is a required property"),
    ),
    md(
        "missing-model",
        {"model": REMOVE},
        "spec.model",
        "Field required",
        ("schema", "spec", "'model' is a required property"),
    ),
    md(
        "empty-model-uri",
        {"model": {"uri": ""}},
        "spec.model.uri",
        "at least 1 character",
        ("schema", "spec.model.uri", "should be non-empty"),
    ),
    md(
        "unknown-scheme",
        {"model": {"uri": "gs://bucket/iris"}},
        "spec.model.uri",
        "unsupported URI scheme",
        ("cel", "spec.model.uri", URI_SHAPE),
    ),
    md(
        "s3-bucket-is-an-ip-address",
        {"model": {"uri": "s3://10.0.0.1/iris"}},
        "spec.model.uri",
        "does not name a valid bucket",
        ("cel", "spec.model.uri", "nor be an IP address"),
    ),
    md(
        "s3-with-a-query",
        {"model": {"uri": "s3://models/iris?versionId=3"}},
        "spec.model.uri",
        "takes no ?query or #fragment",
        ("cel", "spec.model.uri", URI_SHAPE),
    ),
    md(
        "dotdot-in-path",
        {"model": {"uri": "pvc://models/iris/../../secrets"}},
        "spec.model.uri",
        "'..' is not allowed",
        ("cel", "spec.model.uri", DOTDOT),
    ),
    md(
        "encoded-dotdot-in-path",
        {"model": {"uri": "file:///models/%2e%2e/etc"}},
        "spec.model.uri",
        "'..' is not allowed",
        ("cel", "spec.model.uri", DOTDOT),
    ),
    md(
        "pvc-without-claim",
        {"model": {"uri": "pvc:///iris/v1"}},
        "spec.model.uri",
        "names no claim",
        ("cel", "spec.model.uri", URI_SHAPE),
    ),
    md(
        "pvc-claim-not-a-name",
        {"model": {"uri": "pvc://My_Models/iris"}},
        "spec.model.uri",
        "not a PersistentVolumeClaim name",
        ("cel", "spec.model.uri", URI_SHAPE),
    ),
    md(
        "relative-file-uri",
        {"model": {"uri": "file://models/iris"}},
        "spec.model.uri",
        "not an absolute file URI",
        ("cel", "spec.model.uri", URI_SHAPE),
    ),
    md(
        "negative-replicas",
        {"replicas": -1},
        "spec.replicas",
        "greater than or equal to 0",
        ("schema", "spec.replicas", "less than the minimum of 0"),
    ),
    md(
        "too-many-replicas",
        {"replicas": 5000},
        "spec.replicas",
        "less than or equal to 1000",
        ("schema", "spec.replicas", "greater than the maximum of 1000"),
    ),
    md(
        "replicas-not-a-number",
        {"replicas": "two"},
        "spec.replicas",
        "valid integer",
        ("schema", "spec.replicas", "is not of type 'integer'"),
    ),
    md(
        "unknown-model-format",
        {"model": {"format": "onnx"}},
        "spec.model.format",
        "Input should be 'skops' or 'joblib'",
        ("schema", "spec.model.format", "is not one of ['skops', 'joblib']"),
    ),
    md(
        "pickle-without-opt-in",
        {"model": {"format": "joblib"}},
        "spec.model",
        "set allowUnsafePickle: true",
        ("cel", "spec.model", "set allowUnsafePickle: true"),
    ),
    md(
        "storage-endpoint-with-userinfo",
        {"storage": {"endpoint": "http://key:secret@minio:9000"}},
        "spec.storage.endpoint",
        "should match pattern",
        ("schema", "spec.storage.endpoint", "does not match"),
    ),
    md(
        "storage-endpoint-not-http",
        {"storage": {"endpoint": "minio:9000"}},
        "spec.storage.endpoint",
        "should match pattern",
        ("schema", "spec.storage.endpoint", "does not match"),
    ),
    md(
        "storage-secret-not-a-name",
        {"storage": {"secretName": "S3 keys"}},
        "spec.storage.secretName",
        "should match pattern",
        ("schema", "spec.storage.secretName", "does not match"),
    ),
    md(
        "bad-version-label",
        {"model": {"version": "v 1"}},
        "spec.model.version",
        "should match pattern",
        ("schema", "spec.model.version", "does not match"),
    ),
    md(
        "privileged-port",
        {"serving": {"port": 80}},
        "spec.serving.port",
        "greater than or equal to 1024",
        ("schema", "spec.serving.port", "less than the minimum of 1024"),
    ),
    md(
        "unknown-field",
        {"replica": 2},
        "spec.replica",
        "Extra inputs are not permitted",
        ("schema", "spec.replica", "unknown field"),
    ),
    md(
        "reserved-env-name",
        {"env": [{"name": "MODELOPS_ALLOW_UNSAFE_PICKLE", "value": "1"}]},
        "spec.env[0].name",
        "reserved for the operator",
        ("cel", "spec.env[0]", "reserved for the operator"),
    ),
    md(
        "env-value-and-value-from",
        {"env": [{"name": "A", "value": "1", "valueFrom": {"configMapKeyRef": {"name": "c"}}}]},
        "spec.env[0]",
        "set value or valueFrom, not both",
        ("cel", "spec.env[0]", "set value or valueFrom, not both"),
    ),
    md(
        "bad-quantity",
        {"resources": {"limits": {"memory": "lots"}}},
        "spec.resources.limits.memory",
        "not a resource quantity",
        ("schema", "spec.resources.limits.memory", "does not match"),
    ),
    md(
        "negative-quantity",
        {"resources": {"requests": {"cpu": -2}}},
        "spec.resources.requests.cpu",
        "must not be negative",
        ("schema", "spec.resources.requests.cpu", "less than the minimum of 0"),
    ),
    # --- DriftPolicy ---------------------------------------------------------------------------
    dp(
        "missing-model-reference",
        {"modelDeploymentRef": REMOVE},
        "spec.modelDeploymentRef",
        "Field required",
        ("schema", "spec", "'modelDeploymentRef' is a required property"),
    ),
    dp(
        "reference-not-a-name",
        {"modelDeploymentRef": {"name": "Iris_Model"}},
        "spec.modelDeploymentRef.name",
        "should match pattern",
        ("schema", "spec.modelDeploymentRef.name", "does not match"),
    ),
    dp(
        "zero-threshold",
        {"metrics": [{"type": "psi", "threshold": 0}]},
        "spec.metrics[0].threshold",
        "greater than 0",
        ("schema", "spec.metrics[0].threshold", "less than or equal to the minimum of 0"),
    ),
    dp(
        "negative-threshold",
        {"metrics": [{"type": "ks", "threshold": -0.1}]},
        "spec.metrics[0].threshold",
        "greater than 0",
        ("schema", "spec.metrics[0].threshold", "less than or equal to the minimum of 0"),
    ),
    dp(
        "unknown-metric-type",
        {"metrics": [{"type": "kl", "threshold": 0.1}]},
        "spec.metrics[0].type",
        "Input should be 'psi', 'ks', 'js', 'wasserstein' or 'chi2'",
        ("schema", "spec.metrics[0].type", "is not one of"),
    ),
    dp(
        "repeated-metric-type",
        {"metrics": [{"type": "psi"}, {"type": "psi", "threshold": 0.3}]},
        "spec.metrics",
        "metric types must be unique, repeated: psi",
        ("schema", "spec.metrics", "duplicate entries for key ['type']"),
    ),
    dp(
        "no-metrics",
        {"metrics": []},
        "spec.metrics",
        "at least 1 item",
        ("schema", "spec.metrics", "should be non-empty"),
    ),
    dp(
        "repeated-feature-override",
        {"features": {"overrides": [{"name": "a", "metrics": [{"type": "psi"}]}] * 2}},
        "spec.features.overrides",
        "override names must be unique, repeated: a",
        ("schema", "spec.features.overrides", "duplicate entries for key ['name']"),
    ),
    dp(
        "repeated-included-feature",
        {"features": {"include": ["sepal length (cm)", "sepal length (cm)"]}},
        "spec.features.include",
        "feature names must be unique",
        ("schema", "spec.features.include", "duplicate entries in a set"),
    ),
    dp(
        "interval-not-a-duration",
        {"interval": "abc"},
        "spec.interval",
        "'abc' is not a duration",
        ("schema", "spec.interval", "does not match"),
    ),
    dp(
        "interval-too-short",
        {"interval": "5s"},
        "spec.interval",
        "must be at least 10s, got 5s",
        ("cel", "spec.interval", "must be at least 10s"),
    ),
    dp(
        "zero-min-samples",
        {"minSamples": 0},
        "spec.minSamples",
        "greater than or equal to 1",
        ("schema", "spec.minSamples", "less than the minimum of 1"),
    ),
    dp(
        "negative-min-improvement",
        {"promotion": {"minImprovement": -0.01}},
        "spec.promotion.minImprovement",
        "greater than or equal to 0",
        ("schema", "spec.promotion.minImprovement", "less than the minimum of 0"),
    ),
    dp(
        "unknown-promotion-mode",
        {"promotion": {"mode": "yolo"}},
        "spec.promotion.mode",
        "Input should be 'auto', 'manual' or 'none'",
        ("schema", "spec.promotion.mode", "is not one of ['auto', 'manual', 'none']"),
    ),
    dp(
        "unknown-promotion-metric",
        {"promotion": {"metric": "precision"}},
        "spec.promotion.metric",
        "Input should be 'accuracy'",
        ("schema", "spec.promotion.metric", "is not one of"),
    ),
    dp(
        "approval-timeout-without-manual-mode",
        {"promotion": {"mode": "auto", "approvalTimeout": "1h"}},
        "spec.promotion",
        "approvalTimeout applies only to mode manual",
        ("cel", "spec.promotion", "approvalTimeout applies only to mode manual"),
    ),
    dp(
        "approval-timeout-too-short",
        {"promotion": {"mode": "manual", "approvalTimeout": "30s"}},
        "spec.promotion.approvalTimeout",
        "must be at least 1m",
        ("cel", "spec.promotion.approvalTimeout", "must be at least 1m"),
    ),
    dp(
        "fairness-difference-with-min",
        {
            "promotion": {
                "fairness": {
                    "sensitiveColumns": ["sex"],
                    "metric": "demographic_parity_difference",
                    "min": 0.8,
                }
            }
        },
        "spec.promotion.fairness",
        "a difference metric takes max (the largest allowed difference), not min",
        ("cel", "spec.promotion.fairness", "a difference metric takes max"),
    ),
    dp(
        "fairness-ratio-with-max",
        {
            "promotion": {
                "fairness": {
                    "sensitiveColumns": ["sex"],
                    "metric": "equalized_odds_ratio",
                    "max": 0.1,
                }
            }
        },
        "spec.promotion.fairness",
        "a ratio metric takes min (the smallest allowed ratio), not max",
        ("cel", "spec.promotion.fairness", "a ratio metric takes min"),
    ),
    dp(
        "fairness-without-a-bound",
        {
            "promotion": {
                "fairness": {
                    "sensitiveColumns": ["sex"],
                    "metric": "recall_difference",
                    "maxDegradation": 0.05,
                }
            }
        },
        "spec.promotion.fairness",
        "a difference metric takes max",
        ("cel", "spec.promotion.fairness", "a difference metric takes max"),
    ),
    dp(
        "fairness-both-bounds",
        {
            "promotion": {
                "fairness": {
                    "sensitiveColumns": ["sex"],
                    "metric": "demographic_parity_ratio",
                    "min": 0.8,
                    "max": 0.1,
                }
            }
        },
        "spec.promotion.fairness",
        "a ratio metric takes min (the smallest allowed ratio), not max",
        ("cel", "spec.promotion.fairness", "a ratio metric takes min"),
    ),
    dp(
        "fairness-no-sensitive-columns",
        {
            "promotion": {
                "fairness": {
                    "sensitiveColumns": [],
                    "metric": "demographic_parity_difference",
                    "max": 0.1,
                }
            }
        },
        "spec.promotion.fairness.sensitiveColumns",
        "at least 1 item",
        ("schema", "spec.promotion.fairness.sensitiveColumns", "should be non-empty"),
    ),
    dp(
        "fairness-column-with-a-comma",
        {
            "promotion": {
                "fairness": {
                    "sensitiveColumns": ["sex,race"],
                    "metric": "demographic_parity_difference",
                    "max": 0.1,
                }
            }
        },
        "spec.promotion.fairness.sensitiveColumns[0]",
        "should match pattern",
        ("schema", "spec.promotion.fairness.sensitiveColumns[0]", "does not match"),
    ),
    dp(
        "fairness-repeated-column",
        {
            "promotion": {
                "fairness": {
                    "sensitiveColumns": ["sex", "sex"],
                    "metric": "demographic_parity_difference",
                    "max": 0.1,
                }
            }
        },
        "spec.promotion.fairness.sensitiveColumns",
        "sensitive columns must be unique, repeated: sex",
        ("schema", "spec.promotion.fairness.sensitiveColumns", "duplicate"),
    ),
    dp(
        "fairness-unknown-metric",
        {
            "promotion": {
                "fairness": {
                    "sensitiveColumns": ["sex"],
                    "metric": "precision_difference",
                    "max": 0.1,
                }
            }
        },
        "spec.promotion.fairness.metric",
        "Input should be 'demographic_parity_difference'",
        ("schema", "spec.promotion.fairness.metric", "is not one of"),
    ),
    dp(
        "fairness-bound-over-one",
        {
            "promotion": {
                "fairness": {
                    "sensitiveColumns": ["sex"],
                    "metric": "demographic_parity_difference",
                    "max": 1.5,
                }
            }
        },
        "spec.promotion.fairness.max",
        "less than or equal to 1",
        ("schema", "spec.promotion.fairness.max", "greater than the maximum of 1"),
    ),
    dp(
        "fairness-zero-min-group-rows",
        {
            "promotion": {
                "fairness": {
                    "sensitiveColumns": ["sex"],
                    "minGroupRows": 0,
                    "metric": "demographic_parity_difference",
                    "max": 0.1,
                }
            }
        },
        "spec.promotion.fairness.minGroupRows",
        "greater than or equal to 1",
        ("schema", "spec.promotion.fairness.minGroupRows", "less than the minimum of 1"),
    ),
    dp(
        "retraining-without-data",
        {"retraining": {"dataUri": REMOVE}},
        "spec.retraining",
        "dataUri and outputUri are required when retraining is enabled",
        ("cel", "spec.retraining", "dataUri and outputUri are required"),
    ),
    dp(
        "output-to-http",
        {"retraining": {"outputUri": "https://models.example.com/iris"}},
        "spec.retraining.outputUri",
        "the trainer cannot write to http(s)",
        ("cel", "spec.retraining.outputUri", "the trainer cannot write to http(s)"),
    ),
    dp(
        "data-uri-dotdot",
        {"retraining": {"dataUri": "pvc://data/../models/iris/v1/model.skops"}},
        "spec.retraining.dataUri",
        "'..' is not allowed",
        ("cel", "spec.retraining.dataUri", DOTDOT),
    ),
    dp(
        "cooldown-not-a-duration",
        {"retraining": {"cooldown": "soon"}},
        "spec.retraining.cooldown",
        "'soon' is not a duration",
        ("schema", "spec.retraining.cooldown", "does not match"),
    ),
    dp(
        "deadline-too-short",
        {"retraining": {"activeDeadlineSeconds": 10}},
        "spec.retraining.activeDeadlineSeconds",
        "greater than or equal to 60",
        ("schema", "spec.retraining.activeDeadlineSeconds", "less than the minimum of 60"),
    ),
    dp(
        "prometheus-without-url",
        {"source": {"type": "prometheus"}},
        "spec.source",
        "url is required when type is prometheus",
        ("cel", "spec.source", "url is required when type is prometheus"),
    ),
    dp(
        "url-with-pods-source",
        {"source": {"type": "pods", "url": "http://prometheus:9090"}},
        "spec.source",
        "url and window apply only to type prometheus",
        ("cel", "spec.source", "url and window apply only to type prometheus"),
    ),
    dp(
        "prometheus-url-not-http",
        {"source": {"type": "prometheus", "url": "ftp://prometheus"}},
        "spec.source.url",
        "should match pattern",
        ("schema", "spec.source.url", "does not match"),
    ),
    dp(
        "fractional-count-of-features",
        {"trigger": {"minBreachedFeatures": 2.5}},
        "spec.trigger.minBreachedFeatures",
        "fraction in (0, 1] or a whole count",
        ("cel", "spec.trigger", "fraction in (0, 1] or a whole count"),
    ),
    dp(
        "zero-breached-features",
        {"trigger": {"minBreachedFeatures": 0}},
        "spec.trigger.minBreachedFeatures",
        "greater than 0",
        ("schema", "spec.trigger.minBreachedFeatures", "less than or equal to the minimum of 0"),
    ),
    dp(
        "zero-consecutive-evaluations",
        {"trigger": {"consecutiveEvaluations": 0}},
        "spec.trigger.consecutiveEvaluations",
        "greater than or equal to 1",
        ("schema", "spec.trigger.consecutiveEvaluations", "less than the minimum of 1"),
    ),
    dp(
        "unknown-signal",
        {"trigger": {"signals": ["Labels"]}},
        "spec.trigger.signals[0]",
        "Input should be 'InputDrift', 'PredictionDrift' or 'Performance'",
        ("schema", "spec.trigger.signals[0]", "is not one of"),
    ),
    dp(
        "performance-signal-without-performance",
        {"trigger": {"signals": ["InputDrift", "Performance"]}},
        "spec",
        "trigger.signals lists Performance: set performance",
        ("cel", "spec", "trigger.signals lists Performance: set performance"),
    ),
    dp(
        "prediction-signal-without-prediction-drift",
        {"trigger": {"signals": ["PredictionDrift"]}},
        "spec",
        "trigger.signals lists PredictionDrift: set predictionDrift",
        ("cel", "spec", "trigger.signals lists PredictionDrift: set predictionDrift"),
    ),
    dp(
        "performance-roc-auc-from-counters",
        {"performance": {"metric": "roc_auc", "maxDrop": 0.05}},
        "spec.performance",
        "roc_auc and log_loss need predicted probabilities",
        ("cel", "spec.performance", "roc_auc and log_loss need predicted probabilities"),
    ),
    dp(
        "performance-log-loss-from-counters",
        {"performance": {"metric": "log_loss", "maxDrop": 0.05}},
        "spec.performance",
        "the feedback counters do not hold",
        ("cel", "spec.performance", "the feedback counters do not hold"),
    ),
    dp(
        "performance-unknown-metric",
        {"performance": {"metric": "auc", "maxDrop": 0.05}},
        "spec.performance.metric",
        "Input should be",
        ("schema", "spec.performance.metric", "is not one of"),
    ),
    dp(
        "performance-without-bound",
        {"performance": {"metric": "accuracy"}},
        "spec.performance",
        "set maxDrop, min or max",
        ("cel", "spec.performance", "set maxDrop, min or max"),
    ),
    dp(
        "performance-min-on-lower-is-better",
        {"performance": {"metric": "mae", "min": 0.5}},
        "spec.performance",
        "bound them with max, not min",
        ("cel", "spec.performance", "bound them with max, not min"),
    ),
    dp(
        "performance-max-on-higher-is-better",
        {"performance": {"metric": "accuracy", "max": 0.5}},
        "spec.performance",
        "max applies only to mae and rmse",
        ("cel", "spec.performance", "max applies only to mae and rmse"),
    ),
    dp(
        "performance-negative-drop",
        {"performance": {"metric": "accuracy", "maxDrop": -0.1}},
        "spec.performance.maxDrop",
        "greater than or equal to 0",
        ("schema", "spec.performance.maxDrop", "less than the minimum of 0"),
    ),
    dp(
        "schedule-six-fields",
        {"retraining": {"schedule": "0 0 3 * * *"}},
        "spec.retraining.schedule",
        "must be a 5-field cron expression",
        ("schema", "spec.retraining.schedule", "does not match"),
    ),
    dp(
        "schedule-minute-out-of-range",
        {"retraining": {"schedule": "60 3 * * *"}},
        "spec.retraining.schedule",
        "must be a 5-field cron expression",
        ("schema", "spec.retraining.schedule", "does not match"),
    ),
    dp(
        "schedule-quartz-extension",
        {"retraining": {"schedule": "0 3 * * 5#3"}},
        "spec.retraining.schedule",
        "must be a 5-field cron expression",
        ("schema", "spec.retraining.schedule", "does not match"),
    ),
    dp(
        "schedule-tz-prefix",
        {"retraining": {"schedule": "TZ=UTC 0 3 * * *"}},
        "spec.retraining.schedule",
        "must be a 5-field cron expression",
        ("schema", "spec.retraining.schedule", "does not match"),
    ),
    dp(
        "time-zone-not-a-name",
        {"retraining": {"schedule": "0 3 * * *", "timeZone": "../etc/passwd"}},
        "spec.retraining.timeZone",
        "is not a time zone name",
        ("schema", "spec.retraining.timeZone", "does not match"),
    ),
    dp(
        "time-zone-without-schedule",
        {"retraining": {"timeZone": "Europe/Berlin"}},
        "spec.retraining",
        "timeZone applies only with a schedule",
        ("cel", "spec.retraining", "timeZone applies only with a schedule"),
    ),
]

#: Valid specs using #14's fields: every layer accepts them (here and on the real server).
VALID_DRIFT_POLICIES = {
    "all-signals": merged(
        DRIFT_POLICY,
        {
            "performance": {"metric": "accuracy", "minSamples": 200, "maxDrop": 0.05, "min": 0.7},
            "predictionDrift": {"metrics": [{"type": "psi", "threshold": 0.2}, {"type": "js"}]},
            "trigger": {"signals": ["InputDrift", "PredictionDrift", "Performance"]},
            "retraining": {"schedule": "0 3 * * 0", "timeZone": "Europe/Berlin"},
        },
    ),
    "regression-bound": merged(DRIFT_POLICY, {"performance": {"metric": "rmse", "max": 12.5}}),
    "macro-schedule": merged(DRIFT_POLICY, {"retraining": {"schedule": "@daily"}}),
    "list-range-step-schedule": merged(
        DRIFT_POLICY, {"retraining": {"schedule": "*/15 8-18 1,15 JAN-jun MON-fri"}}
    ),
    "performance-only": merged(
        DRIFT_POLICY,
        {
            "performance": {"metric": "balanced_accuracy", "min": 0.6},
            "trigger": {"signals": ["Performance"]},
        },
    ),
}

SPEC_TYPES: dict[str, type[BaseModel]] = {
    "ModelDeployment": ModelDeploymentSpec,
    "DriftPolicy": DriftPolicySpec,
}


def test_the_table_is_large_and_covers_both_kinds_and_both_crd_layers() -> None:
    assert len(CASES) >= 25
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.kind for c in CASES} == set(SPEC_TYPES)
    assert {layer for c in CASES for layer, _, _ in c.crd} == {"schema", "cel"}


@pytest.mark.parametrize("kind", list(SPEC_TYPES))
def test_the_valid_base_specs_pass_every_layer(kind: str) -> None:
    spec = MODEL_DEPLOYMENT if kind == "ModelDeployment" else DRIFT_POLICY
    SPEC_TYPES[kind].model_validate(spec)
    assert rejections(crd_for(kind), resource(kind, spec)) == []


def resource(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "sample", "namespace": "default"},
        "spec": spec,
    }


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_invalid_spec_is_rejected_with_the_field_and_the_reason(case: Case) -> None:
    with pytest.raises(ValidationError) as caught:
        SPEC_TYPES[case.kind].model_validate(case.spec)
    message = describe_validation_error(caught.value)
    parts = message.split("; ")
    assert any(p.startswith(f"{case.field}: ") and case.reason in p for p in parts), message

    found = rejections(crd_for(case.kind), resource(case.kind, case.spec))
    if not case.crd:
        assert found == [], "the CRD accepts this case: only the types can refuse it"
    for layer, path, text in case.crd:
        assert any(r.layer == layer and r.path == path and text in r.message for r in found), (
            f"expected {layer} at {path}: {text!r}; the CRD reported {found}"
        )


@pytest.mark.parametrize("name", list(VALID_DRIFT_POLICIES))
def test_the_new_fields_pass_every_layer_when_valid(name: str) -> None:
    spec = VALID_DRIFT_POLICIES[name]
    DriftPolicySpec.model_validate(spec)
    assert rejections(crd_for("DriftPolicy"), resource("DriftPolicy", spec)) == []
