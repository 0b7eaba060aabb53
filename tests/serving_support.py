"""Model directories and server processes for the model-server tests (unit and integration).

Models are fitted here on scikit-learn's bundled datasets or generated data, written with the
server's own ``save_model``, a profile from ``modelops.drift.build_profile`` with the output entry
of the model's predictions (as the trainer writes it; ``output=False`` leaves it out, as profiles
written before it existed) and a ``metadata.json`` (``artifacts.ModelMetadata``), exactly the
layout the trainer publishes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from modelops.artifacts import METADATA_FILE, PROFILE_FILE, ModelMetadata
from modelops.drift import build_profile
from modelops.serving.loader import save_model
from modelops.training.trainer import with_output_entry

KINDS = ("classifier", "regressor", "forest", "categorical")


@dataclass
class ModelCase:
    """A model directory and what went into it."""

    path: Path
    estimator: Any
    X: np.ndarray
    features: list[str]
    categorical: list[str]
    version: str

    @property
    def uri(self) -> str:
        return self.path.resolve().as_uri()


def make_model_dir(root: Path, kind: str, *, version: str = "v1", output: bool = True) -> ModelCase:
    """Fit a small model of ``kind`` and publish it as a model directory under ``root``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import accuracy_score, mean_absolute_error, r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    categorical: list[str] = []
    if kind in ("classifier", "forest"):
        data = load_iris()
        X, y = data.data, data.target
        features = [n.replace(" (cm)", "").replace(" ", "_") for n in data.feature_names]
        if kind == "classifier":
            estimator: Any = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
        else:
            estimator = RandomForestClassifier(n_estimators=5, random_state=0)
        task, target = "classification", "species"
    elif kind == "regressor":
        data = load_diabetes()
        X, y = data.data, data.target
        features = list(data.feature_names)
        estimator = Ridge(alpha=0.5)
        task, target = "regression", "progression"
    elif kind == "categorical":
        rng = np.random.default_rng(7)
        rows = 300
        X = np.empty((rows, 3), dtype=object)
        X[:, 0] = rng.normal(size=rows)
        X[:, 1] = rng.choice(["red", "green", "blue"], size=rows)
        X[:, 2] = rng.normal(size=rows)
        y = np.where((X[:, 1] == "red") | (X[:, 0].astype(float) > 0.5), "yes", "no")
        features, categorical = ["size", "colour", "weight"], ["colour"]
        encoder = ColumnTransformer(
            [
                ("num", StandardScaler(), [0, 2]),
                ("cat", OneHotEncoder(handle_unknown="ignore"), [1]),
            ]
        )
        estimator = make_pipeline(encoder, LogisticRegression(max_iter=500))
        task, target = "classification", "label"
    else:
        raise ValueError(f"unknown kind {kind!r}")
    estimator.fit(X, y)
    path = root / f"{kind}-{version}"
    save_model(estimator, path)
    profile = build_profile(X, features, categorical=categorical)
    classes = getattr(estimator, "classes_", None)
    if output:
        labels = None if classes is None else np.asarray(classes).tolist()
        profile = with_output_entry(profile, estimator.predict(X), target, labels)
    (path / PROFILE_FILE).write_text(profile.to_json())
    # Scored on the fitting rows: these models have no holdout; the numbers only need to be
    # scikit-learn's, as the trainer's are.
    predicted = estimator.predict(X)
    if task == "classification":
        metrics = {"accuracy": float(accuracy_score(y, predicted))}
    else:
        metrics = {
            "r2": float(r2_score(y, predicted)),
            "mae": float(mean_absolute_error(y, predicted)),
        }
    metadata = ModelMetadata(
        version=version,
        created=datetime.now(UTC),
        estimator=type(estimator).__name__,
        features=features,
        categorical_features=categorical,
        target=target,
        task=task,
        classes=[c.item() if hasattr(c, "item") else c for c in classes]
        if classes is not None
        else None,
        metrics=metrics,
    )
    (path / METADATA_FILE).write_text(metadata.model_dump_json(indent=2))
    return ModelCase(path, estimator, X, features, categorical, version)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A `modelops serve` process on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    grpc_port: int = 0
    """The gRPC port (0: gRPC off)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Connection": "close"}, timeout=httpx.Timeout(30.0)
        )


def start_server(
    model_uri: str,
    log_path: Path,
    *,
    name: str = "model",
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    wait_ready: bool = True,
    module: Sequence[str] = ("modelops", "serve"),
) -> ServerProcess:
    """Start `python -m modelops serve` on a free port and wait until it is ready; gRPC on
    another free port unless ``extra_args`` say ``--grpc-port``."""
    port = free_port()
    grpc_port = 0 if "--grpc-port" in extra_args else free_port()
    command = [
        sys.executable,
        "-m",
        *module,
        "--model-uri",
        model_uri,
        "--name",
        name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *([] if "--grpc-port" in extra_args else ["--grpc-port", str(grpc_port)]),
        *extra_args,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    server = ServerProcess(process, port, log_path, grpc_port)
    if wait_ready:
        wait_until_ready(server)
    return server


def wait_until_ready(server: ServerProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()}")
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.get(f"{server.url}/v2/health/ready", timeout=1.0)
            if response.status_code == 200:
                return
        time.sleep(0.05)
    stop_server(server)
    raise RuntimeError(f"server not ready after {timeout} s:\n{server.log()}")


def stop_server(server: ServerProcess, timeout: float = 15.0) -> int:
    """SIGTERM, then SIGKILL if it does not stop; returns the exit code."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    return server.process.returncode


