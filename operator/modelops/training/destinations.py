"""Where a run publishes ``<output-uri>/<version>/``: a volume, or S3-compatible object storage.

Both give a reader all of a version or none of it, and both follow the same rules for a version
that is already there (a no-op reporting the stored scores when ``training.json`` holds the same
identity, :class:`~modelops.training.errors.VersionConflictError` when not). On a volume the
version is renamed into place (:mod:`modelops.training.publish`); on object storage its files are
uploaded, then the completion marker (:mod:`modelops.storage.s3dirs`), which readers require.
Storage failures (no bucket, no access, unreachable endpoint) are bad input: exit 2.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from modelops.storage import StorageError, join_uri, local_path, parse_uri, s3dirs
from modelops.training import publish as volume
from modelops.training.errors import InvalidInputError, VersionConflictError
from modelops.training.publish import RECORD_FILE, TrainingRecord, validate_version

#: ``training.json`` is small; anything larger is not one.
MAX_RECORD_BYTES = 1024 * 1024


class Destination(Protocol):
    """A place versions are published to."""

    def existing(self, version: str, identity: str) -> TrainingRecord | None:
        """The record of ``version`` if it was made from the same inputs; None if absent."""

    def publish(
        self, version: str, record: TrainingRecord, write: Callable[[Path], None]
    ) -> TrainingRecord:
        """Publish ``write(directory)`` plus ``training.json`` as ``version``, all or nothing."""


def destination(output_uri: str) -> Destination:
    """The destination an output URI names (``file://``, ``pvc://`` or ``s3://``)."""
    try:
        parsed = parse_uri(output_uri)
        if parsed.is_object_store:
            return ObjectStore(output_uri)
        if parsed.is_remote:
            raise InvalidInputError(
                f"output URI {output_uri!r} is remote and read-only: write to a file://, pvc:// "
                "or s3:// URI"
            )
        return Volume(local_path(output_uri))
    except StorageError as exc:
        raise InvalidInputError(f"invalid output URI: {exc}") from exc


@dataclass(frozen=True)
class Volume:
    """A directory on a filesystem: staged, then renamed into place under a lock."""

    root: Path

    def existing(self, version: str, identity: str) -> TrainingRecord | None:
        return volume.existing_record(self.root, version, identity)

    def publish(
        self, version: str, record: TrainingRecord, write: Callable[[Path], None]
    ) -> TrainingRecord:
        return volume.publish(self.root, version, record, write)


@dataclass(frozen=True)
class ObjectStore:
    """A prefix in a bucket: files uploaded, then the completion marker."""

    uri: str

    def existing(self, version: str, identity: str) -> TrainingRecord | None:
        target = join_uri(self.uri, version)
        with _bad_input():
            manifest = s3dirs.read_manifest(target)
            if manifest is None:
                return None  # nothing, or a partial upload that a publish writes over
            record = None
            if RECORD_FILE in manifest.files:
                with tempfile.TemporaryDirectory(prefix="modelops-record-") as workdir:
                    s3dirs.fetch_version(
                        target, Path(workdir), (RECORD_FILE,), max_bytes=MAX_RECORD_BYTES
                    )
                    record = TrainingRecord.read(Path(workdir))
        if record is None or record.identity != identity:
            raise VersionConflictError(
                f"version {version!r} already exists at {target} with different content; "
                "choose a new version"
            )
        return record

    def publish(
        self, version: str, record: TrainingRecord, write: Callable[[Path], None]
    ) -> TrainingRecord:
        validate_version(version, "directory name")
        found = self.existing(version, record.identity)
        if found is not None:
            return found
        target = join_uri(self.uri, version)
        with tempfile.TemporaryDirectory(prefix="modelops-publish-") as staging:
            write(Path(staging))
            (Path(staging) / RECORD_FILE).write_text(record.to_json(), encoding="utf-8")
            with _bad_input():
                s3dirs.upload_version(
                    Path(staging),
                    target,
                    before_marker=lambda: volume.pause_for_tests(target, "the completion marker"),
                )
        return record


@contextlib.contextmanager
def _bad_input() -> Iterator[None]:
    try:
        yield
    except StorageError as exc:
        raise InvalidInputError(str(exc)) from exc
