"""Operator-wide defaults the builders apply where a spec leaves a field out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelops.storage import DEFAULT_PVC_ROOT

DEFAULT_IMAGE = "ghcr.io/modelops/modelops:0.1.0"


def _default_resources() -> dict[str, Any]:
    return {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}


@dataclass(frozen=True)
class BuildDefaults:
    """What the builders use when a spec does not say."""

    image: str = DEFAULT_IMAGE
    """Image of the model server and the trainer (they are the same image)."""
    resources: dict[str, Any] = field(default_factory=_default_resources)
    """Container resources of serving and training pods."""
    pvc_root: str = DEFAULT_PVC_ROOT
    """Where pvc:// claims are mounted inside the pods (MODELOPS_PVC_ROOT there)."""
    progress_deadline_seconds: int = 600
    """How long a rollout may take before the Deployment reports ProgressDeadlineExceeded."""
    image_pull_policy: str = "IfNotPresent"
    """Pull policy of the pods the operator creates."""
