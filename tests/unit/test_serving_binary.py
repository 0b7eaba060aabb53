"""The binary tensor data extension (protocol.py, app.py): request bodies of a JSON header and
raw tensor bytes, binary outputs, and every way such a body can be wrong (a 400, never a 5xx)."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from modelops.serving.errors import InvalidInputError
from modelops.serving.loader import load_model_dir
from modelops.serving.protocol import (
    FeatureLayout,
    InferRequest,
    RequestedOutput,
    binary_output,
    decode_features,
    decode_raw_tensor,
    encode_binary_response,
    parse_infer_request,
    raw_contents,
    wants_binary,
)
from modelops.serving.server import build_app
from modelops.serving.settings import ServeSettings
from serving_support import ModelCase, make_model_dir

NUMERIC = FeatureLayout(("a", "b", "c"), (False, False, False))
MIXED = FeatureLayout(("size", "colour"), (False, True))


def strings(*values: str) -> bytes:
    out = b""
    for value in values:
        encoded = value.encode()
        out += struct.pack("<I", len(encoded)) + encoded
    return out


def binary_body(inputs: list[tuple[dict[str, Any], bytes]], **extra: Any) -> tuple[bytes, int]:
    """A request body: the JSON header (inputs with binary_data_size) and their bytes."""
    docs = []
    for doc, raw in inputs:
        docs.append({**doc, "parameters": {"binary_data_size": len(raw)}})
    header = orjson.dumps({"inputs": docs, **extra})
    return header + b"".join(raw for _, raw in inputs), len(header)


def tensor(name: str, shape: list[int], datatype: str) -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype}


@pytest.mark.parametrize(
    ("datatype", "dtype"),
    [("FP64", "<f8"), ("FP32", "<f4"), ("INT64", "<i8"), ("INT32", "<i4"), ("BOOL", "u1")],
)
def test_every_numeric_datatype_decodes_from_little_endian_bytes(datatype: str, dtype: str) -> None:
    values = np.array([[1, 0, 1], [0, 1, 1]], dtype=dtype)
    body, length = binary_body([(tensor("x", [2, 3], datatype), values.tobytes())])
    X = decode_features(parse_infer_request(body, length), NUMERIC, 100)
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, values.astype(np.float64))


def test_bytes_elements_have_four_byte_length_prefixes() -> None:
    raw = strings("1.5", "red", "2", "blue")
    body, length = binary_body([(tensor("x", [2, 2], "BYTES"), raw)])
    X = decode_features(parse_infer_request(body, length), MIXED, 100)
    assert X.tolist() == [[1.5, "red"], [2.0, "blue"]]


def test_binary_and_json_inputs_mix_in_one_request() -> None:
    sizes = np.array([1.5, 2.5]).tobytes()
    header = orjson.dumps(
        {
            "inputs": [
                {**tensor("colour", [2], "BYTES"), "data": ["red", "blue"]},
                {**tensor("size", [2], "FP64"), "parameters": {"binary_data_size": len(sizes)}},
            ]
        }
    )
    X = decode_features(parse_infer_request(header + sizes, len(header)), MIXED, 100)
    assert X.tolist() == [[1.5, "red"], [2.5, "blue"]]


def test_a_header_covering_the_whole_body_is_plain_json() -> None:
    body = orjson.dumps({"inputs": [{**tensor("x", [1, 3], "FP64"), "data": [1, 2, 3]}]})
    X = decode_features(parse_infer_request(body, len(body)), NUMERIC, 100)
    np.testing.assert_array_equal(X, [[1, 2, 3]])


def test_multibyte_utf8_and_empty_strings() -> None:
    array = decode_raw_tensor("x", "BYTES", [3], strings("grün", "", "日本"))
    assert array.tolist() == ["grün", "", "日本"]


ROW = np.array([[1.0, 2.0, 3.0]]).tobytes()
X13 = tensor("x", [1, 3], "FP64")
MALFORMED_BINARY: list[tuple[str, bytes, int]] = [
    ("header past the body", b'{"inputs": []}', 100),
    ("header cuts the JSON", b'{"inputs": [1]}' + ROW, 5),
    (
        "binary part but no binary input",
        orjson.dumps({"inputs": [{**X13, "data": [1, 2, 3]}]}) + ROW,
        -1,
    ),
    (
        "binary_data_size past the body",
        orjson.dumps({"inputs": [{**X13, "parameters": {"binary_data_size": 48}}]}) + ROW,
        -1,
    ),
    (
        "binary_data_size short of the body",
        orjson.dumps({"inputs": [{**X13, "parameters": {"binary_data_size": 16}}]}) + ROW,
        -1,
    ),
    (
        "size does not match the shape",
        orjson.dumps(
            {"inputs": [{**tensor("x", [1, 2], "FP64"), "parameters": {"binary_data_size": 24}}]}
        )
        + ROW,
        -1,
    ),
    (
        "binary_data_size negative",
        orjson.dumps({"inputs": [{**X13, "parameters": {"binary_data_size": -24}}]}) + ROW,
        -1,
    ),
    (
        "binary_data_size a string",
        orjson.dumps({"inputs": [{**X13, "parameters": {"binary_data_size": "24"}}]}) + ROW,
        -1,
    ),
    (
        "binary_data_size a float",
        orjson.dumps({"inputs": [{**X13, "parameters": {"binary_data_size": 24.0}}]}) + ROW,
        -1,
    ),
    (
        "data and binary_data_size",
        orjson.dumps(
            {"inputs": [{**X13, "data": [1, 2, 3], "parameters": {"binary_data_size": 24}}]}
        )
        + ROW,
        -1,
    ),
    (
        "unknown datatype",
        orjson.dumps(
            {"inputs": [{**tensor("x", [1, 3], "FP16"), "parameters": {"binary_data_size": 6}}]}
        )
        + b"\0" * 6,
        -1,
    ),
    (
        "BOOL byte not 0 or 1",
        orjson.dumps(
            {"inputs": [{**tensor("x", [1, 3], "BOOL"), "parameters": {"binary_data_size": 3}}]}
        )
        + b"\x01\x02\x00",
        -1,
    ),
    (
        "BYTES length prefix cut",
        orjson.dumps(
            {"inputs": [{**tensor("x", [1, 3], "BYTES"), "parameters": {"binary_data_size": 2}}]}
        )
        + b"\x01\x00",
        -1,
    ),
    (
        "BYTES element past the end",
        orjson.dumps(
            {"inputs": [{**tensor("x", [1, 1], "BYTES"), "parameters": {"binary_data_size": 6}}]}
        )
        + struct.pack("<I", 9)
        + b"ab",
        -1,
    ),
    (
        "BYTES too few elements",
        orjson.dumps(
            {"inputs": [{**tensor("x", [1, 3], "BYTES"), "parameters": {"binary_data_size": 10}}]}
        )
        + strings("a", "b"),
        -1,
    ),
    (
        "BYTES too many elements",
        orjson.dumps(
            {"inputs": [{**tensor("x", [1, 1], "BYTES"), "parameters": {"binary_data_size": 10}}]}
        )
        + strings("a", "b"),
        -1,
    ),
    (
        "BYTES not UTF-8",
        orjson.dumps(
            {"inputs": [{**tensor("x", [1, 1], "BYTES"), "parameters": {"binary_data_size": 6}}]}
        )
        + struct.pack("<I", 2)
        + b"\xff\xfe",
        -1,
    ),
    (
        "binary output flag not boolean",
        orjson.dumps(
            {
                "inputs": [{**X13, "data": [1, 2, 3]}],
                "outputs": [{"name": "p", "parameters": {"binary_data": 1}}],
            }
        ),
        -1,
    ),
    (
        "binary_data_output not boolean",
        orjson.dumps(
            {"inputs": [{**X13, "data": [1, 2, 3]}], "parameters": {"binary_data_output": "yes"}}
        ),
        -1,
    ),
]


def _header_length(body: bytes, length: int) -> int:
    """-1: the JSON document's own length (everything up to its closing brace)."""
    return (
        body.index(b"}]}") + 3
        if length == -1 and b"}]}" in body
        else (length if length >= 0 else len(body))
    )


