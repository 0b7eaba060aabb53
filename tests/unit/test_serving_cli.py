"""`modelops serve` flags and their MODELOPS_* environment variables."""

from __future__ import annotations

import argparse
import os

import pytest

from modelops.serving.cli import add_arguments


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("MODELOPS_"):
            monkeypatch.delenv(key)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults() -> None:
    args = parse(["--model-uri", "file:///m"])
    assert (args.name, args.port, args.host) == ("model", 8080, "0.0.0.0")
    assert args.grpc_port == 8081
    assert args.max_request_bytes == 8 * 1024 * 1024
    assert not args.allow_unsafe_pickle
    assert not args.sklearn_predict
    assert args.model_version is None


def test_every_flag_has_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "MODELOPS_MODEL_URI": "pvc://models/iris/v2",
        "MODELOPS_MODEL_NAME": "iris",
        "MODELOPS_MODEL_VERSION": "v2",
        "MODELOPS_PORT": "9000",
        "MODELOPS_GRPC_PORT": "0",
        "MODELOPS_HOST": "127.0.0.1",
        "MODELOPS_MAX_REQUEST_BYTES": "1024",
        "MODELOPS_MAX_ROWS": "10",
        "MODELOPS_ALLOW_UNSAFE_PICKLE": "true",
        "MODELOPS_SKLEARN_PREDICT": "true",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = parse([])
    assert args.model_uri == "pvc://models/iris/v2"
    assert (args.name, args.model_version, args.port, args.host) == (
        "iris",
        "v2",
        9000,
        "127.0.0.1",
    )
    assert (args.max_request_bytes, args.max_rows) == (1024, 10)
    assert args.grpc_port == 0  # gRPC off
    assert args.allow_unsafe_pickle
    assert args.sklearn_predict
    assert parse(["--port", "8081"]).port == 8081  # a flag wins over its variable


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--model-uri", "file:///m", "--port", "70000"],
        ["--model-uri", "file:///m", "--port", "http"],
        ["--model-uri", "file:///m", "--max-rows", "0"],
        ["--model-uri", "file:///m", "--grpc-port", "-1"],
        ["--model-uri", "file:///m", "--grpc-port", "65536"],
        ["--model-uri", "file:///m", "--name", "a/b"],
        ["--model-uri", "file:///m", "--model-version", "../v1"],
    ],
)
def test_bad_flags_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(argv)
    assert exited.value.code == 2
