"""The labels every object the operator creates carries (DESIGN.md, "Labels and annotations")."""

from __future__ import annotations

from typing import Final

from modelops.resources.names import label_value

MANAGED_BY: Final = "app.kubernetes.io/managed-by"
NAME: Final = "app.kubernetes.io/name"
COMPONENT: Final = "app.kubernetes.io/component"
MODEL: Final = "modelops.dev/model"
POLICY: Final = "modelops.dev/policy"
CANDIDATE_VERSION: Final = "modelops.dev/candidate-version"
MODEL_VERSION: Final = "modelops.dev/model-version"
MANAGER: Final = "modelops"

#: The label the Job controller puts on the pods of a Job.
JOB_NAME: Final = "job-name"
#: The label that ties an EndpointSlice to its Service.
SERVICE_NAME: Final = "kubernetes.io/service-name"


def model_labels(model_deployment: str) -> dict[str, str]:
    """Labels of everything that belongs to one ModelDeployment."""
    value = label_value(model_deployment)
    return {MANAGED_BY: MANAGER, NAME: value, MODEL: value}


def selector_labels(model_deployment: str) -> dict[str, str]:
    """The immutable pod selector of a ModelDeployment's Deployment and Service."""
    return {MANAGED_BY: MANAGER, MODEL: label_value(model_deployment)}


def job_labels(model_deployment: str, policy: str, candidate_version: str) -> dict[str, str]:
    """Labels of a retraining Job and its pod."""
    return {
        **model_labels(model_deployment),
        COMPONENT: "trainer",
        POLICY: label_value(policy),
        CANDIDATE_VERSION: label_value(candidate_version),
    }


def selector(labels: dict[str, str]) -> str:
    """A label selector string (``a=b,c=d``) matching ``labels``."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def matches(labels: dict[str, str] | None, wanted: dict[str, str]) -> bool:
    """Whether ``labels`` contains every pair of ``wanted``."""
    have = labels or {}
    return all(have.get(key) == value for key, value in wanted.items())