@pytest.mark.parametrize(
    ("case", "body", "length"), MALFORMED_BINARY, ids=[case for case, _, _ in MALFORMED_BINARY]
)
def test_malformed_binary_requests_raise_invalid_input(case: str, body: bytes, length: int) -> None:
    header_length = _header_length(body, length)
    with pytest.raises(InvalidInputError) as raised:
        decode_features(parse_infer_request(body, header_length), NUMERIC, 100)
    assert str(raised.value)


def test_binary_data_size_without_the_header_is_refused() -> None:
    body = orjson.dumps({"inputs": [{**X13, "parameters": {"binary_data_size": 24}}]})
    with pytest.raises(InvalidInputError, match="Inference-Header-Content-Length"):
        parse_infer_request(body)


@pytest.mark.parametrize(
    ("values", "datatype", "decoded"),
    [
        (np.array([0.25, -1.0]), "FP64", [0.25, -1.0]),
        (np.array([3, 4], dtype=np.int32), "INT64", [3, 4]),
        (np.array([True, False]), "BOOL", [True, False]),
        (np.array(["setosa", "grün"], dtype=object), "BYTES", ["setosa", "grün"]),
    ],
)
def test_binary_outputs_round_trip(values: np.ndarray, datatype: str, decoded: list[Any]) -> None:
    doc, raw = binary_output("predict", values)
    assert doc["datatype"] == datatype
    assert doc["parameters"] == {"binary_data_size": len(raw)}
    assert "data" not in doc
    assert decode_raw_tensor("predict", datatype, doc["shape"], raw).tolist() == decoded
    assert raw_contents(datatype, [*decoded] if datatype == "BYTES" else values) == raw


