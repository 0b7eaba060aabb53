"""The environment a pod needs for ``s3://`` URIs, from a ``storage`` block.

Endpoint, region and addressing style are plain values; the keys are ``secretKeyRef``s to the
named Secret, resolved by the kubelet, so the operator never reads a credential. The session
token is optional in the Secret. Names are the ones boto3 reads (see ``modelops.storage.s3``).
"""

from __future__ import annotations

from typing import Any

from modelops.api.storage import OPTIONAL_SECRET_KEYS, SECRET_KEYS, ObjectStorage
from modelops.storage import S3_PATH_STYLE_ENV


def storage_env(storage: ObjectStorage | None) -> list[dict[str, Any]]:
    """Container ``env`` entries for ``storage`` (none without a block)."""
    if storage is None:
        return []
    env: list[dict[str, Any]] = []
    if storage.endpoint is not None:
        env.append({"name": "AWS_ENDPOINT_URL", "value": storage.endpoint})
    if storage.region is not None:
        env.append({"name": "AWS_REGION", "value": storage.region})
    if storage.path_style is not None:
        env.append({"name": S3_PATH_STYLE_ENV, "value": "true" if storage.path_style else "false"})
    if storage.secret_name is not None:
        for key in (*SECRET_KEYS, *OPTIONAL_SECRET_KEYS):
            reference: dict[str, Any] = {"name": storage.secret_name, "key": key}
            if key in OPTIONAL_SECRET_KEYS:
                reference["optional"] = True
            env.append({"name": key, "valueFrom": {"secretKeyRef": reference}})
    return env
