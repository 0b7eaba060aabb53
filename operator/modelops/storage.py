"""Model and data URIs: ``pvc://``, ``file://`` and ``http(s)://``, resolved to local files.

- ``pvc://<claim>/<path>``: a PersistentVolumeClaim that the operator mounts at
  ``<MODELOPS_PVC_ROOT>/<claim>`` (default root ``/mnt/modelops``) in every pod it creates.
- ``file:///<path>``: an absolute path already on the local filesystem.
- ``http(s)://...``: downloaded once into a caller-given temporary directory, size-limited; a model
  directory URI is fetched as its three files (``<uri>/model.skops`` and so on).

Only the scheme allow-list is accepted and no path segment may be ``..``: a URI from a custom
resource can never reach outside its volume. Every failure raises :class:`StorageError` with a
message that names the URI.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import unquote, urlsplit

Scheme = Literal["pvc", "file", "http", "https"]
SCHEMES: tuple[Scheme, ...] = ("pvc", "file", "http", "https")
PVC_ROOT_ENV = "MODELOPS_PVC_ROOT"
DEFAULT_PVC_ROOT = "/mnt/modelops"
DEFAULT_MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024
DOWNLOAD_TIMEOUT_SECONDS = 60.0


class StorageError(ValueError):
    """A URI that is malformed, not allowed, unreachable or too large."""


@dataclass(frozen=True)
class ParsedUri:
    """A validated URI: its scheme, the claim (``pvc`` only) and the path inside it."""

    uri: str
    scheme: Scheme
    claim: str
    path: str

    @property
    def is_remote(self) -> bool:
        return self.scheme in ("http", "https")


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
    if not parts.netloc:
        raise StorageError(f"{uri!r} names no host")
    return ParsedUri(uri, scheme, "", path)


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


def join_uri(base: str, name: str) -> str:
    """``base`` with one more path segment; ``name`` may not climb out of ``base``."""
    if not name or "/" in name or name in (".", ".."):
        raise StorageError(f"invalid path segment {name!r}")
    return base.rstrip("/") + "/" + name


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
    budget = max_bytes
    for name in names:
        budget -= _download(join_uri(uri, name), target / name, budget)
    return target


def _download(uri: str, target: Path, max_bytes: int) -> int:
    """Stream ``uri`` into ``target``; refuse more than ``max_bytes``. Returns the size."""
    request = urllib.request.Request(uri, headers={"User-Agent": "modelops"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:  # noqa: S310
            declared = int(response.headers.get("Content-Length") or 0)
            if declared > max_bytes:
                raise StorageError(f"{uri!r} is {declared} bytes, over the {max_bytes}-byte limit")
            size = 0
            with target.open("wb") as out:
                while chunk := response.read(1 << 16):
                    size += len(chunk)
                    if size > max_bytes:
                        raise StorageError(f"{uri!r} is over the {max_bytes}-byte limit")
                    out.write(chunk)
            return size
    except StorageError:
        target.unlink(missing_ok=True)
        raise
    except (urllib.error.URLError, OSError, ValueError) as exc:
        target.unlink(missing_ok=True)
        raise StorageError(f"could not download {uri!r}: {exc}") from exc
