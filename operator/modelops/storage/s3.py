"""S3-compatible object storage through boto3: read, write and probe single objects.

The client is configured the way every AWS tool is, from the environment, so a pod needs no
flags: credentials from boto3's chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
``AWS_SESSION_TOKEN``, a web identity token for IRSA or workload identity, a profile); the
endpoint of MinIO, Ceph or SeaweedFS from ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``); the
region from ``AWS_REGION`` or ``AWS_DEFAULT_REGION``. ``MODELOPS_S3_PATH_STYLE`` (``true`` or
``false``) picks path-style addressing, which most self-hosted servers need; it defaults to true
when an endpoint is set.

Every failure becomes one :class:`~modelops.storage.StorageError` line naming the URI and what to
check, built from the error code alone: no credential, signature or request dump ever reaches a
message or a log.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from modelops.storage import S3_PATH_STYLE_ENV, StorageError, parse_uri

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

ENDPOINT_ENVS = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
REGION_ENVS = ("AWS_REGION", "AWS_DEFAULT_REGION")
PATH_STYLE_ENV = S3_PATH_STYLE_ENV
DEFAULT_REGION = "us-east-1"
TIMEOUT_SECONDS = 60.0
CHUNK_BYTES = 1 << 16

_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AuthorizationHeaderMalformed",
    "403",
}
_MISSING_KEY = {"NoSuchKey", "404", "NotFound"}


class NoSuchObjectError(StorageError):
    """The bucket answered, but holds no object under the key."""


def endpoint() -> str | None:
    """The custom endpoint (MinIO, Ceph, SeaweedFS), or None for AWS itself."""
    return next((os.environ[n] for n in ENDPOINT_ENVS if os.environ.get(n)), None)


def region() -> str:
    return next((os.environ[n] for n in REGION_ENVS if os.environ.get(n)), DEFAULT_REGION)


def path_style() -> bool:
    """Path-style addressing (``<endpoint>/<bucket>/<key>``) rather than virtual-host style."""
    value = os.environ.get(PATH_STYLE_ENV, "").strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    return endpoint() is not None


def client() -> S3Client:
    """A client for the environment as it is now (cached per configuration)."""
    return _client(endpoint(), region(), path_style())


@functools.cache
def _client(endpoint_url: str | None, region_name: str, path: bool) -> S3Client:
    import boto3
    from botocore.config import Config

    # "Found credentials in environment variables." on every start: where credentials came from
    # is no news to the user and says nothing when it works.
    logging.getLogger("botocore.credentials").setLevel(logging.WARNING)
    config = Config(
        region_name=region_name,
        connect_timeout=10,
        read_timeout=TIMEOUT_SECONDS,
        retries={"max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": "path" if path else "auto"},
        user_agent_extra="modelops",
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


def location(uri: str) -> tuple[str, str]:
    """The bucket and key of an ``s3://`` URI."""
    parsed = parse_uri(uri)
    if not parsed.is_object_store:
        raise StorageError(f"{uri!r} is not an s3:// URI")
    return parsed.bucket, parsed.path


def download(uri: str, target: Path, max_bytes: int) -> int:
    """Stream the object ``uri`` into ``target``, refusing more than ``max_bytes``; its size."""
    bucket, key = location(uri)
    try:
        with _errors(uri, "read"):
            response = client().get_object(Bucket=bucket, Key=key)
            declared = response.get("ContentLength", 0)
            if declared > max_bytes:
                raise StorageError(f"{uri!r} is {declared} bytes, over the {max_bytes}-byte limit")
            size = 0
            body = response["Body"]
            with target.open("wb") as out:
                while chunk := body.read(CHUNK_BYTES):
                    size += len(chunk)
                    if size > max_bytes:
                        raise StorageError(f"{uri!r} is over the {max_bytes}-byte limit")
                    out.write(chunk)
            return size
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def read_bytes(uri: str, max_bytes: int) -> bytes | None:
    """The content of a small object, or None when there is no such key (the bucket exists)."""
    bucket, key = location(uri)
    try:
        with _errors(uri, "read"):
            response = client().get_object(Bucket=bucket, Key=key)
            if response.get("ContentLength", 0) > max_bytes:
                raise StorageError(f"{uri!r} is over the {max_bytes}-byte limit")
            data = response["Body"].read(max_bytes + 1)
    except NoSuchObjectError:
        return None
    if len(data) > max_bytes:
        raise StorageError(f"{uri!r} is over the {max_bytes}-byte limit")
    return data


def upload(path: Path, uri: str) -> None:
    """Write the local file ``path`` to the object ``uri`` (replacing it)."""
    bucket, key = location(uri)
    with _errors(uri, "write"), path.open("rb") as body:
        client().put_object(Bucket=bucket, Key=key, Body=body)


def put_bytes(uri: str, data: bytes) -> None:
    """Write ``data`` to the object ``uri`` (replacing it)."""
    bucket, key = location(uri)
    with _errors(uri, "write"):
        client().put_object(Bucket=bucket, Key=key, Body=data)


def exists(uri: str) -> bool:
    """Whether the object ``uri`` exists; errors (no bucket, no access) raise."""
    bucket, key = location(uri)
    try:
        with _errors(uri, "read"):
            client().head_object(Bucket=bucket, Key=key)
    except NoSuchObjectError:
        return False
    return True


@contextmanager
def _errors(uri: str, action: str) -> Iterator[None]:
    """Turn boto3's exceptions into one clear :class:`StorageError`."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "")) or str(
            exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        )
        error = NoSuchObjectError if code in _MISSING_KEY else StorageError
        raise error(_client_error(uri, action, code)) from None
    except (NoCredentialsError, PartialCredentialsError):
        raise StorageError(
            f"cannot {action} {uri!r}: no S3 credentials: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or give the pod a role)"
        ) from None
    except EndpointConnectionError:
        raise StorageError(
            f"cannot {action} {uri!r}: the S3 endpoint {endpoint() or 'of AWS'} cannot be "
            "reached (check AWS_ENDPOINT_URL)"
        ) from None
    except BotoCoreError as exc:
        raise StorageError(f"cannot {action} {uri!r}: {type(exc).__name__}") from None


def _client_error(uri: str, action: str, code: str) -> str:
    bucket, key = location(uri)
    if code == "NoSuchBucket":
        return f"cannot {action} {uri!r}: the bucket {bucket!r} does not exist"
    if code in _MISSING_KEY:
        return f"cannot {action} {uri!r}: no such object (key {key!r} in bucket {bucket!r})"
    if code in _DENIED:
        return (
            f"cannot {action} {uri!r}: access denied ({code}): check the credentials "
            "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and their rights on the bucket"
        )
    return f"cannot {action} {uri!r}: the S3 server answered {code or 'an error'}"
