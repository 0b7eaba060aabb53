"""Pure builders: custom-resource specs in, Kubernetes manifests (plain dicts) out. No I/O here.

Each builder is a function of its inputs only, so names, labels and the whole manifest are
deterministic and can be compared with what is in the cluster to decide whether to write.
"""

from modelops.resources.defaults import DEFAULT_IMAGE, BuildDefaults
from modelops.resources.deployment import build_deployment
from modelops.resources.job import TrainingRequest, build_job
from modelops.resources.names import (
    deployment_name,
    job_name,
    service_name,
    service_url,
)
from modelops.resources.owners import Owner
from modelops.resources.service import build_service

__all__ = [
    "DEFAULT_IMAGE",
    "BuildDefaults",
    "Owner",
    "TrainingRequest",
    "build_deployment",
    "build_job",
    "build_service",
    "deployment_name",
    "job_name",
    "service_name",
    "service_url",
]
