"""``DriftPolicy``: measure a ModelDeployment's input drift; retrain and promote on a breach."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from modelops.api.base import (
    ApiModel,
    Duration,
    FreeForm,
    Kind,
    ModelUri,
    ObjectName,
    PrinterColumn,
    ResourceRequirements,
    StatusModel,
    WritableUri,
    at_least,
)
from modelops.api.conditions import ConditionList
from modelops.api.fairness import Fairness, FairnessReport
from modelops.api.modeldeployment import ObjectMeta
from modelops.api.storage import ObjectStorage

KIND = Kind(
    kind="DriftPolicy",
    plural="driftpolicies",
    singular="driftpolicy",
    short_names=("dpol",),
    printer_columns=(
        PrinterColumn("Model", "string", ".spec.modelDeploymentRef.name"),
        PrinterColumn("Drift", "string", '.status.conditions[?(@.type=="DriftDetected")].status'),
        PrinterColumn("Last evaluation", "date", ".status.lastEvaluationTime"),
        PrinterColumn("Retraining", "string", ".status.lastRetraining.result"),
        PrinterColumn("Age", "date", ".metadata.creationTimestamp"),
    ),
)

MetricType = Literal["psi", "ks", "js", "wasserstein", "chi2"]
METRIC_TYPES: tuple[MetricType, ...] = ("psi", "ks", "js", "wasserstein", "chi2")
PromotionMode = Literal["auto", "manual", "none"]
PromotionMetric = Literal["accuracy", "f1", "roc_auc", "log_loss", "r2", "mae", "rmse"]
LOWER_IS_BETTER: frozenset[str] = frozenset({"log_loss", "mae", "rmse"})
SourceType = Literal["pods", "prometheus"]
RetrainingResult = Literal[
    "Running", "Succeeded", "Failed", "Promoted", "Rejected", "AwaitingApproval", "RolledBack"
]
APPROVE_ANNOTATION = "modelops.dev/approve"
"""Annotate the DriftPolicy with ``modelops.dev/approve=<candidate version>`` to promote it."""


class ModelDeploymentRef(ApiModel):
    """A ModelDeployment in the same namespace."""

    name: ObjectName
    """Name of the ModelDeployment."""


class MetricThreshold(ApiModel):
    """A drift statistic and the score above which a feature counts as drifted."""

    type: MetricType
    """psi, ks, js, wasserstein or chi2."""
    threshold: Annotated[float, Field(gt=0, le=1_000_000)] | None = None
    """Score above which a feature breaches; defaults to the drift engine's calibrated value."""


def _no_repeats(values: list[str], what: str) -> None:
    """Lists keyed like Kubernetes list-maps and sets hold each key once, as the CRD enforces."""
    duplicates = sorted(value for value, count in Counter(values).items() if count > 1)
    if duplicates:
        raise ValueError(f"{what} must be unique, repeated: {', '.join(duplicates)}")


def _unique_types(metrics: list[MetricThreshold]) -> list[MetricThreshold]:
    _no_repeats([m.type for m in metrics], "metric types")
    return metrics


MetricList = Annotated[
    list[MetricThreshold],
    Field(
        min_length=1,
        max_length=5,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    ),
]


class FeatureOverride(ApiModel):
    """Thresholds for one feature that replace the policy-wide ones."""

    name: Annotated[str, Field(min_length=1, max_length=256)]
    """Feature name as in the model's metadata.json."""
    metrics: MetricList
    """Thresholds for this feature."""

    _unique = field_validator("metrics")(_unique_types)


class FeatureSelection(ApiModel):
    """Which features to evaluate, and per-feature thresholds."""

    include: (
        Annotated[
            list[Annotated[str, Field(min_length=1, max_length=256)]],
            Field(
                min_length=1,
                max_length=10_000,
                json_schema_extra={"x-kubernetes-list-type": "set"},
            ),
        ]
        | None
    ) = None
    """Only these features (default: every feature of the model)."""
    overrides: Annotated[
        list[FeatureOverride],
        Field(
            max_length=10_000,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
        ),
    ] = []
    """Per-feature thresholds."""

    @field_validator("include")
    @classmethod
    def _unique_include(cls, names: list[str] | None) -> list[str] | None:
        if names is not None:
            _no_repeats(names, "feature names")
        return names

    @field_validator("overrides")
    @classmethod
    def _unique_overrides(cls, overrides: list[FeatureOverride]) -> list[FeatureOverride]:
        _no_repeats([o.name for o in overrides], "override names")
        return overrides


