"""Atomic, idempotent publication of a model directory: ``<root>/<version>/``.

The files are written into a hidden staging directory next to the target (same filesystem),
fsynced, and renamed into place with one ``rename(2)``: a reader sees either no version or the
whole version, never part of one. Writers of one root hold an exclusive ``flock`` on the root
directory while they check and publish, so staging directories found under the lock belong to
dead processes and are removed. Staging names start with a dot, which a version cannot.

Every published directory carries ``training.json`` (:class:`TrainingRecord`): the identity of
its inputs and the scores reported when it was made. Publishing a version that already exists is
a no-op reporting the stored scores when the identity matches, and a
:class:`~modelops.training.errors.VersionConflictError` when it does not.

Object storage has no rename: :mod:`modelops.training.destinations` publishes there with the same
records and the same no-op and conflict rules, the completion marker standing in for the rename.

Test hook: ``MODELOPS_TEST_PAUSE_BEFORE_RENAME=<seconds>`` makes the writer pause after staging
and before the rename (on object storage: before the marker), so tests can kill it at the worst
moment. It has no other use.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelops.training.errors import InvalidInputError, TrainingError, VersionConflictError

RECORD_FILE = "training.json"
STAGING_MARK = ".partial-"
PAUSE_ENV = "MODELOPS_TEST_PAUSE_BEFORE_RENAME"

#: A version is a Kubernetes label value (it labels the retraining Job) and a directory name.
VERSION_PATTERN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")


@dataclass(frozen=True)
class TrainingRecord:
    """``training.json``: what made a model directory, and how it scored."""

    identity: str
    """SHA-256 over everything that decides the model (data, recipe, params, seed, split)."""
    metrics: Mapping[str, float] = field(default_factory=dict)
    baseline: Mapping[str, float] = field(default_factory=dict)
    message: str = ""
    """The result's message (e.g. why the champion could not be scored), repeated on a no-op."""
    fairness: Mapping[str, Any] | None = None
    """The result's ``fairness`` (when a fairness metric was asked), repeated on a no-op."""

    def to_json(self) -> str:
        document: dict[str, Any] = {
            "identity": self.identity,
            "metrics": self.metrics,
            "baseline": self.baseline,
            "message": self.message,
        }
        if self.fairness is not None:
            document["fairness"] = self.fairness
        return json.dumps(document, indent=2)

    @classmethod
    def read(cls, directory: Path) -> TrainingRecord | None:
        """The record in ``directory``, or None when there is none or it is unreadable."""
        try:
            return cls.parse((directory / RECORD_FILE).read_bytes())
        except OSError:
            return None

    @classmethod
    def parse(cls, text: bytes) -> TrainingRecord | None:
        """The record in ``text`` (a ``training.json``), or None when it is not one."""
        try:
            data = json.loads(text)
            return cls(
                identity=str(data["identity"]),
                metrics={str(k): float(v) for k, v in data.get("metrics", {}).items()},
                baseline={str(k): float(v) for k, v in data.get("baseline", {}).items()},
                message=str(data.get("message", "")),
                fairness=data["fairness"] if isinstance(data.get("fairness"), dict) else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def validate_version(version: str, what: str = "version") -> str:
    """``version`` if it is a usable label and directory name, else :class:`InvalidInputError`."""
    if not VERSION_PATTERN.fullmatch(version):
        raise InvalidInputError(
            f"invalid {what} {version!r}: use 1-63 letters, digits, '.', '_' or '-', starting "
            "and ending with a letter or digit"
        )
    return version


def existing_record(root: Path, version: str, identity: str) -> TrainingRecord | None:
    """The record of ``<root>/<version>`` if it was made from the same inputs; None if absent.

    Raises :class:`VersionConflictError` when the version exists with other content.
    """
    target = root / version
    if not os.path.lexists(target):
        return None
    record = TrainingRecord.read(target) if target.is_dir() else None
    if record is None or record.identity != identity:
        raise VersionConflictError(
            f"version {version!r} already exists at {target} with different content; "
            "choose a new version"
        )
    return record


def publish(
    root: Path,
    version: str,
    record: TrainingRecord,
    write: Callable[[Path], None],
) -> TrainingRecord:
    """Write ``<root>/<version>`` atomically with ``write(staging_dir)`` plus ``training.json``.

    Returns the record now in place: ``record``, or the stored one of an identical version that
    was already there (then nothing is written).
    """
    validate_version(version, "directory name")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"cannot create the output directory {root}: {exc}") from exc
    with _exclusive(root):
        remove_stale_staging(root)
        found = existing_record(root, version, record.identity)
        if found is not None:
            return found
        staging = root / f".{version}{STAGING_MARK}{uuid.uuid4().hex[:12]}"
        staging.mkdir()
        try:
            write(staging)
            (staging / RECORD_FILE).write_text(record.to_json(), encoding="utf-8")
            _fsync_tree(staging)
            pause_for_tests(str(staging))
            os.rename(staging, root / version)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _fsync(root)
    return record


def remove_stale_staging(root: Path) -> list[Path]:
    """Remove staging directories left by killed writers (call with the root lock held)."""
    removed = []
    for path in root.glob(f".*{STAGING_MARK}*"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextlib.contextmanager
def _exclusive(root: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``root`` (released by the kernel if we die)."""
    descriptor = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        except OSError as exc:
            raise TrainingError(f"cannot lock the output directory {root}: {exc}") from exc
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _fsync_tree(directory: Path) -> None:
    for path in directory.iterdir():
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    _fsync(directory)


def _fsync(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def pause_for_tests(staged: str, next_step: str = "the rename") -> None:
    """The test hook (see the module's docstring): sleep between staging and publishing."""
    try:
        seconds = float(os.environ.get(PAUSE_ENV) or 0)
    except ValueError:
        return
    if seconds > 0:
        print(f"Staged {staged}; pausing {seconds:g}s before {next_step}", file=sys.stderr)
        sys.stderr.flush()
        time.sleep(seconds)
