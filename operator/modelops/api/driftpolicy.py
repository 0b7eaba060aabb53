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
from modelops.api.schedule import Cron, TimeZone
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
LiveMetric = Literal[
    "accuracy",
    "f1",
    "precision",
    "recall",
    "balanced_accuracy",
    "mae",
    "rmse",
    "r2",
    "roc_auc",
    "log_loss",
]
CLASSIFICATION_LIVE_METRICS: frozenset[str] = frozenset(
    {"accuracy", "f1", "precision", "recall", "balanced_accuracy"}
)
REGRESSION_LIVE_METRICS: frozenset[str] = frozenset({"mae", "rmse", "r2"})
NOT_FROM_COUNTERS: frozenset[str] = frozenset({"roc_auc", "log_loss"})
NOT_FROM_COUNTERS_MESSAGE = (
    "roc_auc and log_loss need predicted probabilities, which the feedback counters do not "
    "hold: use accuracy, f1, precision, recall or balanced_accuracy (classification) or mae, "
    "rmse or r2 (regression)"
)
Signal = Literal["InputDrift", "PredictionDrift", "Performance"]
SIGNALS: tuple[Signal, ...] = ("InputDrift", "PredictionDrift", "Performance")
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
    signals: Annotated[
        list[Signal],
        Field(min_length=1, max_length=3, json_schema_extra={"x-kubernetes-list-type": "set"}),
    ] = ["InputDrift"]
    """Signals whose breach counts toward a retraining: InputDrift (the features),
    PredictionDrift (the served predictions, needs predictionDrift) and Performance (the live
    metric from feedback, needs performance). An evaluation breaches when any of them does."""

    @field_validator("signals")
    @classmethod
    def _unique_signals(cls, signals: list[Signal]) -> list[Signal]:
        _no_repeats(list(signals), "signals")
        return signals

    @field_validator("min_breached_features")
    @classmethod
    def _count_or_fraction(cls, value: float) -> float:
        if value > 1 and value != int(value):
            raise ValueError("must be a fraction in (0, 1] or a whole count such as 2")
        return value


class PredictionDrift(ApiModel):
    """Drift of the served predictions against the profile's output entry (the model's own
    predictions on its reference data), scored with the same statistics as features."""

    metrics: MetricList = [MetricThreshold(type=t) for t in METRIC_TYPES]
    """Statistics and thresholds (default: all five with calibrated thresholds; those that do
    not apply to the output's kind, e.g. ks for class labels, are skipped)."""

    _unique = field_validator("metrics")(_unique_types)


