"""JSON log lines (modelops.serving.logs)."""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Iterator

import orjson
import pytest

from modelops.serving.logs import JsonFormatter, configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.captureWarnings(False)


def test_record_becomes_one_json_line_with_extras_and_traceback() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.getLogger("modelops.test").makeRecord(
            "modelops.test",
            logging.ERROR,
            __file__,
            1,
            "Model %s failed",
            ("iris",),
            exc_info=sys.exc_info(),
            extra={"uri": "file:///m", "rows": 3},
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    doc = orjson.loads(line)
    assert doc["level"] == "ERROR"
    assert doc["logger"] == "modelops.test"
    assert doc["message"] == "Model iris failed"
    assert doc["uri"] == "file:///m"
    assert doc["rows"] == 3
    assert "RuntimeError: boom" in doc["exception"]
    assert doc["time"].endswith("+00:00")


def test_uvicorn_and_python_warnings_go_through_the_json_handler(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO")
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 7)
    logging.getLogger("uvicorn.access").info("GET / 200")  # access log off by default
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("old model format", UserWarning, stacklevel=1)
    lines = [orjson.loads(line) for line in capsys.readouterr().err.splitlines()]
    messages = [doc["message"] for doc in lines]
    assert "Started server process [7]" in messages
    assert not any("GET / 200" in m for m in messages)
    assert any("old model format" in m for m in messages)
