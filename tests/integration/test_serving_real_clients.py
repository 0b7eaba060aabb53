"""The model server as real V2 clients use it: Triton's `tritonclient` over HTTP on its defaults
(binary tensors in and out), over HTTP with JSON, and over gRPC (raw contents), each getting the
predictions scikit-learn gives for a classifier, a regressor and a model with a string (BYTES)
categorical feature, and KServe's REST (binary) and gRPC clients, run in a venv of their own
(kserve 0.21 pins protobuf<7 and pandas<3; ``make kserve-client``).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serving_support import ModelCase, ServerProcess, make_model_dir, start_server, stop_server

pytestmark = pytest.mark.integration

http = pytest.importorskip("tritonclient.http")
grpcclient = pytest.importorskip("tritonclient.grpc")
InferenceServerException = pytest.importorskip("tritonclient.utils").InferenceServerException

KINDS = ("classifier", "regressor", "categorical")
ROWS = 17


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModelCase]:
    root = tmp_path_factory.mktemp("models")
    return {kind: make_model_dir(root, kind) for kind in KINDS}


@pytest.fixture(scope="module")
def servers(
    models: dict[str, ModelCase], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServerProcess]]:
    logs = tmp_path_factory.mktemp("logs")
    started: dict[str, ServerProcess] = {}
    try:
        for kind, case in models.items():
            started[kind] = start_server(case.uri, logs / f"{kind}.log", name=kind)
        yield started
    finally:
        for server in started.values():
            stop_server(server)


def columns(case: ModelCase) -> list[tuple[str, str, np.ndarray]]:
    """One (name, datatype, values) per feature: BYTES for categorical ones, else FP64."""
    X = case.X[:ROWS]
    out = []
    for j, name in enumerate(case.features):
        if name in case.categorical:
            out.append((name, "BYTES", np.array([str(v) for v in X[:, j]], dtype=object)))
        else:
            out.append((name, "FP64", X[:, j].astype(np.float64)))
    return out


def expected(case: ModelCase) -> dict[str, np.ndarray]:
    X = case.X[:ROWS]
    result = {"predict": np.asarray(case.estimator.predict(X))}
    if hasattr(case.estimator, "predict_proba"):
        result["predict_proba"] = case.estimator.predict_proba(X)
    return result


def assert_predictions(case: ModelCase, got: dict[str, Any]) -> None:
    want = expected(case)
    labels = np.asarray(got["predict"])
    if labels.dtype == object:  # BYTES come back as bytes
        labels = np.array([v.decode() if isinstance(v, bytes) else v for v in labels])
    if want["predict"].dtype.kind == "f":
        np.testing.assert_allclose(labels, want["predict"], rtol=1e-9)
    else:
        np.testing.assert_array_equal(labels.astype(want["predict"].dtype), want["predict"])
    if "predict_proba" in want:
        np.testing.assert_allclose(got["predict_proba"], want["predict_proba"], rtol=1e-9)


def http_inputs(case: ModelCase, *, binary: bool, matrix: bool) -> list[Any]:
    if matrix:  # one [rows, features] tensor (numeric models only)
        X = case.X[:ROWS].astype(np.float64)
        tensor = http.InferInput("input-0", list(X.shape), "FP64")
        tensor.set_data_from_numpy(X, binary_data=binary)
        return [tensor]
    inputs = []
    for name, datatype, values in columns(case):
        tensor = http.InferInput(name, [len(values)], datatype)
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    return inputs


def output_names(case: ModelCase) -> list[str]:
    return list(expected(case))


#: (kind, one [rows, features] matrix tensor?): a matrix of FP64 has no strings, so the model
#: with a categorical feature is called one tensor per feature only.
TRITON_HTTP_CASES = [(kind, False) for kind in KINDS] + [
    ("classifier", True),
    ("regressor", True),
]


@pytest.mark.parametrize(
    ("kind", "matrix"),
    TRITON_HTTP_CASES,
    ids=[f"{kind}-{'matrix' if matrix else 'columns'}" for kind, matrix in TRITON_HTTP_CASES],
)
def test_triton_http_on_its_defaults(
    servers: dict[str, ServerProcess], models: dict[str, ModelCase], kind: str, matrix: bool
) -> None:
    """set_data_from_numpy and InferRequestedOutput default to binary data."""
    case = models[kind]
    client = http.InferenceServerClient(f"127.0.0.1:{servers[kind].port}")
    assert client.is_server_ready()
    assert client.is_model_ready(kind)
    outputs = [http.InferRequestedOutput(name) for name in output_names(case)]
    result = client.infer(kind, http_inputs(case, binary=True, matrix=matrix), outputs=outputs)
    assert_predictions(case, {name: result.as_numpy(name) for name in output_names(case)})
    # No outputs named: the client asks for binary_data_output, the server gives `predict`.
    result = client.infer(kind, http_inputs(case, binary=True, matrix=matrix))
    assert result.get_output("predict")["parameters"]["binary_data_size"] > 0
    labels = result.as_numpy("predict")
    assert labels.shape == (ROWS,)


@pytest.mark.parametrize("kind", KINDS)
def test_triton_http_with_json(
    servers: dict[str, ServerProcess], models: dict[str, ModelCase], kind: str
) -> None:
    case = models[kind]
    client = http.InferenceServerClient(f"127.0.0.1:{servers[kind].port}")
    outputs = [http.InferRequestedOutput(n, binary_data=False) for n in output_names(case)]
    result = client.infer(kind, http_inputs(case, binary=False, matrix=False), outputs=outputs)
    assert result.get_output("predict").get("data") is not None
    assert_predictions(case, {name: result.as_numpy(name) for name in output_names(case)})


def grpc_inputs(case: ModelCase) -> list[Any]:
    inputs = []
    for name, datatype, values in columns(case):
        tensor = grpcclient.InferInput(name, [len(values)], datatype)
        if datatype == "BYTES":
            values = np.array([v.encode() for v in values], dtype=object)
        tensor.set_data_from_numpy(values)
        inputs.append(tensor)
    return inputs


@pytest.mark.parametrize("kind", KINDS)
def test_triton_grpc(
    servers: dict[str, ServerProcess], models: dict[str, ModelCase], kind: str
) -> None:
    case = models[kind]
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{servers[kind].grpc_port}")
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready(kind)
        with pytest.raises(InferenceServerException, match="NOT_FOUND"):  # as REST's 404
            client.is_model_ready(kind, "no-such-version")
        metadata = client.get_model_metadata(kind)
        assert [i.name for i in metadata.inputs] == case.features
        assert "binary_tensor_data" in client.get_server_metadata().extensions
        outputs = [grpcclient.InferRequestedOutput(name) for name in output_names(case)]
        result = client.infer(kind, grpc_inputs(case), outputs=outputs, request_id="r-1")
        assert result.get_response().id == "r-1"
        assert_predictions(case, {name: result.as_numpy(name) for name in output_names(case)})
    finally:
        client.close()


def test_grpc_typed_contents_and_metrics(
    servers: dict[str, ServerProcess], models: dict[str, ModelCase]
) -> None:
    """A client sending typed `contents` (not raw) gets typed contents back; both protocols
    are counted under their own label, and the rows into the same feature bins."""
    import grpc
    import httpx

    from modelops.serving.proto import open_inference_grpc_pb2 as pb
    from modelops.serving.proto import open_inference_grpc_pb2_grpc as pb_grpc

    case = models["categorical"]
    server = servers["categorical"]
    request = pb.ModelInferRequest(model_name="categorical")
    for name, datatype, values in columns(case):
        tensor = request.inputs.add(name=name, datatype=datatype, shape=[len(values)])
        if datatype == "BYTES":
            tensor.contents.bytes_contents.extend([v.encode() for v in values])
        else:
            tensor.contents.fp64_contents.extend(values.tolist())
    request.outputs.add(name="predict_proba")
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        response = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    assert not response.raw_output_contents
    proba = np.array(response.outputs[0].contents.fp64_contents).reshape(ROWS, 2)
    np.testing.assert_allclose(proba, expected(case)["predict_proba"], rtol=1e-9)
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert 'protocol="grpc"' in text
    assert 'protocol="rest"' in text
    assert "modelops_inference_request_duration_seconds_count" in text


#: KServe's clients live in a venv of their own (``make kserve-client``): kserve 0.21 pins
#: protobuf<7 and pandas<3, older than this environment's.
KSERVE_PYTHON = Path(
    os.environ.get("MODELOPS_KSERVE_PYTHON")
    or Path(__file__).resolve().parents[2] / ".venv-kserve" / "bin" / "python"
)
KSERVE_SCRIPT = Path(__file__).resolve().parents[1] / "clients" / "kserve_infer.py"


def kserve_infer(spec: dict[str, Any]) -> dict[str, Any]:
    if not KSERVE_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail(f"KServe's client is required in CI: {KSERVE_PYTHON} is missing")
        pytest.skip("KServe's client is not installed: run `make kserve-client`")
    done = subprocess.run(
        [str(KSERVE_PYTHON), str(KSERVE_SCRIPT)],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found: dict[str, Any] = json.loads(done.stdout)
    return found


@pytest.mark.parametrize("kind", KINDS)
def test_kserve_clients(
    servers: dict[str, ServerProcess], models: dict[str, ModelCase], kind: str
) -> None:
    """KServe's InferenceRESTClient (V2, binary tensors in and out) and InferenceGRPCClient."""
    case, server = models[kind], servers[kind]
    inputs = [
        {"name": name, "datatype": datatype, "data": values.tolist()}
        for name, datatype, values in columns(case)
    ]
    got = kserve_infer(
        {
            "rest_url": server.url,
            "grpc_target": f"127.0.0.1:{server.grpc_port}",
            "model": kind,
            "inputs": inputs,
            "outputs": output_names(case),
        }
    )
    for protocol in ("rest", "grpc"):
        assert set(got[protocol]) == set(output_names(case)), protocol
        assert_predictions(case, {k: np.asarray(v) for k, v in got[protocol].items()})


def test_grpc_port_in_use_exits_3_and_zero_turns_grpc_off(
    models: dict[str, ModelCase], tmp_path: Path
) -> None:
    import socket
    import subprocess
    import sys

    from serving_support import free_port

    case = models["classifier"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "modelops", "serve", "--model-uri", case.uri, "--host",
             "127.0.0.1", "--port", str(free_port()), "--grpc-port", str(port)],
            capture_output=True,
            timeout=60,
        )  # fmt: skip
    assert result.returncode == 3, result.stderr[-2000:]
    assert b"gRPC server could not start" in result.stderr
    server = start_server(case.uri, tmp_path / "off.log", extra_args=["--grpc-port", "0"])
    try:
        assert server.grpc_port == 0
        assert "gRPC" not in server.log()
    finally:
        assert stop_server(server) == 0