def test_binary_response_is_header_then_data() -> None:
    doc, raw = binary_output("predict", np.array([1.0, 2.0]))
    body, length = encode_binary_response("m", "v1", "id-1", [doc], [raw])
    header = orjson.loads(body[:length])
    assert header["outputs"][0]["parameters"]["binary_data_size"] == 16
    assert header["id"] == "id-1"
    assert body[length:] == raw


@pytest.mark.parametrize(
    ("outputs", "parameters", "expected"),
    [
        ((), {}, False),
        ((), {"binary_data_output": True}, True),
        ((RequestedOutput("predict", {"binary_data": True}),), {}, True),
        (
            (RequestedOutput("predict", {"binary_data": False}),),
            {"binary_data_output": True},
            False,
        ),
        ((RequestedOutput("predict", {}),), {"binary_data_output": True}, True),
        ((RequestedOutput("other", {"binary_data": True}),), {}, False),
    ],
)
def test_binary_outputs_are_chosen_per_output_then_per_request(
    outputs: tuple[RequestedOutput, ...], parameters: dict[str, Any], expected: bool
) -> None:
    request = InferRequest(None, (), outputs, parameters)
    assert wants_binary(request, "predict") is expected


# -- the app, in-process --------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> ModelCase:
    return make_model_dir(tmp_path_factory.mktemp("models"), "classifier")


@pytest.fixture
async def client(classifier: ModelCase) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(
        load_model_dir(classifier.path),
        ServeSettings(model_uri="file:///model", name="m", max_request_bytes=4096),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_binary_in_and_out_matches_scikit_learn(
    client: httpx.AsyncClient, classifier: ModelCase
) -> None:
    X = classifier.X[:5]
    body, length = binary_body(
        [(tensor("x", list(X.shape), "FP64"), X.astype("<f8").tobytes())],
        outputs=[
            {"name": "predict", "parameters": {"binary_data": True}},
            {"name": "predict_proba"},
        ],
    )
    response = await client.post(
        "/v2/models/m/infer",
        content=body,
        headers={"Inference-Header-Content-Length": str(length)},
    )
    assert response.status_code == 200, response.text
    header_length = int(response.headers["inference-header-content-length"])
    assert response.headers["content-type"] == "application/octet-stream"
    header = orjson.loads(response.content[:header_length])
    predict, proba = header["outputs"]
    assert predict["parameters"]["binary_data_size"] == 5 * 8
    labels = np.frombuffer(response.content[header_length:], "<i8")
    np.testing.assert_array_equal(labels, classifier.estimator.predict(X))
    np.testing.assert_allclose(proba["data"], classifier.estimator.predict_proba(X).ravel())


async def test_binary_data_output_with_default_outputs(client: httpx.AsyncClient) -> None:
    body = orjson.dumps(
        {
            "inputs": [{**tensor("x", [1, 4], "FP64"), "data": [5.1, 3.5, 1.4, 0.2]}],
            "parameters": {"binary_data_output": True},
        }
    )
    response = await client.post("/v2/models/m/infer", content=body)
    assert response.status_code == 200
    length = int(response.headers["inference-header-content-length"])
    assert len(response.content) == length + 8


async def test_server_metadata_names_the_extension(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2")
    assert response.json()["extensions"] == ["binary_tensor_data"]


@pytest.mark.parametrize(
    ("header", "body", "status"),
    [
        ("abc", b"{}", 400),
        ("-1", b"{}", 400),
        ("99999", b'{"inputs": []}', 400),
        ("10", b"x" * 5000, 413),  # the body limit counts the binary part
    ],
    ids=["not a number", "negative", "past the body", "over the limit"],
)
async def test_bad_headers_and_bodies_are_4xx(
    client: httpx.AsyncClient, header: str, body: bytes, status: int
) -> None:
    response = await client.post(
        "/v2/models/m/infer", content=body, headers={"Inference-Header-Content-Length": header}
    )
    assert response.status_code == status
    assert "error" in response.json()
