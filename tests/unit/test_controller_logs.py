"""Kopf's per-handler success lines go to DEBUG; its other lines keep their levels."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from pathlib import Path

import kopf
import pytest
from kopf._core.actions import loggers as kopf_loggers
from test_controller_cli import KUBECONFIG

from modelops.controller import cli, handlers
from modelops.controller.logs import (
    KOPF_OBJECT_LOGGER,
    RoutineSuccessToDebug,
    quiet_routine_successes,
)
from modelops.controller.settings import OperatorSettings


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kopf_log() -> Iterator[tuple[logging.Logger, Records]]:
    """Kopf's object logger with the filter installed, and what reaches its handlers."""
    logger = logging.getLogger(KOPF_OBJECT_LOGGER)
    root = logging.getLogger()
    filters, level = list(logger.filters), root.level
    records = Records()
    logger.addHandler(records)
    quiet_routine_successes()
    quiet_routine_successes()  # idempotent
    try:
        yield logger, records
    finally:
        logger.removeHandler(records)
        logger.filters[:] = filters
        root.setLevel(level)


def our_handlers() -> list[object]:
    """Every handler the operator registers, as Kopf names it in its log lines."""
    registry = kopf.OperatorRegistry()
    handlers.register(registry, OperatorSettings(metrics_port=0, health_port=0))
    groups = (registry._activities, registry._changing, registry._watching, registry._spawning)
    return [h for group in groups for h in group.get_all_handlers()]


def test_the_filter_sits_where_kopf_logs_about_objects() -> None:
    assert kopf_loggers.logger.name == KOPF_OBJECT_LOGGER


def test_every_handler_s_success_is_dropped_at_info(
    kopf_log: tuple[logging.Logger, Records],
) -> None:
    logger, records = kopf_log
    logging.getLogger().setLevel(logging.INFO)
    found = our_handlers()
    assert {str(h) for h in found} >= {"Handler 'schedule'", "Timer 'resync'"}
    for handler in found:
        logger.info(f"{handler} succeeded.")  # as kopf/_core/actions/execution.py words it
    assert [r.getMessage() for r in records.records] == []


def test_successes_are_debug_lines_when_debug_is_on(
    kopf_log: tuple[logging.Logger, Records],
) -> None:
    logger, records = kopf_log
    logging.getLogger().setLevel(logging.DEBUG)
    logger.info("Timer 'resync' succeeded.")
    assert [(r.levelname, r.getMessage()) for r in records.records] == [
        ("DEBUG", "Timer 'resync' succeeded.")
    ]


@pytest.mark.parametrize(
    "message",
    [
        "Creation is processed: 1 succeeded; 0 failed.",
        "Timer 'resync' failed with an exception and will try again in 5 seconds: boom",
        "Handler 'reconcile' succeeded. Then something else happened.",
    ],
)
def test_other_lines_keep_their_level(
    kopf_log: tuple[logging.Logger, Records], message: str
) -> None:
    logger, records = kopf_log
    logging.getLogger().setLevel(logging.INFO)
    logger.info(message)
    assert [(r.levelname, r.getMessage()) for r in records.records] == [("INFO", message)]


def test_the_operator_command_installs_the_filter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    logger = logging.getLogger(KOPF_OBJECT_LOGGER)
    monkeypatch.setattr(logger, "filters", [])
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)  # its server listens nowhere: no request is made
    monkeypatch.setenv("KUBECONFIG", str(config))
    monkeypatch.setattr(kopf, "run", lambda **_: None)
    monkeypatch.setattr(kopf, "configure", lambda **_: None)
    args = argparse.Namespace(namespace=["ml"], all_namespaces=False, verbose=False)
    assert cli.run(args) == 0
    assert [type(f) for f in logger.filters] == [RoutineSuccessToDebug]
