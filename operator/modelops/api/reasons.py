"""Condition types and CamelCase reasons used in status conditions and Events, in one place."""

from __future__ import annotations

from typing import Final

# --- Condition types ---------------------------------------------------------------------------
READY: Final = "Ready"
PROGRESSING: Final = "Progressing"
DEGRADED: Final = "Degraded"
DRIFT_DETECTED: Final = "DriftDetected"
RETRAINING: Final = "Retraining"
PROMOTION_PENDING: Final = "PromotionPending"
SOURCE_READY: Final = "SourceReady"
PREDICTION_DRIFT: Final = "PredictionDrift"
PERFORMANCE_DEGRADED: Final = "PerformanceDegraded"

# --- ModelDeployment reasons -------------------------------------------------------------------
INVALID_SPEC: Final = "InvalidSpec"
DEPLOYMENT_CREATED: Final = "DeploymentCreated"
DEPLOYMENT_UPDATED: Final = "DeploymentUpdated"
ROLLOUT_IN_PROGRESS: Final = "RolloutInProgress"
ROLLOUT_COMPLETE: Final = "RolloutComplete"
MINIMUM_REPLICAS_AVAILABLE: Final = "MinimumReplicasAvailable"
MINIMUM_REPLICAS_UNAVAILABLE: Final = "MinimumReplicasUnavailable"
PROGRESS_DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"
SCALED_TO_ZERO: Final = "ScaledToZero"
NAME_CONFLICT: Final = "NameConflict"

# --- DriftPolicy reasons -----------------------------------------------------------------------
DRIFT_FOUND: Final = "DriftFound"
NO_DRIFT: Final = "NoDrift"
INSUFFICIENT_SAMPLES: Final = "InsufficientSamples"
SOURCE_REACHABLE: Final = "SourceReachable"
SOURCE_UNREACHABLE: Final = "SourceUnreachable"
MODEL_NOT_FOUND: Final = "ModelNotFound"
PROFILE_UNAVAILABLE: Final = "ProfileUnavailable"
RETRAINING_STARTED: Final = "RetrainingStarted"
RETRAINING_SUCCEEDED: Final = "RetrainingSucceeded"
RETRAINING_FAILED: Final = "RetrainingFailed"
RETRAINING_SUPERSEDED: Final = "RetrainingSuperseded"
RETRAINING_DISABLED: Final = "RetrainingDisabled"
COOLDOWN: Final = "CooldownActive"
MAX_CONCURRENT: Final = "MaxConcurrentReached"
DATA_QUALITY_GATE_FAILED: Final = "DataQualityGateFailed"
RESULT_UNREADABLE: Final = "ResultUnreadable"
CANDIDATE_PROMOTED: Final = "CandidatePromoted"
CANDIDATE_REJECTED: Final = "CandidateRejected"
CANDIDATE_RECORDED: Final = "CandidateRecorded"
AWAITING_APPROVAL: Final = "AwaitingApproval"
APPROVAL_EXPIRED: Final = "ApprovalExpired"
ROLLED_BACK: Final = "RolledBack"
# Prediction drift, performance and the schedule (#14). PREDICTION_DRIFT, PERFORMANCE_DEGRADED
# (above) and SCHEDULED are also the lastRetraining reasons of the Jobs these signals start.
PREDICTION_DRIFT_FOUND: Final = "PredictionDriftFound"
NO_PREDICTION_DRIFT: Final = "NoPredictionDrift"
NO_OUTPUT_PROFILE: Final = "NoOutputProfile"
METRIC_DEGRADED: Final = "MetricDegraded"
METRIC_HEALTHY: Final = "MetricHealthy"
METRIC_UNDEFINED: Final = "MetricUndefined"
METRIC_NOT_APPLICABLE: Final = "MetricNotApplicable"
SCHEDULED: Final = "Scheduled"
SCHEDULE_SKIPPED: Final = "ScheduleSkipped"

# --- The fairness gate (spec.promotion.fairness) ----------------------------------------------
FAIRNESS_GATE_FAILED: Final = "FairnessGateFailed"
FAIRNESS_GROUP_TOO_SMALL: Final = "FairnessGroupTooSmall"
