"""The ``storage`` block: how the pods of a kind reach S3-compatible object storage.

For ``s3://`` URIs the operator gives the serving pods and the retraining Job the endpoint,
region and addressing style as environment variables, and the credentials as references to a
Secret (``secretKeyRef``) that the kubelet resolves: the operator never reads the Secret, so its
RBAC has no access to Secrets. Without ``secretName`` the pods use whatever boto3 finds (IRSA,
workload identity, an instance role).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from modelops.api.base import ApiModel, ObjectName

ENDPOINT_PATTERN = r"^https?://[^/?#@\s]+(/[^?#\s]*)?$"
REGION_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: The keys read from the Secret; the session token only when the Secret has it.
SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
OPTIONAL_SECRET_KEYS = ("AWS_SESSION_TOKEN",)


class ObjectStorage(ApiModel):
    """S3-compatible object storage for s3:// URIs (AWS S3, MinIO, Ceph, SeaweedFS)."""

    secret_name: ObjectName | None = None
    """Secret in the same namespace with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optionally
    AWS_SESSION_TOKEN, passed to the pods by reference. Leave out for IRSA or workload
    identity."""
    endpoint: Annotated[str, Field(max_length=2048, pattern=ENDPOINT_PATTERN)] | None = None
    """Endpoint of a self-hosted server, e.g. http://minio.storage:9000; leave out for AWS S3."""
    region: Annotated[str, Field(max_length=64, pattern=REGION_PATTERN)] | None = None
    """Region, e.g. eu-west-1 (default us-east-1)."""
    path_style: bool | None = None
    """Path-style addressing (<endpoint>/<bucket>/<key>); default true when an endpoint is set."""
