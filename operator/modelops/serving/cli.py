"""`modelops serve`: run the model server (also `python -m modelops.serving`).

Every flag has a ``MODELOPS_*`` environment variable, so a pod spec can set either.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from typing import Any

from modelops.serving.settings import (
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_ROWS,
    DEFAULT_PORT,
    ServeSettings,
)

TRUE_WORDS = ("1", "true", "yes", "on")


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in TRUE_WORDS


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return value


def _path_segment(text: str) -> str:
    """A model name or version: one URL path segment of plain characters."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}", text):
        raise argparse.ArgumentTypeError(
            f"{text!r}: use letters, digits, '.', '_' and '-' (starting with a letter or digit)"
        )
    return text


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The server's flags (shared by `modelops serve` and `python -m modelops.serving`)."""
    uri = _env("MODELOPS_MODEL_URI")
    parser.add_argument(
        "--model-uri",
        default=uri,
        required=uri is None,
        help="model directory: file:///path, pvc://claim/path or http(s)://... "
        "(env MODELOPS_MODEL_URI)",
    )
    parser.add_argument(
        "--name",
        type=_path_segment,
        default=_env("MODELOPS_MODEL_NAME", "model"),
        help="model name in V2 paths (env MODELOPS_MODEL_NAME, default: model)",
    )
    parser.add_argument(
        "--model-version",
        type=_path_segment,
        default=_env("MODELOPS_MODEL_VERSION"),
        help="version label (env MODELOPS_MODEL_VERSION, default: metadata.json's version)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=_env("MODELOPS_PORT", str(DEFAULT_PORT)),
        help="TCP port (env MODELOPS_PORT, default 8080)",
    )
    parser.add_argument(
        "--host",
        default=_env("MODELOPS_HOST", "0.0.0.0"),  # noqa: S104  # a pod serves its Service
        help="address to bind (env MODELOPS_HOST, default 0.0.0.0)",
    )
    parser.add_argument(
        "--max-request-bytes",
        type=_positive_int,
        default=_env("MODELOPS_MAX_REQUEST_BYTES", str(DEFAULT_MAX_REQUEST_BYTES)),
        help="largest request body, else 413 (env MODELOPS_MAX_REQUEST_BYTES, default 8 MiB)",
    )
    parser.add_argument(
        "--max-rows",
        type=_positive_int,
        default=_env("MODELOPS_MAX_ROWS", str(DEFAULT_MAX_ROWS)),
        help=f"most rows per request, else 400 (env MODELOPS_MAX_ROWS, default {DEFAULT_MAX_ROWS})",
    )
    parser.add_argument(
        "--allow-unsafe-pickle",
        action="store_true",
        default=_env_flag("MODELOPS_ALLOW_UNSAFE_PICKLE"),
        help="also load model.joblib, a pickle that can run arbitrary code "
        "(env MODELOPS_ALLOW_UNSAFE_PICKLE=true)",
    )
    parser.add_argument(
        "--log-level",
        default=_env("MODELOPS_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="log level (env MODELOPS_LOG_LEVEL, default INFO)",
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        default=_env_flag("MODELOPS_ACCESS_LOG"),
        help="log every request (costs throughput; env MODELOPS_ACCESS_LOG=true)",
    )


def register(subparsers: Any) -> None:
    """Add the `serve` sub-command."""
    parser = subparsers.add_parser(
        "serve",
        help="serve a model over the Open Inference Protocol v2",
        description="Serve a scikit-learn model directory over the Open Inference Protocol v2 "
        "(REST), with Prometheus metrics on /metrics.",
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the server with parsed arguments; returns the exit code."""
    from modelops.serving.logs import configure_logging
    from modelops.serving.server import serve

    configure_logging(args.log_level, access_log=args.access_log)
    settings = ServeSettings(
        model_uri=args.model_uri,
        name=args.name,
        port=args.port,
        host=args.host,
        max_request_bytes=args.max_request_bytes,
        max_rows=args.max_rows,
        allow_unsafe_pickle=args.allow_unsafe_pickle,
        model_version=args.model_version,
        log_level=args.log_level,
        access_log=args.access_log,
    )
    return serve(settings)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m modelops.serving`: the `serve` command on its own."""
    parser = argparse.ArgumentParser(prog="python -m modelops.serving")
    add_arguments(parser)
    return run(parser.parse_args(argv))
