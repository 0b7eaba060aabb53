"""Model and data URIs: ``pvc://``, ``file://``, ``http(s)://`` and ``s3://``.

- ``pvc://<claim>/<path>``: a PersistentVolumeClaim that the operator mounts at
  ``<MODELOPS_PVC_ROOT>/<claim>`` (default root ``/mnt/modelops``) in every pod it creates.
- ``file:///<path>``: an absolute path already on the local filesystem.
- ``http(s)://...``: downloaded once into a caller-given temporary directory, size-limited; a model
  directory URI is fetched as its three files (``<uri>/model.skops`` and so on).
- ``s3://<bucket>/<prefix>``: an object (or, for a model directory, the objects under
  ``<prefix>/``) in S3-compatible object storage, reached with boto3 (:mod:`modelops.storage.s3`).

This module only parses and validates, so the API types can share its rules without importing a
client: fetching is :mod:`modelops.storage.fetch`. Only the scheme allow-list is accepted and no
path segment may be ``..``: a URI from a custom resource can never reach outside its volume or
its prefix. Every failure raises :class:`StorageError` with a message that names the URI.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

Scheme = Literal["pvc", "file", "http", "https", "s3"]
SCHEMES: tuple[Scheme, ...] = ("pvc", "file", "http", "https", "s3")
PVC_ROOT_ENV = "MODELOPS_PVC_ROOT"
DEFAULT_PVC_ROOT = "/mnt/modelops"
DEFAULT_MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024
#: ``true`` or ``false``: path-style S3 addressing (see ``storage.s3``; set by the operator too).
S3_PATH_STYLE_ENV = "MODELOPS_S3_PATH_STYLE"

#: S3 bucket names (AWS's rules, which MinIO, Ceph and SeaweedFS follow): 3-63 lower-case letters,
#: digits, '.' and '-', starting and ending with a letter or digit, no '..', not an IPv4 address.
BUCKET_PATTERN = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_IPV4 = re.compile(r"\d+\.\d+\.\d+\.\d+")


class StorageError(ValueError):
    """A URI that is malformed, not allowed, unreachable or too large."""


@dataclass(frozen=True)
class ParsedUri:
    """A validated URI: its scheme, the claim (``pvc``) or bucket (``s3``), the path inside."""

    uri: str
    scheme: Scheme
    claim: str
    path: str
    """For ``s3``, the key prefix, without a leading ``/``."""
    bucket: str = ""

    @property
    def is_remote(self) -> bool:
        """Not a local path: fetched over the network (http, https, s3)."""
        return self.scheme in ("http", "https", "s3")

    @property
    def is_http(self) -> bool:
        return self.scheme in ("http", "https")

    @property
    def is_object_store(self) -> bool:
        """S3-compatible object storage: writable, but with no rename (see ``storage.s3dirs``)."""
        return self.scheme == "s3"


def parse_uri(uri: str) -> ParsedUri:
    """Validate ``uri`` against the scheme allow-list and the no-``..`` rule."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        allowed = ", ".join(f"{s}://" for s in SCHEMES)
        raise StorageError(f"unsupported URI scheme in {uri!r}: use one of {allowed}")
    path = unquote(parts.path)
    if ".." in PurePosixPath(path).parts:
        raise StorageError(f"'..' is not allowed in the path of {uri!r}")
    if scheme == "pvc":
        if not parts.netloc:
            raise StorageError(f"{uri!r} names no claim: use pvc://<claim>/<path>")
        return ParsedUri(uri, "pvc", parts.netloc, path.lstrip("/"))
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not path.startswith("/"):
            raise StorageError(f"{uri!r} is not an absolute file URI: use file:///<path>")
        return ParsedUri(uri, "file", "", path)
    if scheme == "s3":
        return _parse_s3(uri, parts.netloc, path, has_extra=bool(parts.query or parts.fragment))
    if not parts.netloc:
        raise StorageError(f"{uri!r} names no host")
    return ParsedUri(uri, scheme, "", path)


def _parse_s3(uri: str, bucket: str, path: str, *, has_extra: bool) -> ParsedUri:
    if has_extra or "?" in uri or "#" in uri:
        raise StorageError(f"{uri!r}: an s3:// URI takes no ?query or #fragment")
    if not check_bucket(bucket):
        raise StorageError(
            f"{uri!r} does not name a valid bucket: use s3://<bucket>/<prefix>, the bucket 3-63 "
            "lower-case letters, digits, '.' and '-' (no '..', not an IP address)"
        )
    return ParsedUri(uri, "s3", "", path.lstrip("/"), bucket=bucket)


def check_bucket(name: str) -> bool:
    """Whether ``name`` is a valid S3 bucket name (see :data:`BUCKET_PATTERN`)."""
    return (
        re.fullmatch(BUCKET_PATTERN, name) is not None
        and ".." not in name
        and not _IPV4.fullmatch(name)
    )


def pvc_root() -> Path:
    """Where claims are mounted in this pod (``MODELOPS_PVC_ROOT``)."""
    return Path(os.environ.get(PVC_ROOT_ENV, DEFAULT_PVC_ROOT))


def local_path(uri: str) -> Path:
    """The local filesystem path of a ``file://`` or ``pvc://`` URI (which need not exist yet)."""
    parsed = parse_uri(uri)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if parsed.scheme == "pvc":
        return pvc_root() / parsed.claim / parsed.path
    raise StorageError(f"{uri!r} is remote; only file:// and pvc:// URIs name a local path")


def redact_uri(uri: str) -> str:
    """``uri`` without userinfo, ``?query`` or ``#fragment`` (where an http URI may carry a
    password or a signed token), for logs, metrics labels and messages."""
    try:
        parts = urlsplit(uri)
        netloc = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "<invalid URI>"


def join_uri(base: str, name: str) -> str:
    """``base`` with one more path segment; ``name`` may not climb out of ``base``."""
    if not name or "/" in name or name in (".", ".."):
        raise StorageError(f"invalid path segment {name!r}")
    return base.rstrip("/") + "/" + name
