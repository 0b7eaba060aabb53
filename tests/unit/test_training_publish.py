"""Atomic, idempotent publication: a version appears whole or not at all, once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from modelops.training.errors import InvalidInputError, VersionConflictError
from modelops.training.publish import (
    RECORD_FILE,
    TrainingRecord,
    existing_record,
    publish,
    validate_version,
)

RECORD = TrainingRecord("a" * 64, {"accuracy": 0.9, "f1": 0.8}, {"accuracy": 0.5})


def write_files(directory: Path) -> None:
    (directory / "model.skops").write_bytes(b"model")
    (directory / "metadata.json").write_text("{}")


def refuse_to_write(directory: Path) -> None:
    raise AssertionError("publish wrote although the version was already there")


def test_publishes_the_files_and_the_record_and_nothing_else(tmp_path: Path) -> None:
    assert publish(tmp_path / "models", "v2", RECORD, write_files) == RECORD
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["v2"]
    names = sorted(p.name for p in (tmp_path / "models" / "v2").iterdir())
    assert names == ["metadata.json", "model.skops", RECORD_FILE]
    stored = TrainingRecord.read(tmp_path / "models" / "v2")
    assert stored == RECORD
    assert list(stored.metrics) == ["accuracy", "f1"]  # order kept, so results compare equal


def test_an_identical_version_is_a_no_op_that_returns_the_stored_record(tmp_path: Path) -> None:
    publish(tmp_path, "v2", RECORD, write_files)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "v2").iterdir()}
    again = TrainingRecord(RECORD.identity, {"accuracy": 0.1}, {})
    assert publish(tmp_path, "v2", again, refuse_to_write) == RECORD
    assert existing_record(tmp_path, "v2", RECORD.identity) == RECORD
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "v2").iterdir()} == before


def test_a_version_with_other_content_is_a_conflict(tmp_path: Path) -> None:
    publish(tmp_path, "v2", RECORD, write_files)
    other = TrainingRecord("b" * 64)
    with pytest.raises(VersionConflictError, match="'v2' already exists"):
        publish(tmp_path, "v2", other, refuse_to_write)
    with pytest.raises(VersionConflictError):
        existing_record(tmp_path, "v2", other.identity)
    assert TrainingRecord.read(tmp_path / "v2") == RECORD


@pytest.mark.parametrize("kind", ["empty directory", "foreign directory", "file", "bad record"])
def test_anything_else_at_the_target_is_a_conflict(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "v2"
    if kind == "file":
        target.write_text("x")
    else:
        target.mkdir()
        if kind == "foreign directory":
            (target / "metadata.json").write_text("{}")
        if kind == "bad record":
            (target / RECORD_FILE).write_text("[1, 2")
    with pytest.raises(VersionConflictError):
        publish(tmp_path, "v2", RECORD, refuse_to_write)


def test_absent_versions_have_no_record(tmp_path: Path) -> None:
    assert existing_record(tmp_path / "nowhere", "v1", RECORD.identity) is None


def test_a_failing_write_leaves_nothing(tmp_path: Path) -> None:
    def write_half(directory: Path) -> None:
        (directory / "model.skops").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        publish(tmp_path, "v2", RECORD, write_half)
    assert list(tmp_path.iterdir()) == []


def test_staging_left_by_a_killed_writer_is_removed_and_never_a_version(tmp_path: Path) -> None:
    stale = tmp_path / ".v2.partial-0123456789ab"
    stale.mkdir()
    (stale / "model.skops").write_bytes(b"half")
    with pytest.raises(InvalidInputError):
        validate_version(stale.name)
    publish(tmp_path, "v3", RECORD, write_files)
    assert [p.name for p in tmp_path.iterdir()] == ["v3"]


def test_concurrent_writers_of_one_version_publish_once(tmp_path: Path) -> None:
    inside = threading.Event()
    release = threading.Event()
    calls: list[str] = []

    def slow_write(directory: Path) -> None:
        calls.append("first")
        inside.set()
        assert release.wait(10)
        write_files(directory)

    results: list[TrainingRecord] = []
    first = threading.Thread(
        target=lambda: results.append(publish(tmp_path, "v2", RECORD, slow_write))
    )
    first.start()
    assert inside.wait(10)
    second = threading.Thread(
        target=lambda: results.append(publish(tmp_path, "v2", RECORD, refuse_to_write))
    )
    second.start()
    second.join(0.3)
    assert second.is_alive(), "the second writer must wait for the first one's lock"
    release.set()
    first.join(10)
    second.join(10)
    assert results == [RECORD, RECORD]
    assert calls == ["first"]
    assert [p.name for p in tmp_path.iterdir()] == ["v2"]


@pytest.mark.parametrize("version", ["v1", "20261126-1", "1.2.3", "a_b", "x" * 63])
def test_valid_versions(version: str) -> None:
    assert validate_version(version) == version


@pytest.mark.parametrize("version", ["", ".v1", "v1-", "-v1", "../v1", "a/b", "v 1", "x" * 64])
def test_invalid_versions(version: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid version"):
        validate_version(version)
