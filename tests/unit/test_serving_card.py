"""The server's model card: read from the model directory when it is a usable JSON object,
fetched next to the model from a remote directory when there is one, never fatal when not."""

from __future__ import annotations

import functools
import http.server
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelops.artifacts import CARD_FILE
from modelops.serving import card


def test_a_usable_card_is_served_as_is(tmp_path: Path) -> None:
    assert card.read_card(tmp_path) is None
    text = json.dumps({"version": "v2", "madeBy": "modelops train"}).encode()
    (tmp_path / CARD_FILE).write_bytes(text)
    assert card.read_card(tmp_path) == text


@pytest.mark.parametrize(
    ("content", "why"),
    [(b"[1, 2]", "not a JSON object"), (b"{nope", "Expecting"), (b"\xff\xfe", "")],
)
def test_an_unusable_card_is_not_served_and_the_log_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, why: str
) -> None:
    (tmp_path / CARD_FILE).write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="modelops.serving"):
        assert card.read_card(tmp_path) is None
    assert "is not served" in caplog.text
    assert why in caplog.text


def test_an_oversized_card_is_not_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(card, "MAX_CARD_BYTES", 8)
    (tmp_path / CARD_FILE).write_text('{"version": "v2"}')
    with caplog.at_level(logging.WARNING, logger="modelops.serving"):
        assert card.read_card(tmp_path) is None
    assert "over 8 bytes" in caplog.text


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A plain HTTP server on 127.0.0.1 serving ``tmp_path / "www"``."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_remote_card_is_fetched_next_to_the_model(
    http_root: tuple[Path, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root, url = http_root
    (root / "v2").mkdir()
    (root / "v2" / CARD_FILE).write_text('{"version": "v2"}')
    (root / "v1").mkdir()
    card.fetch_card(f"{url}/v2", tmp_path / "work")
    assert card.read_card(tmp_path / "work" / "model") == b'{"version": "v2"}'
    with caplog.at_level(logging.INFO, logger="modelops.serving"):
        card.fetch_card(f"{url}/v1", tmp_path / "old")
    assert "No model card fetched" in caplog.text
    assert "HTTP 404" in caplog.text
    assert card.read_card(tmp_path / "old" / "model") is None