@contextlib.contextmanager
def running_server(model_uri: str, log_path: Path, **kwargs: Any) -> Iterator[ServerProcess]:
    server = start_server(model_uri, log_path, **kwargs)
    try:
        yield server
    finally:
        stop_server(server)


def v2_matrix(rows: np.ndarray, name: str = "input-0") -> dict[str, Any]:
    """A V2 request with one FP64 ``[rows, features]`` tensor."""
    data = np.asarray(rows, dtype=np.float64)
    return {
        "inputs": [
            {"name": name, "shape": list(data.shape), "datatype": "FP64", "data": data.tolist()}
        ]
    }


def v2_columns(
    X: np.ndarray,  # noqa: N803
    features: Sequence[str],
    categorical: Sequence[str],
) -> dict[str, Any]:
    """A V2 request with one tensor per feature (BYTES for categorical features)."""
    inputs = []
    for j, name in enumerate(features):
        column = X[:, j]
        if name in categorical:
            inputs.append(
                {
                    "name": name,
                    "shape": [len(column)],
                    "datatype": "BYTES",
                    "data": [str(v) for v in column],
                }
            )
        else:
            inputs.append(
                {
                    "name": name,
                    "shape": [len(column)],
                    "datatype": "FP64",
                    "data": [float(v) for v in column],
                }
            )
    return {"inputs": inputs}


class TouchOnLoad:
    """A payload: rebuilding an instance creates the file named in its state.

    Crafted model files carry it to prove that refusing them runs nothing: the tests check the
    file does not appear (and, as a control, that it does when the payload is run on purpose).
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def __setstate__(self, state: dict[str, Any]) -> None:
        Path(state["path"]).touch()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Path.touch, (Path(self.path),))


def write_skops_payload(file: Path, marker: Path) -> None:
    """A skops archive whose only object is a :class:`TouchOnLoad` (an untrusted type)."""
    import zipfile

    schema = {
        "__class__": "TouchOnLoad",
        "__module__": "serving_support",
        "__loader__": "ObjectNode",
        "content": {
            "__class__": "dict",
            "__module__": "builtins",
            "__loader__": "DictNode",
            "content": {
                "path": {
                    "__class__": "str",
                    "__module__": "builtins",
                    "__loader__": "JsonNode",
                    "content": orjson.dumps(str(marker)).decode(),
                    "is_json": True,
                    "__id__": 2,
                }
            },
            "key_types": {
                "__class__": "list",
                "__module__": "builtins",
                "__loader__": "ListNode",
                "content": [
                    {
                        "__class__": "str",
                        "__module__": "builtins",
                        "__loader__": "TypeNode",
                        "__id__": 3,
                    }
                ],
                "__id__": 4,
            },
            "__id__": 5,
        },
        "__id__": 1,
        "protocol": 2,
        "_skops_version": "0.16.0",
    }
    with zipfile.ZipFile(file, "w") as archive:
        archive.writestr("schema.json", orjson.dumps(schema))


def write_function_reference(file: Path, module: str, function: str) -> None:
    """A skops archive of a FunctionTransformer whose ``func`` is ``module.function``."""
    import zipfile

    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    skops.io.dump(FunctionTransformer(func=np.log1p), file)
    with zipfile.ZipFile(file) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = orjson.loads(members["schema.json"])
    func = schema["content"]["content"]["func"]
    func["__module__"], func["__class__"] = module, function
    members["schema.json"] = orjson.dumps(schema)
    with zipfile.ZipFile(file, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
