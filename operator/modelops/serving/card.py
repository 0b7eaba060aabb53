"""The model card next to the model: ``GET /v2/models/{name}/card`` serves the model directory's
``card.json`` as it is.

A card is optional (versions made before model cards have none): a model without one is served
all the same, and the endpoint answers 404 saying so. A card that is not a JSON object, or is
over :data:`MAX_CARD_BYTES`, is not served (and the log says why).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from modelops.artifacts import CARD_FILE
from modelops.storage import StorageError, redact_uri
from modelops.storage.fetch import fetch_dir

logger = logging.getLogger("modelops.serving")

MAX_CARD_BYTES = 4 * 1024 * 1024


def fetch_card(uri: str, workdir: Path) -> None:
    """Download the card of the remote model directory ``uri`` next to its other files in
    ``workdir`` (where :func:`modelops.storage.fetch.fetch_dir` puts them), if it has one."""
    try:
        fetch_dir(uri, workdir, (CARD_FILE,), max_bytes=MAX_CARD_BYTES)
    except StorageError as exc:
        logger.info("No model card fetched: %s", exc, extra={"uri": redact_uri(uri)})


def read_card(directory: Path) -> bytes | None:
    """The card of a local model directory as JSON bytes, or None when it has no usable one."""
    path = directory / CARD_FILE
    try:
        if not path.is_file():
            return None
        if path.stat().st_size > MAX_CARD_BYTES:
            logger.warning("The model card %s is over %d bytes: not served", path, MAX_CARD_BYTES)
            return None
        text = path.read_bytes()
        if not isinstance(json.loads(text), dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        logger.warning("The model card %s is not served: %s", path, exc)
        return None
    return text