class Trigger(ApiModel):
    """When drift becomes a retraining."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.minBreachedFeatures) || self.minBreachedFeatures <= 1.0 "
                    "|| self.minBreachedFeatures == double(int(self.minBreachedFeatures))",
                    "message": "minBreachedFeatures is a fraction in (0, 1] or a whole count",
                }
            ]
        }
    }

    min_breached_features: Annotated[float, Field(gt=0, le=100_000)] = 1
    """Drifted features needed: a whole count (1, 2, ...) or a fraction of all features
    in (0, 1), e.g. 0.25. 1 means one feature."""
    consecutive_evaluations: Annotated[int, Field(ge=1, le=100)] = 2
    """Evaluations in a row that must breach before retraining starts."""

    @field_validator("min_breached_features")
    @classmethod
    def _count_or_fraction(cls, value: float) -> float:
        if value > 1 and value != int(value):
            raise ValueError("must be a fraction in (0, 1] or a whole count such as 2")
        return value


class DriftSource(ApiModel):
    """Where the live bin counts come from."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "self.type != 'prometheus' || has(self.url)",
                    "message": "url is required when type is prometheus",
                },
                {
                    "rule": "self.type == 'prometheus' || (!has(self.url) && !has(self.window))",
                    "message": "url and window apply only to type prometheus",
                },
            ]
        }
    }

    type: SourceType = "pods"
    """pods: read the serving pods' bin counts; prometheus: query a Prometheus server."""
    url: (
        Annotated[
            str,
            Field(
                max_length=2048,
                pattern=r"^https?://[^\s]+$",
            ),
        ]
        | None
    ) = None
    """Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090."""
    window: Annotated[Duration, at_least("1m")] | None = None
    """PromQL range for increase(...) (default: the policy's interval)."""

    @model_validator(mode="after")
    def _prometheus_needs_url(self) -> DriftSource:
        if self.type == "prometheus" and self.url is None:
            raise ValueError("url is required when type is prometheus")
        if self.type == "pods" and (self.url is not None or self.window is not None):
            raise ValueError("url and window apply only to type prometheus")
        return self


class Retraining(ApiModel):
    """The retraining Job started when drift breaches the trigger."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.enabled) && !self.enabled) || "
                    "(has(self.dataUri) && has(self.outputUri))",
                    "message": "dataUri and outputUri are required when retraining is enabled",
                }
            ]
        }
    }

    enabled: bool = True
    """Start retraining Jobs on drift (false: only measure and report)."""
    data_uri: ModelUri | None = None
    """CSV of fresh labelled data (features and target), pvc://, file://, http(s):// or s3://."""
    output_uri: WritableUri | None = None
    """Directory where candidate versions are written (<outputUri>/<version>/): pvc://, file://
    or s3:// (on object storage the files are uploaded, then a complete.json marker)."""
    cooldown: Duration = "1h"
    """Least time between two retraining Jobs of this policy."""
    max_concurrent: Annotated[int, Field(ge=1, le=10)] = 1
    """Most retraining Jobs of this policy running at once."""
    backoff_limit: Annotated[int, Field(ge=0, le=10)] = 1
    """Retries of a failed training pod (Job backoffLimit)."""
    active_deadline_seconds: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 3600
    """Most seconds a retraining Job may run."""
    resources: ResourceRequirements | None = None
    """CPU and memory of the training pod."""
    job_template: FreeForm | None = None
    """A full batch/v1 JobSpec to start from; the operator sets the container command,
    labels and owner. Use it for node selectors, tolerations or extra volumes."""

    @model_validator(mode="after")
    def _uris_when_enabled(self) -> Retraining:
        if self.enabled and (self.data_uri is None or self.output_uri is None):
            raise ValueError("dataUri and outputUri are required when retraining is enabled")
        return self


