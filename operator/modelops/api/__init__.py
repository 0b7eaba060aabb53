"""The API types of both custom resources: the single source of truth for CRDs and handlers."""

from modelops.api.base import Duration, Kind, PrinterColumn, parse_duration
from modelops.api.conditions import (
    Condition,
    find_condition,
    is_condition_true,
    set_condition,
    utcnow,
)
from modelops.api.driftpolicy import (
    APPROVE_ANNOTATION,
    LOWER_IS_BETTER,
    METRIC_TYPES,
    DriftPolicy,
    DriftPolicySpec,
    DriftPolicyStatus,
    FeatureStatus,
    PerformanceStatus,
    PredictionDriftStatus,
    RetrainingStatus,
)
from modelops.api.driftpolicy import KIND as DRIFT_POLICY
from modelops.api.errors import describe_validation_error
from modelops.api.modeldeployment import (
    HISTORY_LIMIT,
    HistoryEntry,
    ModelDeployment,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
)
from modelops.api.modeldeployment import KIND as MODEL_DEPLOYMENT

GROUP = "modelops.dev"
VERSION = "v1alpha1"
KINDS = (MODEL_DEPLOYMENT, DRIFT_POLICY)

__all__ = [
    "APPROVE_ANNOTATION",
    "DRIFT_POLICY",
    "GROUP",
    "HISTORY_LIMIT",
    "KINDS",
    "LOWER_IS_BETTER",
    "METRIC_TYPES",
    "MODEL_DEPLOYMENT",
    "VERSION",
    "Condition",
    "DriftPolicy",
    "DriftPolicySpec",
    "DriftPolicyStatus",
    "Duration",
    "FeatureStatus",
    "HistoryEntry",
    "Kind",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "PerformanceStatus",
    "PredictionDriftStatus",
    "PrinterColumn",
    "RetrainingStatus",
    "describe_validation_error",
    "find_condition",
    "is_condition_true",
    "parse_duration",
    "set_condition",
    "utcnow",
]
