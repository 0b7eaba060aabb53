"""Fetch what a URI names to local files: used in place when local, else a size-limited download.

A remote model directory is fetched as the files the caller names (``<uri>/model.skops`` and so
on), never by listing, so nothing outside the directory is read. On object storage a directory
is only read once its completion marker is there (:mod:`modelops.storage.s3dirs`).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from modelops.storage import (
    DEFAULT_MAX_DOWNLOAD_BYTES,
    StorageError,
    join_uri,
    local_path,
    parse_uri,
    redact_uri,
    s3,
    s3dirs,
)

DOWNLOAD_TIMEOUT_SECONDS = 60.0


def fetch_file(uri: str, workdir: Path, *, max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES) -> Path:
    """A local path holding the content of ``uri``: the file itself, or a size-limited download."""
    parsed = parse_uri(uri)
    if not parsed.is_remote:
        path = local_path(uri)
        if not path.is_file():
            raise StorageError(f"{uri!r}: no such file ({path})")
        return path
    name = PurePosixPath(parsed.path).name or "download"
    target = workdir / name
    if parsed.is_object_store:
        s3.download(uri, target, max_bytes)
    else:
        _download(uri, target, max_bytes)
    return target


def fetch_dir(
    uri: str,
    workdir: Path,
    names: tuple[str, ...],
    *,
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
) -> Path:
    """A local directory holding ``names`` from the directory at ``uri``.

    Local directories are used in place; a remote one is downloaded file by file into
    ``workdir`` with ``max_bytes`` as the limit for all files together.
    """
    parsed = parse_uri(uri)
    if not parsed.is_remote:
        path = local_path(uri)
        if not path.is_dir():
            raise StorageError(f"{uri!r}: no such directory ({path})")
        missing = [n for n in names if not (path / n).is_file()]
        if missing:
            raise StorageError(f"{uri!r}: missing {', '.join(missing)}")
        return path
    target = workdir / "model"
    target.mkdir(parents=True, exist_ok=True)
    if parsed.is_object_store:
        s3dirs.fetch_version(uri, target, names, max_bytes=max_bytes)
        return target
    budget = max_bytes
    for name in names:
        budget -= _download(join_uri(uri, name), target / name, budget)
    return target


def _download(uri: str, target: Path, max_bytes: int) -> int:
    """Stream ``uri`` into ``target``; refuse more than ``max_bytes``. Returns the size.

    Messages name the URI without its userinfo or query, where a password or token may be.
    """
    shown = redact_uri(uri)
    request = urllib.request.Request(uri, headers={"User-Agent": "modelops"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:  # noqa: S310
            declared = int(response.headers.get("Content-Length") or 0)
            if declared > max_bytes:
                raise StorageError(
                    f"{shown!r} is {declared} bytes, over the {max_bytes}-byte limit"
                )
            size = 0
            with target.open("wb") as out:
                while chunk := response.read(1 << 16):
                    size += len(chunk)
                    if size > max_bytes:
                        raise StorageError(f"{shown!r} is over the {max_bytes}-byte limit")
                    out.write(chunk)
            return size
    except StorageError:
        target.unlink(missing_ok=True)
        raise
    except urllib.error.HTTPError as exc:
        target.unlink(missing_ok=True)
        raise StorageError(f"could not download {shown!r}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        target.unlink(missing_ok=True)
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise StorageError(f"could not download {shown!r}: {reason}") from None
