"""Settings of a serving process and their defaults (import-light: the CLI parser uses them)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PORT = 8080
DEFAULT_GRPC_PORT = 8081
DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_ROWS = 100_000
GRACEFUL_SHUTDOWN_SECONDS = 25  # below Kubernetes' default 30 s termination grace period


@dataclass(frozen=True)
class ServeSettings:
    """Everything ``modelops serve`` takes (flags or ``MODELOPS_*`` variables)."""

    model_uri: str
    name: str = "model"
    port: int = DEFAULT_PORT
    grpc_port: int = DEFAULT_GRPC_PORT
    """Port of the gRPC ``inference.GRPCInferenceService``; 0 serves no gRPC."""
    host: str = "0.0.0.0"  # noqa: S104  # a pod serves its Service
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_rows: int = DEFAULT_MAX_ROWS
    allow_unsafe_pickle: bool = False
    model_version: str | None = None
    log_level: str = "INFO"
    access_log: bool = False
    count_feature_bins: bool = True
    """Off only to measure what counting costs (benchmarks/serving_bench.py)."""
    compiled_predictor: bool = True
    """Off: always predict through scikit-learn's own methods (see ``serving.compiled``)."""
    """Off only to measure what counting costs (benchmarks/serving_bench.py)."""
