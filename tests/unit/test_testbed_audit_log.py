"""The testbed reads the API server's audit log while the server appends to it."""

from __future__ import annotations

from pathlib import Path

from kube_testbed.controlplane import ControlPlane


def test_a_line_still_being_written_is_left_for_the_next_read(tmp_path: Path) -> None:
    plane = object.__new__(ControlPlane)
    plane.audit_log = tmp_path / "audit.log"
    plane.audit_log.write_text('{"verb": "get"}\n\n{"verb": "list"}\n{"verb": "wat')
    assert [e["verb"] for e in plane.audit_events()] == ["get", "list"]
    with plane.audit_log.open("a") as log:
        log.write('ch"}\n')
    assert [e["verb"] for e in plane.audit_events()] == ["get", "list", "watch"]


def test_no_log_yet_is_no_events(tmp_path: Path) -> None:
    plane = object.__new__(ControlPlane)
    plane.audit_log = tmp_path / "absent.log"
    assert plane.audit_events() == []
