"""The retraining Job of a DriftPolicy (pure): ``modelops train`` in the serving image.

- Its name comes from the idempotency key (policy uid, candidate version), see ``names.job_name``.
- restartPolicy Never plus a podFailurePolicy: exit code 3 (data-quality gate failed) and 2 (bad
  input) fail the Job at once, since retrying cannot change the data; other failures are retried
  up to ``backoffLimit``; a pod evicted by a disruption does not count.
- The trainer writes its result JSON to /dev/termination-log (terminationMessagePolicy File), from
  where the operator reads it in the pod status.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from modelops.api.fairness import Fairness
from modelops.api.storage import ObjectStorage
from modelops.resources import labels
from modelops.resources.defaults import BuildDefaults
from modelops.resources.governance import fairness_env, provenance_env
from modelops.resources.names import job_name
from modelops.resources.owners import Owner
from modelops.resources.security import container_security_context, pod_security_context
from modelops.resources.storage import storage_env
from modelops.resources.volumes import claim_mounts, tmp_volume
from modelops.storage import PVC_ROOT_ENV

CONTAINER: Final = "trainer"
TERMINATION_LOG: Final = "/dev/termination-log"
EXIT_DATA_QUALITY: Final = 3
EXIT_BAD_INPUT: Final = 2


@dataclass(frozen=True)
class TrainingRequest:
    """Everything one retraining run needs; its (policy uid, candidate_version) is the key."""

    model_deployment: str
    candidate_version: str
    base_model_uri: str
    data_uri: str
    output_uri: str
    image: str | None = None
    backoff_limit: int = 1
    active_deadline_seconds: int = 3600
    resources: dict[str, Any] | None = None
    job_template: dict[str, Any] | None = None
    storage: ObjectStorage | None = None
    """Object storage of s3:// URIs: the policy's block, else the ModelDeployment's."""
    fairness: Fairness | None = None
    """The policy's fairness gate: the trainer measures its metric per sensitive column."""
    reason: str = ""
    """What started the retraining (e.g. DriftDetected), for the model card."""
    evaluation_time: datetime | None = None
    """The evaluation that decided to retrain, for the model card."""


def trainer_args(request: TrainingRequest) -> list[str]:
    """``modelops train`` arguments (flags as in common.md's trainer contract)."""
    return [
        "train",
        "--data-uri",
        request.data_uri,
        "--base-model-uri",
        request.base_model_uri,
        "--output-uri",
        request.output_uri,
        "--version",
        request.candidate_version,
        "--termination-log",
        TERMINATION_LOG,
    ]


def _trainer_container(
    policy: str, request: TrainingRequest, defaults: BuildDefaults
) -> dict[str, Any]:
    mounts = claim_mounts(
        read_only=[request.data_uri, request.base_model_uri], read_write=[request.output_uri]
    )
    return {
        "name": CONTAINER,
        "image": request.image or defaults.image,
        "imagePullPolicy": defaults.image_pull_policy,
        "command": ["modelops"],
        "args": trainer_args(request),
        "env": [
            {"name": PVC_ROOT_ENV, "value": defaults.pvc_root},
            *storage_env(request.storage),
            *fairness_env(request.fairness),
            *provenance_env(policy, request.reason, request.evaluation_time),
        ],
        "resources": request.resources or defaults.resources,
        "securityContext": container_security_context(),
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "File",
        "volumeMounts": [m.mount(defaults.pvc_root) for m in mounts] + [tmp_volume()[1]],
    }


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` laid over ``base``, recursively for dicts (lists are replaced)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def build_job(policy: Owner, request: TrainingRequest, defaults: BuildDefaults) -> dict[str, Any]:
    """The batch/v1 Job for ``request``, owned by the DriftPolicy ``policy``."""
    job_labels = labels.job_labels(request.model_deployment, policy.name, request.candidate_version)
    trainer = _trainer_container(policy.name, request, defaults)
    mounts = claim_mounts(
        read_only=[request.data_uri, request.base_model_uri], read_write=[request.output_uri]
    )
    volumes = [m.volume() for m in mounts] + [tmp_volume()[0]]
    ours: dict[str, Any] = {
        "backoffLimit": request.backoff_limit,
        "activeDeadlineSeconds": request.active_deadline_seconds,
        "template": {"spec": {"automountServiceAccountToken": False}},
    }
    spec = _merge(ours, request.job_template or {})
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {})
    template["metadata"]["labels"] = {**template["metadata"].get("labels", {}), **job_labels}
    pod = template.setdefault("spec", {})
    pod["restartPolicy"] = "Never"
    pod.setdefault("securityContext", pod_security_context())
    others = [c for c in pod.get("containers", []) if c.get("name") != CONTAINER]
    given: dict[str, Any] = next(
        (c for c in pod.get("containers", []) if c.get("name") == CONTAINER), {}
    )
    container = {**given, **trainer}
    # The template's own variables (e.g. object-storage credentials by secretKeyRef) are kept;
    # ours win on the names we set.
    own_names = {variable["name"] for variable in trainer["env"]}
    container["env"] = [
        *[e for e in given.get("env", []) if e.get("name") not in own_names],
        *trainer["env"],
    ]
    container["volumeMounts"] = [
        *[m for m in given.get("volumeMounts", []) if m.get("name") not in _names(trainer)],
        *trainer["volumeMounts"],
    ]
    pod["containers"] = [container, *others]
    pod["volumes"] = [
        *[v for v in pod.get("volumes", []) if v.get("name") not in {x["name"] for x in volumes}],
        *volumes,
    ]
    spec["podFailurePolicy"] = {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {
                    "containerName": CONTAINER,
                    "operator": "In",
                    "values": [EXIT_BAD_INPUT, EXIT_DATA_QUALITY],
                },
            },
            {
                "action": "Ignore",
                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
            },
        ]
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(policy.name, policy.uid, request.candidate_version),
            "namespace": policy.namespace,
            "labels": job_labels,
            "ownerReferences": [policy.reference()],
        },
        "spec": spec,
    }


def _names(container: dict[str, Any]) -> set[str]:
    return {m["name"] for m in container.get("volumeMounts", [])}