class Promotion(ApiModel):
    """What happens to a retrained candidate."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.approvalTimeout) || self.mode == 'manual'",
                    "message": "approvalTimeout applies only to mode manual",
                }
            ]
        }
    }

    mode: PromotionMode = "manual"
    """auto: promote when the candidate wins by minImprovement; manual: wait for the
    modelops.dev/approve=<version> annotation on this policy; none: only record."""
    metric: PromotionMetric | None = None
    """Holdout metric that decides (default: accuracy for classification, r2 for regression).
    log_loss, mae and rmse are lower-is-better; the others higher-is-better."""
    min_improvement: Annotated[float, Field(ge=0, le=1_000_000)] = 0.0
    """How much better than the current model the candidate must score (absolute)."""
    approval_timeout: Annotated[Duration, at_least("1m")] | None = None
    """How long a candidate waits for approval before it is discarded (manual mode only;
    default: it waits until the next candidate)."""
    fairness: Fairness | None = None
    """A fairness gate on the holdout, in every mode: a candidate that breaks it is never
    promoted, not even when approved."""

    @model_validator(mode="after")
    def _timeout_only_manual(self) -> Promotion:
        if self.approval_timeout is not None and self.mode != "manual":
            raise ValueError("approvalTimeout applies only to mode manual")
        return self


class DriftPolicySpec(ApiModel):
    """Desired behaviour: what to measure, how often, and what to do about drift."""

    model_deployment_ref: ModelDeploymentRef
    """The ModelDeployment whose traffic is measured."""
    interval: Annotated[Duration, at_least("10s")] = "60s"
    """How often drift is evaluated (at least 10s)."""
    min_samples: Annotated[int, Field(ge=1, le=100_000_000)] = 500
    """Rows a window needs before drift is judged; fewer gives InsufficientSamples."""
    metrics: MetricList = [MetricThreshold(type=t) for t in METRIC_TYPES]
    """Statistics and thresholds (default: all five with calibrated thresholds)."""
    features: FeatureSelection | None = None
    """Feature subset and per-feature thresholds."""
    trigger: Trigger = Trigger()
    """When drift starts a retraining."""
    source: DriftSource = DriftSource()
    """Where the live bin counts come from."""
    retraining: Retraining | None = None
    """The retraining Job; without it the policy only measures and reports."""
    promotion: Promotion = Promotion()
    """What happens to a retrained candidate."""
    storage: ObjectStorage | None = None
    """Object storage of the retraining Job's s3:// URIs (default: the ModelDeployment's)."""

    _unique = field_validator("metrics")(_unique_types)


class FeatureStatus(StatusModel):
    """Drift of one feature in the last evaluation."""

    name: str
    """Feature name."""
    scores: dict[str, float] = {}
    """Score per metric."""
    breached: bool = False
    """Whether any metric is over its threshold."""
    breached_metrics: list[str] = []
    """Metrics over their thresholds."""


class RetrainingStatus(StatusModel):
    """The most recent retraining Job and what became of its candidate."""

    job: str
    """Name of the Job."""
    candidate_version: str
    """Version the Job trains."""
    start_time: datetime | None = None
    """When the Job was created."""
    completion_time: datetime | None = None
    """When the Job finished."""
    result: RetrainingResult = "Running"
    """Running, Succeeded, Failed, AwaitingApproval, Promoted, Rejected or RolledBack."""
    reason: str = ""
    """CamelCase reason of the last decision."""
    message: str = ""
    """Details of the last decision."""
    uri: str = ""
    """Where the candidate model is."""
    metrics: dict[str, float] = {}
    """Candidate's holdout metrics."""
    baseline: dict[str, float] = {}
    """Current model's metrics on the same holdout."""
    fairness: FairnessReport | None = None
    """The trainer's fairness measurement of the candidate and the current model."""


class DriftPolicyStatus(StatusModel):
    """Observed state, written by the operator."""

    observed_generation: int | None = None
    """The metadata.generation the status describes."""
    last_evaluation_time: datetime | None = None
    """When drift was last evaluated."""
    samples: int | None = None
    """Rows in the last evaluation window."""
    consecutive_breaches: int = 0
    """Evaluations in a row that breached the trigger."""
    drifted_features: int | None = None
    """Features over a threshold in the last evaluation."""
    features: Annotated[
        list[FeatureStatus],
        Field(
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            }
        ),
    ] = []
    """Per-feature scores of the last evaluation."""
    conditions: ConditionList = []
    """DriftDetected, Retraining, PromotionPending and SourceReady."""
    last_trigger_time: datetime | None = None
    """When a retraining Job was last started (for the cooldown)."""
    last_retraining: RetrainingStatus | None = None
    """The most recent retraining."""


class DriftPolicy(ApiModel):
    """Measures the input drift of a ModelDeployment's traffic against its reference profile, and
    retrains and promotes the model when the drift breaches the policy."""

    api_version: Literal["modelops.dev/v1alpha1"]
    """modelops.dev/v1alpha1."""
    kind: Literal["DriftPolicy"]
    """DriftPolicy."""
    metadata: ObjectMeta
    """Standard object metadata."""
    spec: DriftPolicySpec
    """Desired state."""
    status: DriftPolicyStatus | None = None
    """Observed state."""
