"""The retraining Job's governance environment (pure): the fairness gate's settings for the trainer,
and what started the retraining, for the model card (the shared contract of issue #15).

The trainer reads every variable as the default of its ``modelops train`` flag; all are optional,
so an older trainer simply ignores them (and the operator then blocks a candidate that lacks the
fairness report it asked for, see ``controller.fairness_gate``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from modelops.api.fairness import Fairness

SENSITIVE_COLUMNS_ENV: Final = "MODELOPS_SENSITIVE_COLUMNS"
FAIRNESS_METRIC_ENV: Final = "MODELOPS_FAIRNESS_METRIC"
FAIRNESS_INTERSECTION_ENV: Final = "MODELOPS_FAIRNESS_INTERSECTION"
FAIRNESS_MIN_GROUP_ROWS_ENV: Final = "MODELOPS_FAIRNESS_MIN_GROUP_ROWS"
ALLOW_SENSITIVE_FEATURES_ENV: Final = "MODELOPS_ALLOW_SENSITIVE_FEATURES"
RETRAINING_REASON_ENV: Final = "MODELOPS_RETRAINING_REASON"
POLICY_ENV: Final = "MODELOPS_POLICY"
EVALUATION_TIME_ENV: Final = "MODELOPS_EVALUATION_TIME"
JOB_NAME_ENV: Final = "MODELOPS_JOB_NAME"
#: The label the Job controller puts on a Job's pods (Kubernetes 1.27+), read via the downward API:
#: the Job's name is not known to the pod otherwise.
JOB_NAME_LABEL: Final = "batch.kubernetes.io/job-name"


def rfc3339(when: datetime) -> str:
    """``when`` in UTC, whole seconds, as Kubernetes writes times (e.g. 2030-01-01T00:00:00Z)."""
    moment = when if when.tzinfo else when.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fairness_env(fairness: Fairness | None) -> list[dict[str, Any]]:
    """The gate's settings the trainer measures by (none when no gate is configured)."""
    if fairness is None:
        return []
    values = {
        SENSITIVE_COLUMNS_ENV: ",".join(fairness.sensitive_columns),
        FAIRNESS_METRIC_ENV: fairness.metric,
        FAIRNESS_INTERSECTION_ENV: "true" if fairness.intersection else "false",
        FAIRNESS_MIN_GROUP_ROWS_ENV: str(fairness.min_group_rows),
        ALLOW_SENSITIVE_FEATURES_ENV: "true" if fairness.allow_sensitive_features else "false",
    }
    return [{"name": name, "value": value} for name, value in values.items()]


def provenance_env(
    policy: str, reason: str, evaluation_time: datetime | None
) -> list[dict[str, Any]]:
    """Why and by what this retraining was started, for the model card; the Job's name comes from
    the pod's label through the downward API."""
    env: list[dict[str, Any]] = [{"name": POLICY_ENV, "value": policy}]
    if reason:
        env.append({"name": RETRAINING_REASON_ENV, "value": reason})
    if evaluation_time is not None:
        env.append({"name": EVALUATION_TIME_ENV, "value": rfc3339(evaluation_time)})
    env.append(
        {
            "name": JOB_NAME_ENV,
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{JOB_NAME_LABEL}']"}},
        }
    )
    return env
