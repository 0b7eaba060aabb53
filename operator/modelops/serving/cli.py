"""`modelops serve`: run the model server (also `python -m modelops.serving`).

Every flag has a ``MODELOPS_*`` environment variable, so a pod spec can set either.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any

from modelops.cliargs import env_option, env_switch, positive_int
from modelops.serving.settings import (
    DEFAULT_GRPC_PORT,
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_ROWS,
    DEFAULT_PORT,
    ServeSettings,
)


def _path_segment(text: str) -> str:
    """A model name or version: one URL path segment of plain characters."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}", text):
        raise argparse.ArgumentTypeError(
            f"{text!r}: use letters, digits, '.', '_' and '-' (starting with a letter or digit)"
        )
    return text


def _port(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port")
    return value


def _port_or_off(text: str) -> int:
    """A TCP port, or 0 for off."""
    if text.strip() == "0":
        return 0
    return _port(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The server's flags (shared by `modelops serve` and `python -m modelops.serving`)."""
    env_option(
        parser,
        "--model-uri",
        "MODELOPS_MODEL_URI",
        "model directory: file:///path, pvc://claim/path, http(s)://... or s3://bucket/prefix",
    )
    env_option(
        parser,
        "--name",
        "MODELOPS_MODEL_NAME",
        "model name in V2 paths (default: model)",
        _path_segment,
        "model",
    )
    env_option(
        parser,
        "--model-version",
        "MODELOPS_MODEL_VERSION",
        "version label (default: metadata.json's version)",
        _path_segment,
        None,
    )
    env_option(parser, "--port", "MODELOPS_PORT", "TCP port (default 8080)", _port, DEFAULT_PORT)
    env_option(
        parser,
        "--grpc-port",
        "MODELOPS_GRPC_PORT",
        f"TCP port of the gRPC inference service (default {DEFAULT_GRPC_PORT}; 0: no gRPC)",
        _port_or_off,
        DEFAULT_GRPC_PORT,
    )
    env_option(
        parser,
        "--host",
        "MODELOPS_HOST",
        "address to bind (default 0.0.0.0)",
        str,
        "0.0.0.0",  # noqa: S104  # a pod serves its Service
    )
    env_option(
        parser,
        "--max-request-bytes",
        "MODELOPS_MAX_REQUEST_BYTES",
        "largest request body, else 413 (default 8 MiB)",
        positive_int,
        DEFAULT_MAX_REQUEST_BYTES,
    )
    env_option(
        parser,
        "--max-rows",
        "MODELOPS_MAX_ROWS",
        f"most rows per request, else 400 (default {DEFAULT_MAX_ROWS})",
        positive_int,
        DEFAULT_MAX_ROWS,
    )
    env_switch(
        parser,
        "--allow-unsafe-pickle",
        "MODELOPS_ALLOW_UNSAFE_PICKLE",
        "also load model.joblib, a pickle that can run arbitrary code",
    )
    env_option(
        parser,
        "--log-level",
        "MODELOPS_LOG_LEVEL",
        "log level (default INFO)",
        str.upper,
        "INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
    env_switch(
        parser,
        "--sklearn-predict",
        "MODELOPS_SKLEARN_PREDICT",
        "predict through scikit-learn's own methods, not the compiled predictor "
        "(slower; to rule the compiled predictor out)",
    )
    env_switch(
        parser,
        "--access-log",
        "MODELOPS_ACCESS_LOG",
        "log every request (costs throughput)",
    )


def register(subparsers: Any) -> None:
    """Add the `serve` sub-command."""
    parser = subparsers.add_parser(
        "serve",
        help="serve a model over the Open Inference Protocol v2",
        description="Serve a scikit-learn model directory over the Open Inference Protocol v2 "
        "(REST, and gRPC on a second port), with Prometheus metrics on /metrics.",
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
        grpc_port=args.grpc_port,
        host=args.host,
        max_request_bytes=args.max_request_bytes,
        max_rows=args.max_rows,
        allow_unsafe_pickle=args.allow_unsafe_pickle,
        model_version=args.model_version,
        log_level=args.log_level,
        access_log=args.access_log,
        compiled_predictor=not args.sklearn_predict,
    )
    return serve(settings)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m modelops.serving`: the `serve` command on its own."""
    parser = argparse.ArgumentParser(prog="python -m modelops.serving")
    add_arguments(parser)
    return run(parser.parse_args(argv))