class Performance(ApiModel):
    """The live metric from ground-truth feedback, against the model's holdout metric."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!(self.metric in ['roc_auc', 'log_loss'])",
                    "message": NOT_FROM_COUNTERS_MESSAGE,
                },
                {
                    "rule": "has(self.maxDrop) || has(self.min) || has(self.max)",
                    "message": "set maxDrop, min or max (for mae and rmse)",
                },
                {
                    "rule": "!has(self.min) || !(self.metric in ['mae', 'rmse'])",
                    "message": "mae and rmse are lower-is-better: bound them with max, not min",
                },
                {
                    "rule": "!has(self.max) || self.metric in ['mae', 'rmse']",
                    "message": "max applies only to mae and rmse; bound the others with min",
                },
            ]
        }
    }

    metric: LiveMetric
    """accuracy, f1 (macro, as the trainer's holdout f1), precision, recall (binary: the second
    class is the positive one; multiclass: macro), balanced_accuracy; or mae, rmse, r2.
    roc_auc and log_loss are refused: the counters hold no probabilities."""
    min_samples: Annotated[int, Field(ge=1, le=100_000_000)] = 100
    """Feedback rows a window needs before the metric is judged."""
    max_drop: Annotated[float, Field(ge=0, le=1_000_000)] | None = None
    """Degraded when the live metric is worse than the serving model's holdout metric
    (metadata.json) by more than this (absolute; for mae and rmse, higher is worse)."""
    min: Annotated[float, Field(ge=-1_000_000, le=1_000_000)] | None = None
    """Degraded when the live metric is below this (not for mae and rmse)."""
    max: Annotated[float, Field(ge=0, le=1e12)] | None = None
    """Degraded when the live mae or rmse is above this."""

    @model_validator(mode="after")
    def _computable(self) -> Performance:
        if self.metric in NOT_FROM_COUNTERS:
            raise ValueError(NOT_FROM_COUNTERS_MESSAGE)
        if self.max_drop is None and self.min is None and self.max is None:
            raise ValueError("set maxDrop, min or max (for mae and rmse)")
        lower_is_better = self.metric in LOWER_IS_BETTER
        if self.min is not None and lower_is_better:
            raise ValueError("mae and rmse are lower-is-better: bound them with max, not min")
        if self.max is not None and not lower_is_better:
            raise ValueError("max applies only to mae and rmse; bound the others with min")
        return self


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
    """The retraining Job started when drift breaches the trigger, or on a schedule."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.enabled) && !self.enabled) || "
                    "(has(self.dataUri) && has(self.outputUri))",
                    "message": "dataUri and outputUri are required when retraining is enabled",
                },
                {
                    "rule": "!has(self.timeZone) || has(self.schedule)",
                    "message": "timeZone applies only with a schedule",
                },
            ]
        }
    }

    enabled: bool = True
    """Start retraining Jobs on drift (false: only measure and report)."""
    schedule: Cron | None = None
    """Also retrain at these times even without drift (5-field cron, as a CronJob reads it,
    e.g. '0 3 * * 0'); reason Scheduled. Times missed while the operator was down give at most
    one catch-up run. maxConcurrent applies (a time that finds a Job running is skipped);
    cooldown and consecutiveEvaluations do not."""
    time_zone: TimeZone | None = None
    """IANA time zone of the schedule, e.g. Europe/Berlin (default: UTC)."""
    data_uri: ModelUri | None = None
    """CSV of fresh labelled data (features and target), pvc://, file://, http(s):// or s3://."""
    output_uri: WritableUri | None = None
    """Directory where candidate versions are written (<outputUri>/<version>/): pvc://, file://
    or s3:// (on object storage the files are uploaded, then a complete.json marker)."""
    cooldown: Duration = "1h"
    """Least time between two retraining Jobs of this policy."""
    max_concurrent: Annotated[int, Field(ge=1, le=10)] = 1
    """Most retraining Jobs of this policy running at once (only the most recent candidate is
    judged; earlier Jobs are reported as they end)."""
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
        if self.time_zone is not None and self.schedule is None:
            raise ValueError("timeZone applies only with a schedule")
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

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.trigger) || !has(self.trigger.signals) || "
                    "!('Performance' in self.trigger.signals) || has(self.performance)",
                    "message": "trigger.signals lists Performance: set performance",
                },
                {
                    "rule": "!has(self.trigger) || !has(self.trigger.signals) || "
                    "!('PredictionDrift' in self.trigger.signals) || has(self.predictionDrift)",
                    "message": "trigger.signals lists PredictionDrift: set predictionDrift",
                },
            ]
        }
    }

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
    prediction_drift: PredictionDrift | None = None
    """Score the drift of the served predictions (needs a profile with an output entry)."""
    performance: Performance | None = None
    """Judge the live metric computed from ground-truth feedback."""
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

    @model_validator(mode="after")
    def _signals_configured(self) -> DriftPolicySpec:
        if "Performance" in self.trigger.signals and self.performance is None:
            raise ValueError("trigger.signals lists Performance: set performance")
        if "PredictionDrift" in self.trigger.signals and self.prediction_drift is None:
            raise ValueError("trigger.signals lists PredictionDrift: set predictionDrift")
        return self


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


class PerformanceStatus(StatusModel):
    """The live metric of the last evaluation that had feedback."""

    metric: str
    """Name of the metric."""
    value: float | None = None
    """Its value over the window's feedback (absent below minSamples or when undefined)."""
    baseline: float | None = None
    """The serving model's holdout value (metadata.json), when known."""
    samples: int = 0
    """Feedback rows in the window."""


class PredictionDriftStatus(StatusModel):
    """Drift of the served predictions in the last evaluation."""

    samples: int = 0
    """Predictions in the window."""
    scores: dict[str, float] = {}
    """Score per metric."""
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
    """CamelCase reason of the last decision; while running, what started the Job:
    RetrainingStarted (input drift), PredictionDrift, PerformanceDegraded or Scheduled."""
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
    """The evaluation the status's scores come from. Written when a decision changes, otherwise
    at most MODELOPS_STATUS_REPORT_SECONDS (300 s) apart: the operator's gauges carry every
    evaluation."""
    samples: int | None = None
    """Rows in the window of that evaluation."""
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
    """Per-feature scores of that evaluation."""
    conditions: ConditionList = []
    """DriftDetected, PredictionDrift, PerformanceDegraded, Retraining, PromotionPending and
    SourceReady."""
    performance: PerformanceStatus | None = None
    """The live metric, its baseline and the feedback rows of the last evaluation."""
    prediction_drift: PredictionDriftStatus | None = None
    """Prediction drift scores of the last evaluation."""
    last_scheduled_time: datetime | None = None
    """The latest scheduled time handled (so a restart does not run it twice)."""
    next_scheduled_time: datetime | None = None
    """When the schedule fires next."""
    last_trigger_time: datetime | None = None
    """When a retraining Job was last started (for the cooldown)."""
    last_retraining: RetrainingStatus | None = None
    """The most recent retraining."""
    superseded_jobs: Annotated[
        list[str], Field(json_schema_extra={"x-kubernetes-list-type": "set"})
    ] = []
    """Retraining Jobs still running when a later one started (maxConcurrent > 1): each is
    followed to its end (an Event and the Job counter), but only the most recent candidate is
    judged."""


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
