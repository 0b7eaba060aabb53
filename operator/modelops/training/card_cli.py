"""``modelops card DIR_OR_URI [--status FILE] [--format markdown|json]``: print a model card.

The card is read from a model directory (a path, ``file://``, ``pvc://``, ``http(s)://`` or
``s3://``). ``--status`` takes the JSON of ``kubectl get mdep NAME -o json`` or of the
DriftPolicy (or a ``List`` of both, ``-`` for stdin) and appends the decisions recorded there
about this version. Exit codes: 0 printed, 2 bad input (one line on stderr says why).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

#: The card's file name (``modelops.artifacts.CARD_FILE``; not imported so ``--help`` stays fast).
CARD_FILE = "card.json"
#: A card is a few KiB; anything much larger is not one.
MAX_CARD_BYTES = 4 * 1024 * 1024


class CardError(Exception):
    """Bad input to ``modelops card``: the message is shown as is."""


def register(subparsers: Any) -> None:
    """Add the ``card`` sub-command."""
    card = subparsers.add_parser(
        "card",
        help="print the model card of a model directory, with the decisions taken about it",
        description=(
            "Print card.md (or card.json) of a model directory. With --status (the JSON of "
            "`kubectl get mdep NAME -o json` or of the DriftPolicy), also the decisions recorded "
            "there about this version: promoted, rolled back, blocked and why. "
            "Exit codes: 0 printed, 2 bad input."
        ),
    )
    card.add_argument("model", metavar="DIR_OR_URI", help="the model directory or its URI")
    card.add_argument(
        "--status",
        help="a JSON file of a ModelDeployment or DriftPolicy (kubectl get ... -o json), - for "
        "stdin",
    )
    card.add_argument("--format", choices=("markdown", "json"), default="markdown")
    card.set_defaults(func=run_card)


def run_card(args: argparse.Namespace) -> int:
    """``modelops card``."""
    from modelops.training import card as cards

    try:
        card = read_card(args.model)
        found = None
        if args.status is not None:
            found = cards.decisions(read_status(args.status), str(card.get("version")))
    except CardError as exc:
        print(f"modelops card: error: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        document = dict(card) if found is None else {**card, "decisions": found}
        print(json.dumps(document, indent=2))
    else:
        text = cards.render(card)
        if found is not None:
            text += cards.render_decisions(found, str(card.get("version")))
        sys.stdout.write(text)
    return 0


def read_card(location: str) -> dict[str, Any]:
    """``card.json`` of the model directory at ``location`` (a path or a URI)."""
    from modelops.storage import StorageError, redact_uri
    from modelops.storage.fetch import fetch_dir

    shown = redact_uri(location) if "://" in location else location
    with tempfile.TemporaryDirectory(prefix="modelops-card-") as workdir:
        try:
            if "://" in location:
                directory = fetch_dir(
                    location, Path(workdir), (CARD_FILE,), max_bytes=MAX_CARD_BYTES
                )
            else:
                directory = Path(location)
                if not directory.is_dir():
                    raise CardError(f"{shown} is not a directory")
                if not (directory / CARD_FILE).is_file():
                    raise StorageError(f"{shown!r}: missing {CARD_FILE}")
            text = (directory / CARD_FILE).read_bytes()
        except StorageError as exc:
            raise CardError(
                f"no model card: {exc} (versions made before model cards have none)"
            ) from None
        except OSError as exc:
            raise CardError(f"cannot read the card of {shown}: {exc}") from None
    try:
        card = json.loads(text)
    except ValueError as exc:
        raise CardError(f"the {CARD_FILE} of {shown} is not JSON: {exc}") from None
    if not isinstance(card, dict):
        raise CardError(f"the {CARD_FILE} of {shown} is not a JSON object")
    return card


def read_status(path: str) -> dict[str, Any]:
    """The status document (a file, or ``-`` for stdin)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CardError(f"cannot read the status file {path}: {exc}") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise CardError(f"the status file {path} is not JSON: {exc}") from None
    if not isinstance(document, dict) or ("status" not in document and "items" not in document):
        raise CardError(
            f"the status file {path} is not a ModelDeployment or DriftPolicy "
            "(the output of kubectl get mdep|dpol NAME -o json)"
        )
    return document
