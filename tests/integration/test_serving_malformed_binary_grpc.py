"""Malformed binary-extension REST bodies and malformed gRPC requests against a real server
process: each gets a 4xx (REST) or the matching gRPC status (never a 5xx, never INTERNAL), and
the server is still ready and still predicting afterwards."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import numpy as np
import orjson
import pytest

from modelops.serving.proto import open_inference_grpc_pb2 as pb
from modelops.serving.proto import open_inference_grpc_pb2_grpc as pb_grpc
from serving_support import ModelCase, ServerProcess, make_model_dir, start_server, stop_server

pytestmark = pytest.mark.integration

MAX_REQUEST_BYTES = 64 * 1024
MAX_ROWS = 500
NAME = "categorical"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> ModelCase:
    return make_model_dir(tmp_path_factory.mktemp("models"), "categorical")


@pytest.fixture(scope="module")
def server(model: ModelCase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(
        model.uri,
        tmp_path_factory.mktemp("logs") / "server.log",
        name=NAME,
        extra_args=["--max-request-bytes", str(MAX_REQUEST_BYTES), "--max-rows", str(MAX_ROWS)],
    )
    try:
        yield process
    finally:
        stop_server(process)


def strings(*values: str) -> bytes:
    return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)


def body(inputs: list[dict[str, Any]], raw: bytes, **extra: Any) -> tuple[bytes, int]:
    header = orjson.dumps({"inputs": inputs, **extra})
    return header + raw, len(header)


def t(name: str, shape: list[int], datatype: str, size: int | None = None, **extra: Any) -> Any:
    doc: dict[str, Any] = {"name": name, "shape": shape, "datatype": datatype, **extra}
    if size is not None:
        doc["parameters"] = {"binary_data_size": size}
    return doc


SIZES = np.array([0.5, 1.5]).tobytes()
COLOURS = strings("red", "blue")
WEIGHTS = np.array([2.0, 3.0]).tobytes()


def good_inputs(**override: Any) -> list[dict[str, Any]]:
    inputs = {
        "size": t("size", [2], "FP64", 16),
        "colour": t("colour", [2], "BYTES", len(COLOURS)),
        "weight": t("weight", [2], "FP64", 16),
    }
    inputs.update(override)
    return list(inputs.values())


GOOD_RAW = SIZES + COLOURS + WEIGHTS
HeaderCase = tuple[str, bytes, str, int]


def _cases() -> list[HeaderCase]:
    good, length = body(good_inputs(), GOOD_RAW)
    cases: list[HeaderCase] = [
        ("short body", good[:-5], str(length), 400),
        ("body one byte long", good + b"\0", str(length), 400),
        ("header length past the body", good, str(len(good) + 10), 400),
        ("header length zero", good, "0", 400),
        ("header length cuts the JSON", good, str(length - 3), 400),
        ("header length not a number", good, "twelve", 400),
        ("header length negative", good, "-5", 400),
        ("no header, binary sizes", good, "", 400),
    ]
    wrong_sizes: list[tuple[str, dict[str, Any]]] = [
        ("binary_data_size too big", {"size": t("size", [2], "FP64", 24)}),
        ("binary_data_size too small", {"size": t("size", [2], "FP64", 8)}),
        ("binary_data_size negative", {"size": t("size", [2], "FP64", -16)}),
        (
            "binary_data_size a string",
            {"size": {**t("size", [2], "FP64"), "parameters": {"binary_data_size": "16"}}},
        ),
        ("shape needs more bytes", {"size": t("size", [3], "FP64", 16)}),
        ("shape with zero rows", {"size": t("size", [0], "FP64", 16)}),
        ("matrix shape for a column", {"size": t("size", [2, 2], "FP64", 16)}),
        ("FP32 size for FP64 shape", {"size": t("size", [4], "FP32", 16)}),
        ("unknown datatype", {"size": t("size", [2], "FP16", 16)}),
        ("UINT8 datatype", {"size": t("size", [16], "UINT8", 16)}),
        ("data and binary_data_size", {"size": t("size", [2], "FP64", 16, data=[1.0, 2.0])}),
        ("BYTES count off", {"colour": t("colour", [3], "BYTES", len(COLOURS))}),
    ]
    for case, override in wrong_sizes:
        raw_body, header = body(good_inputs(**override), GOOD_RAW)
        cases.append((case, raw_body, str(header), 400))
    special: list[tuple[str, list[dict[str, Any]], bytes]] = [
        (
            "BYTES length prefix cut",
            good_inputs(colour=t("colour", [2], "BYTES", 6)),
            SIZES + strings("red")[:6] + WEIGHTS,
        ),
        (
            "BYTES not UTF-8",
            good_inputs(colour=t("colour", [2], "BYTES", 10)),
            SIZES + struct.pack("<I", 2) + b"\xff\xfe" + strings("") + WEIGHTS,
        ),
        (
            "BYTES for a numeric feature",
            good_inputs(size=t("size", [2], "BYTES", 8)),
            strings("a", "b") + COLOURS + WEIGHTS,
        ),
        (
            "infinity in binary FP32",
            good_inputs(size=t("size", [2], "FP32", 8)),
            np.array([np.inf, 1.0], "<f4").tobytes() + COLOURS + WEIGHTS,
        ),
        (
            "BOOL byte 7",
            good_inputs(size=t("size", [2], "BOOL", 2)),
            b"\x07\x01" + COLOURS + WEIGHTS,
        ),
        (
            "rows over the limit",
            good_inputs(size=t("size", [MAX_ROWS + 1], "FP64", 8 * (MAX_ROWS + 1))),
            b"\0" * 8 * (MAX_ROWS + 1) + COLOURS + WEIGHTS,
        ),
    ]
    for case, inputs, raw in special:
        raw_body, header = body(inputs, raw)
        cases.append((case, raw_body, str(header), 400))
    bad_output, header = body(
        good_inputs(), GOOD_RAW, outputs=[{"name": "predict", "parameters": {"binary_data": "yes"}}]
    )
    cases.append(("binary_data not a boolean", bad_output, str(header), 400))
    oversized, header = body(
        good_inputs(size=t("size", [2], "FP64", MAX_REQUEST_BYTES)), b"\0" * MAX_REQUEST_BYTES
    )
    cases.append(("over the body limit with its binary part", oversized, str(header), 413))
    return cases


REST_CASES = _cases()


def assert_still_serving(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/v2/health/ready", timeout=10).status_code == 200
    good, length = body(good_inputs(), GOOD_RAW)
    response = httpx.post(
        f"{server.url}/v2/models/{NAME}/infer",
        content=good,
        headers={"Inference-Header-Content-Length": str(length)},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
        assert stub.ModelInfer(good_grpc(), timeout=10).outputs[0].name == "predict"


@pytest.mark.parametrize(
    ("case", "content", "header", "status"), REST_CASES, ids=[c[0] for c in REST_CASES]
)
def test_malformed_binary_rest_requests_are_4xx(
    server: ServerProcess, case: str, content: bytes, header: str, status: int
) -> None:
    headers = {"Inference-Header-Content-Length": header} if header else {}
    response = httpx.post(
        f"{server.url}/v2/models/{NAME}/infer", content=content, headers=headers, timeout=30
    )
    assert response.status_code == status, (case, response.text)
    assert response.json()["error"]


def good_grpc() -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=NAME)
    request.inputs.add(name="size", datatype="FP64", shape=[2])
    request.inputs.add(name="colour", datatype="BYTES", shape=[2])
    request.inputs.add(name="weight", datatype="FP64", shape=[2])
    request.raw_input_contents.extend([SIZES, COLOURS, WEIGHTS])
    return request


def _grpc(change: Any) -> pb.ModelInferRequest:
    request = good_grpc()
    change(request)
    return request


def _typed(request: pb.ModelInferRequest) -> None:
    del request.raw_input_contents[:]
    request.inputs[0].contents.fp64_contents.extend([0.5])  # one value for two rows
    request.inputs[1].contents.bytes_contents.extend([b"red", b"blue"])
    request.inputs[2].contents.fp64_contents.extend([2.0, 3.0])


def _both(request: pb.ModelInferRequest) -> None:
    request.inputs[0].contents.fp64_contents.extend([0.5, 1.5])


def _set(index: int, **fields: Any) -> Any:
    def change(request: pb.ModelInferRequest) -> None:
        for key, value in fields.items():
            if key == "shape":
                del request.inputs[index].shape[:]
                request.inputs[index].shape.extend(value)
            else:
                setattr(request.inputs[index], key, value)

    return change


def _raw(index: int, raw: bytes) -> Any:
    def change(request: pb.ModelInferRequest) -> None:
        request.raw_input_contents[index] = raw

    return change


INVALID = grpc.StatusCode.INVALID_ARGUMENT
GRPC_CASES: list[tuple[str, pb.ModelInferRequest, grpc.StatusCode]] = [
    (
        "unknown model",
        _grpc(lambda r: setattr(r, "model_name", "other")),
        grpc.StatusCode.NOT_FOUND,
    ),
    (
        "unknown version",
        _grpc(lambda r: setattr(r, "model_version", "v9")),
        grpc.StatusCode.NOT_FOUND,
    ),
    ("no inputs", pb.ModelInferRequest(model_name=NAME), INVALID),
    ("raw entries fewer than inputs", _grpc(lambda r: r.raw_input_contents.pop()), INVALID),
    ("raw entries more than inputs", _grpc(lambda r: r.raw_input_contents.append(b"x")), INVALID),
    ("raw too short", _grpc(_raw(0, SIZES[:-1])), INVALID),
    ("raw too long", _grpc(_raw(2, WEIGHTS + b"\0")), INVALID),
    ("BYTES prefix cut", _grpc(_raw(1, COLOURS[:2])), INVALID),
    ("BYTES element past the end", _grpc(_raw(1, struct.pack("<I", 99) + b"red")), INVALID),
    ("shape and size mismatch", _grpc(_set(0, shape=[3])), INVALID),
    ("unknown datatype", _grpc(_set(0, datatype="FP16")), INVALID),
    ("empty datatype", _grpc(_set(0, datatype="")), INVALID),
    ("no shape", _grpc(_set(0, shape=[])), INVALID),
    ("negative dimension", _grpc(_set(0, shape=[-2])), INVALID),
    ("unnamed input", _grpc(_set(0, name="")), INVALID),
    ("unknown input name", _grpc(_set(0, name="height")), INVALID),
    ("typed values short", _grpc(_typed), INVALID),
    ("typed and raw", _grpc(_both), INVALID),
    ("unknown output", _grpc(lambda r: r.outputs.add(name="nope")), INVALID),
    (
        "category as a number",
        _grpc(lambda r: (_set(1, datatype="FP64")(r), _raw(1, SIZES)(r))),
        INVALID,
    ),
    (
        "rows over the limit",
        _grpc(lambda r: (_set(0, shape=[MAX_ROWS + 1])(r), _raw(0, b"\0" * 8 * (MAX_ROWS + 1))(r))),
        INVALID,
    ),
    (
        "over the message limit",
        _grpc(_raw(0, b"\0" * (MAX_REQUEST_BYTES + 1))),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ),
]


@pytest.mark.parametrize(("case", "request_", "code"), GRPC_CASES, ids=[c[0] for c in GRPC_CASES])
def test_malformed_grpc_requests_get_the_matching_status(
    server: ServerProcess, case: str, request_: pb.ModelInferRequest, code: grpc.StatusCode
) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.ModelInfer(request_, timeout=30)
    assert raised.value.code() == code, (case, raised.value.details())
    assert raised.value.details()


NAN_SIZES = np.array([np.nan, 1.0]).tobytes()


def test_a_missing_value_reaches_scikit_learn_which_refuses_it(
    server: ServerProcess, model: ModelCase
) -> None:
    """NaN is a missing value, not malformed: this pipeline has no imputer, so scikit-learn's
    own input check refuses it (400 / INVALID_ARGUMENT), never a silent NaN prediction."""
    content, length = body(good_inputs(), NAN_SIZES + COLOURS + WEIGHTS)
    response = httpx.post(
        f"{server.url}/v2/models/{NAME}/infer",
        content=content,
        headers={"Inference-Header-Content-Length": str(length)},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert "the model refused the input: Input X contains NaN" in response.json()["error"]
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.ModelInfer(_grpc(_raw(0, NAN_SIZES)), timeout=30)
    assert raised.value.code() == INVALID
    assert "Input X contains NaN" in (raised.value.details() or "")


def test_metadata_rpcs_for_unknown_models_are_not_found(server: ServerProcess) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        for call, message in [
            (stub.ModelReady, pb.ModelReadyRequest(name="other")),
            (stub.ModelMetadata, pb.ModelMetadataRequest(name=NAME, version="v9")),
        ]:
            with pytest.raises(grpc.RpcError) as raised:
                call(message, timeout=10)
            assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_server_still_ready_and_no_5xx_counted(server: ServerProcess) -> None:
    """Runs after the malformed requests above (same module-scoped server)."""
    assert_still_serving(server)
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    codes = [
        line
        for line in text.splitlines()
        if line.startswith("modelops_inference_requests_total{") and 'code="5' in line
    ]
    assert codes == []
    assert server.process.poll() is None
    assert "Traceback" not in server.log()
