"""Model directories on object storage, where there is no rename: the completion marker.

A writer uploads every file of a directory under its prefix, then ``complete.json`` last: the
name, size and SHA-256 of each file. A reader fetches the marker first and refuses a directory
without one, so a writer killed at any moment leaves nothing that loads; it then checks every
file it downloads against the marker, so a file replaced after the marker was written (a second
writer racing the first) is refused too rather than mixed into a model. A re-run over a partial
upload simply writes the files again, then the marker.

``complete.json``::

    {"format": "modelops.dev/complete/v1",
     "files": {"model.skops": {"size": 1234, "sha256": "<hex>"}, ...}}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from modelops.storage import StorageError, join_uri, s3

MARKER = "complete.json"
MARKER_FORMAT = "modelops.dev/complete/v1"
MAX_MARKER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class FileDigest:
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """The content of ``complete.json``: every file of the directory and its digest."""

    files: Mapping[str, FileDigest]

    def to_json(self) -> str:
        files = {
            name: {"size": d.size, "sha256": d.sha256} for name, d in sorted(self.files.items())
        }
        return json.dumps({"format": MARKER_FORMAT, "files": files}, indent=2)

    @classmethod
    def from_json(cls, text: bytes, uri: str) -> Manifest:
        try:
            document = json.loads(text)
            if document.get("format") != MARKER_FORMAT:
                raise ValueError(f"format is not {MARKER_FORMAT!r}")
            files = {
                str(name): FileDigest(int(entry["size"]), str(entry["sha256"]))
                for name, entry in document["files"].items()
            }
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StorageError(f"{uri!r} is not a valid {MARKER}: {exc}") from None
        return cls(files)


def digest(path: Path) -> FileDigest:
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
    return FileDigest(size, sha.hexdigest())


def manifest_of(directory: Path) -> Manifest:
    """The manifest of the regular files directly in ``directory``."""
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.name != MARKER)
    return Manifest({p.name: digest(p) for p in files})


def read_manifest(uri: str) -> Manifest | None:
    """The marker of the directory ``uri``; None when it is incomplete (no marker)."""
    marker = join_uri(uri, MARKER)
    data = s3.read_bytes(marker, MAX_MARKER_BYTES)
    return None if data is None else Manifest.from_json(data, marker)


def upload_version(
    directory: Path, uri: str, *, before_marker: Callable[[], None] | None = None
) -> Manifest:
    """Upload every file of ``directory`` under ``uri``, then the marker.

    ``before_marker`` runs once the files are up and the marker is not (a test hook).
    """
    manifest = manifest_of(directory)
    for name in manifest.files:
        s3.upload(directory / name, join_uri(uri, name))
    if before_marker is not None:
        before_marker()
    s3.put_bytes(join_uri(uri, MARKER), manifest.to_json().encode())
    return manifest


def fetch_version(uri: str, target: Path, names: tuple[str, ...], *, max_bytes: int) -> None:
    """Download ``names`` of the complete directory ``uri`` into ``target``, each checked
    against the marker; ``max_bytes`` limits all files together."""
    manifest = read_manifest(uri)
    if manifest is None:
        raise StorageError(
            f"{uri!r} is not a complete model directory: it has no {MARKER} (an upload was "
            "interrupted or is still running; `modelops train` and `modelops package` write it "
            "last)"
        )
    missing = [name for name in names if name not in manifest.files]
    if missing:
        raise StorageError(f"{uri!r}: missing {', '.join(missing)}")
    budget = max_bytes
    for name in names:
        expected = manifest.files[name]
        if expected.size > budget:
            raise StorageError(f"{uri!r} is over the {max_bytes}-byte limit")
        budget -= s3.download(join_uri(uri, name), target / name, budget)
        if digest(target / name) != expected:
            (target / name).unlink(missing_ok=True)
            raise StorageError(
                f"{join_uri(uri, name)!r} does not match {MARKER}: it changed after the directory "
                "was published (two writers of one version?)"
            )
