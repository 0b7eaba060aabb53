"""serving/protocol.py: the exact message of every refusal (a client reads it to fix its request)
and the exact documents it accepts and writes (mutation-tested)."""

from __future__ import annotations

import struct
import warnings
from typing import Any

import numpy as np
import orjson
import pytest

from modelops.serving.errors import InvalidInputError
from modelops.serving.protocol import (
    FeatureLayout,
    InferRequest,
    InputTensor,
    RequestedOutput,
    binary_output,
    decode_features,
    decode_raw_tensor,
    encode_binary_response,
    encode_response,
    error_body,
    output_tensor,
    parse_infer_request,
    parse_parameters,
    tensor_array,
)

NUMERIC = FeatureLayout(("a", "b"), (False, False))
MIXED = FeatureLayout(("a", "c"), (False, True))


def body(doc: Any) -> bytes:
    return orjson.dumps(doc)


def tensor(name: str = "x", shape: Any = (1, 2), datatype: str = "FP64", data: Any = None) -> Any:
    return {
        "name": name,
        "shape": list(shape),
        "datatype": datatype,
        "data": [1.0, 2.0] if data is None else data,
    }


PARSE_ERRORS = [
    (b"{", "request body is not valid JSON: "),
    (body([1]), "request body must be a JSON object with 'inputs'"),
    (body({"id": 7, "inputs": [tensor()]}), "'id' must be a string"),
    (body({"inputs": []}), "'inputs' must be a non-empty list of tensors"),
    (body({"inputs": {"name": "x"}}), "'inputs' must be a non-empty list of tensors"),
    (body({}), "'inputs' must be a non-empty list of tensors"),
    (
        body({"inputs": [tensor()], "outputs": {"name": "y"}}),
        "'outputs' must be a list of {'name': ...} objects",
    ),
    (body({"inputs": [tensor()], "parameters": [1]}), "request 'parameters' must be an object"),
    (
        body({"inputs": [tensor()], "parameters": {"k": [1]}}),
        "request parameter 'k' must be a string, number or boolean",
    ),
    (body({"inputs": ["x"]}), "inputs[0] must be an object with name, shape, datatype, data"),
    (
        body({"inputs": [tensor(), "x"]}),
        "inputs[1] must be an object with name, shape, datatype, data",
    ),
    (body({"inputs": [tensor(name="")]}), "inputs[0].name must be a non-empty string"),
    (body({"inputs": [{**tensor(), "name": 3}]}), "inputs[0].name must be a non-empty string"),
    (
        body({"inputs": [tensor(shape=())]}),
        "input 'x': 'shape' must be a non-empty list of integers >= 0",
    ),
    (
        body({"inputs": [{**tensor(), "shape": "1,2"}]}),
        "input 'x': 'shape' must be a non-empty list of integers >= 0",
    ),
    (
        body({"inputs": [tensor(shape=(1, -1))]}),
        "input 'x': 'shape' must be a non-empty list of integers >= 0",
    ),
    (
        body({"inputs": [{**tensor(), "shape": [1, 2.0]}]}),
        "input 'x': 'shape' must be a non-empty list of integers >= 0",
    ),
    (
        body({"inputs": [{**tensor(), "shape": [True, 2]}]}),
        "input 'x': 'shape' must be a non-empty list of integers >= 0",
    ),
    (
        body({"inputs": [tensor(datatype="FP16")]}),
        "input 'x': datatype 'FP16' is not supported: use one of "
        "BOOL, INT32, INT64, FP32, FP64, BYTES",
    ),
    (
        body({"inputs": [{k: v for k, v in tensor().items() if k != "data"}]}),
        "input 'x' has no 'data'",
    ),
    (
        body({"inputs": [{**tensor(), "parameters": {"binary_data_size": 16}}]}),
        "input 'x' has both 'data' and a binary_data_size: send one",
    ),
    (
        body({"inputs": [{**tensor(), "parameters": "p"}]}),
        "input 'x' 'parameters' must be an object",
    ),
    (
        body({"inputs": [tensor()], "outputs": [{"name": "y"}, {"name": 1}]}),
        "outputs[1] must be an object with a string 'name'",
    ),
    (
        body({"inputs": [tensor()], "outputs": ["y"]}),
        "outputs[0] must be an object with a string 'name'",
    ),
    (
        body({"inputs": [tensor()], "outputs": [{"name": "y", "parameters": {"k": None}}]}),
        "output 'y' parameter 'k' must be a string, number or boolean",
    ),
]


@pytest.mark.parametrize(("raw", "message"), PARSE_ERRORS)
def test_parse_refusals_say_exactly_why(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_infer_request(raw)
    if message.endswith(": "):
        assert str(caught.value).startswith(message)
        assert len(str(caught.value)) > len(message)
    else:
        assert str(caught.value) == message


def test_a_whole_request_is_parsed_as_sent() -> None:
    request = parse_infer_request(
        body(
            {
                "id": "r-1",
                "inputs": [tensor(name="a", shape=[2], data=[1, 2]), tensor(name="b", shape=[2])],
                "outputs": [{"name": "y", "parameters": {"top": 1}}, {"name": "z"}],
                "parameters": {"trace": True, "tag": "t", "n": 2, "w": 0.5},
            }
        )
    )
    assert request == InferRequest(
        "r-1",
        (
            InputTensor("a", (2,), "FP64", [1, 2]),
            InputTensor("b", (2,), "FP64", [1.0, 2.0]),
        ),
        (RequestedOutput("y", {"top": 1}), RequestedOutput("z", {})),
        {"trace": True, "tag": "t", "n": 2, "w": 0.5},
    )
    single = parse_infer_request(body({"inputs": [{**tensor(shape=[1]), "data": 5}]}))
    assert single == InferRequest(None, (InputTensor("x", (1,), "FP64", [5]),), (), {})
    with_empty_params = parse_infer_request(
        body({"inputs": [{**tensor(), "parameters": {"content_type": "np"}}], "parameters": None})
    )
    assert with_empty_params.parameters == {}
    assert with_empty_params.inputs[0].shape == (1, 2)
    zero_rows = parse_infer_request(body({"inputs": [tensor(shape=[0, 2], data=[])]}))
    assert zero_rows.inputs[0].shape == (0, 2)


def test_parse_parameters_accepts_none_and_scalars() -> None:
    assert parse_parameters(None, "request") == {}
    assert parse_parameters({"a": "x", "b": 1, "c": 1.5, "d": False}, "request") == {
        "a": "x",
        "b": 1,
        "c": 1.5,
        "d": False,
    }


def request_of(*tensors: dict[str, Any]) -> InferRequest:
    """A parsed request; values JSON cannot carry (NaN, infinity) are put in after parsing."""
    request = parse_infer_request(body({"inputs": list(tensors)}))
    for parsed, sent in zip(request.inputs, tensors, strict=True):
        parsed.data = sent["data"]
    return request


DECODE_ERRORS = [
    (
        NUMERIC,
        [tensor(shape=(1, 3), data=[1, 2, 3])],
        "input 'x' has 3 features, the model takes 2: a, b",
    ),
    (NUMERIC, [tensor(shape=(0, 2), data=[])], "input 'x' has no rows"),
    (
        NUMERIC,
        [tensor(shape=(3, 2), data=[1.0] * 6)],
        "input 'x' has 3 rows, over the limit of 2",
    ),
    (
        NUMERIC,
        [tensor(datatype="BYTES", data=["1", "2"])],
        "input 'x': the model's features are numeric, send FP64/FP32/INT64/INT32/BOOL, not BYTES",
    ),
    (
        NUMERIC,
        [tensor(data=[1.0, float("nan")])],
        None,  # accepted: a missing value, for the model to impute or refuse
    ),
    (
        NUMERIC,
        [tensor(datatype="FP32", data=[1e39, 1.0])],
        "feature 'a' has an infinite value (send NaN for a missing one)",
    ),
    (
        MIXED,
        [tensor(data=[1.5, 2.0])],
        "input 'x': the model has categorical features, send BYTES (strings) "
        "or one tensor per feature",
    ),
    (
        NUMERIC,
        [tensor(name="z", shape=[1], data=[1.0])],
        "unknown input 'z': send one [rows, 2] tensor or one tensor per feature named a, b",
    ),
    (
        NUMERIC,
        [tensor(name="a", shape=[1], data=[1.0]), tensor(name="a", shape=[1], data=[1.0])],
        "input 'a' is given twice",
    ),
    (
        NUMERIC,
        [tensor(name="a", shape=[1, 1, 1], data=[1.0])],
        "input 'a': a per-feature tensor has shape [rows] or [rows, 1], got [1, 1, 1]",
    ),
    (
        NUMERIC,
        [tensor(name="a", shape=[1, 2], data=[1.0, 2.0]), tensor(name="b", shape=[1])],
        "input 'a': a per-feature tensor has shape [rows] or [rows, 1], got [1, 2]",
    ),
    (NUMERIC, [tensor(name="a", shape=[1], data=[1.0])], "missing inputs for features: b"),
    (
        FeatureLayout(("a", "b", "c"), (False, False, False)),
        [tensor(name="b", shape=[1], data=[1.0]), tensor(name="x", shape=[1], data=[1.0])],
        "unknown input 'x': send one [rows, 3] tensor or one tensor per feature named a, b, c",
    ),
    (
        FeatureLayout(("a", "b", "c"), (False, False, False)),
        [tensor(name="b", shape=[1], data=[1.0])],
        "missing inputs for features: a, c",
    ),
    (
        NUMERIC,
        [tensor(name="a", shape=[1], data=[1.0]), tensor(name="b", shape=[2], data=[1.0, 2.0])],
        "input 'b' has 2 rows, input 'a' has 1",
    ),
    (
        NUMERIC,
        [tensor(name="a", shape=[1], data=[1.0]), tensor(name="b", shape=[0], data=[])],
        "input 'b' has 0 rows, input 'a' has 1",
    ),
    (
        NUMERIC,
        [tensor(name="a", shape=[3], data=[1.0] * 3), tensor(name="b", shape=[3], data=[1.0] * 3)],
        "input 'a' has 3 rows, over the limit of 2",
    ),
    (
        NUMERIC,
        [
            tensor(name="a", shape=[1], data=[1.0]),
            tensor(name="b", shape=[1], datatype="BYTES", data=["1"]),
        ],
        "input 'b' is a numeric feature, not BYTES",
    ),
    (
        NUMERIC,
        [tensor(name="a", shape=[1], data=[1.0]), tensor(name="b", shape=[1], data=[float("inf")])],
        "feature 'b' has an infinite value (send NaN for a missing one)",
    ),
    (
        MIXED,
        [tensor(name="a", shape=[1], data=[1.0]), tensor(name="c", shape=[1], data=[1.5])],
        "feature 'c' is categorical: send strings (BYTES)",
    ),
    (
        MIXED,
        [
            tensor(name="a", shape=[1], datatype="BYTES", data=["one"]),
            tensor(name="c", shape=[1], datatype="BYTES", data=["red"]),
        ],
        "feature 'a' is numeric: got a string that is no number",
    ),
    (
        MIXED,
        [
            tensor(name="a", shape=[1], datatype="BYTES", data=["-inf"]),
            tensor(name="c", shape=[1], datatype="BYTES", data=["red"]),
        ],
        "feature 'a' has an infinite value (send NaN for a missing one)",
    ),
    (
        MIXED,
        [tensor(shape=(1, 2), datatype="BYTES", data=[["1", "2"]])],
        None,  # accepted: numbers as text for the numeric column
    ),
]


@pytest.mark.parametrize(("layout", "inputs", "message"), DECODE_ERRORS)
def test_decode_refusals_say_exactly_why(
    layout: FeatureLayout, inputs: list[dict[str, Any]], message: str | None
) -> None:
    request = request_of(*inputs)
    if message is None:
        decode_features(request, layout, max_rows=2)
        return
    with pytest.raises(InvalidInputError) as caught:
        decode_features(request, layout, max_rows=2)
    assert str(caught.value) == message


def test_decoded_matrices_are_exact() -> None:
    numeric = decode_features(request_of(tensor(data=[[1, 2]], datatype="INT64")), NUMERIC, 2)
    assert numeric.dtype == np.float64
    assert numeric.tolist() == [[1.0, 2.0]]
    rows_at_limit = decode_features(request_of(tensor(shape=(2, 2), data=[1, 2, 3, 4])), NUMERIC, 2)
    assert rows_at_limit.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    columns = decode_features(
        request_of(
            tensor(name="b", shape=[2, 1], data=[[3.0], [4.0]]),
            tensor(name="a", shape=[2], data=[1, 2], datatype="INT32"),
        ),
        NUMERIC,
        2,
    )
    assert columns.dtype == np.float64
    assert columns.tolist() == [[1.0, 3.0], [2.0, 4.0]]
    mixed = decode_features(
        request_of(
            tensor(name="c", shape=[2], datatype="BYTES", data=["red", "blue"]),
            tensor(name="a", shape=[2], datatype="BYTES", data=["1.5", "2"]),
        ),
        MIXED,
        2,
    )
    assert mixed.dtype == object
    assert mixed.tolist() == [[1.5, "red"], [2.0, "blue"]]
    codes = decode_features(request_of(tensor(datatype="INT64", data=[[7, 3]])), MIXED, 2)
    assert codes.tolist() == [[7.0, "3"]]
    assert type(codes[0, 0]) is float
    from_bool = decode_features(
        request_of(
            tensor(name="a", shape=[1], datatype="BOOL", data=[True]),
            tensor(name="c", shape=[1], datatype="INT32", data=[2]),
        ),
        MIXED,
        2,
    )
    assert from_bool.tolist() == [[1.0, "2"]]


def test_a_large_finite_fp64_request_is_checked_value_by_value() -> None:
    # The sum overflows to infinity: every value is still finite, so it is accepted.
    big = decode_features(request_of(tensor(data=[1.7e308, 1.7e308])), NUMERIC, 2)
    assert big.tolist() == [[1.7e308, 1.7e308]]


TENSOR_ERRORS = [
    (
        InputTensor("x", (2,), "BYTES", ["a"]),
        "input 'x': shape [2] needs 2 values, 'data' holds 1",
    ),
    (InputTensor("x", (1,), "BYTES", [1]), "input 'x': BYTES data must hold strings only"),
    (
        InputTensor("x", (2,), "FP64", [[1.0], 2.0]),
        "input 'x': 'data' must be a flat or evenly nested list of numbers",
    ),
    (
        InputTensor("x", (3,), "FP64", [1.0, 2.0]),
        "input 'x': shape [3] needs 3 values, 'data' holds 2",
    ),
    (InputTensor("x", (1,), "INT64", [1.5]), "input 'x': values do not match datatype INT64"),
    (InputTensor("x", (1,), "BOOL", [1]), "input 'x': values do not match datatype BOOL"),
    (InputTensor("x", (1,), "FP64", ["1"]), "input 'x': values do not match datatype FP64"),
    (
        InputTensor("x", (2, 2), "FP64", [[1.0, 2.0, 3.0, 4.0]]),
        "input 'x': nested data of shape [1, 4] does not match shape [2, 2]",
    ),
    (InputTensor("x", (1,), "INT32", [2**31]), "input 'x': a value is out of range for INT32"),
    (
        InputTensor("x", (1,), "INT32", [-(2**31) - 1]),
        "input 'x': a value is out of range for INT32",
    ),
]


@pytest.mark.parametrize(("given", "message"), TENSOR_ERRORS)
def test_tensor_refusals_say_exactly_why(given: InputTensor, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        tensor_array(given)
    assert str(caught.value) == message


def test_tensor_arrays_are_exact() -> None:
    nested = tensor_array(InputTensor("x", (2, 1), "BYTES", [["a"], ["b"]]))
    assert nested.dtype == object
    assert nested.shape == (2, 1)
    assert nested.tolist() == [["a"], ["b"]]
    deep = tensor_array(InputTensor("x", (1, 2, 2), "BYTES", [[["a", "b"], ["c", "d"]]]))
    assert deep.ravel().tolist() == ["a", "b", "c", "d"]
    bounds = tensor_array(InputTensor("x", (2,), "INT32", [2**31 - 1, -(2**31)]))
    assert bounds.tolist() == [2**31 - 1, -(2**31)]
    fp32 = tensor_array(InputTensor("x", (1, 2), "FP32", [0.1, 2.0]))
    assert fp32.dtype == np.float32
    assert fp32.shape == (1, 2)
    assert tensor_array(InputTensor("x", (0,), "FP64", [])).shape == (0,)


def test_output_tensors() -> None:
    labels = output_tensor("label", np.array(["setosa", "virginica"]))
    assert labels == {
        "name": "label",
        "datatype": "BYTES",
        "shape": [2],
        "data": ["setosa", "virginica"],
    }
    ints = output_tensor("y", np.array([[1], [2]], dtype=np.int32))
    assert ints["datatype"] == "INT64"
    assert ints["shape"] == [2, 1]
    assert ints["data"].dtype == np.int64
    assert ints["data"].tolist() == [1, 2]
    unsigned = output_tensor("y", np.array([3], dtype=np.uint8))
    assert (unsigned["datatype"], unsigned["data"].dtype) == ("INT64", np.int64)
    floats = output_tensor("p", np.array([0.5], dtype=np.float32))
    assert (floats["datatype"], floats["data"].dtype) == ("FP64", np.float64)
    same = np.array([0.25, 0.75])
    assert output_tensor("p", same)["data"] is not None
    flags = output_tensor("f", np.array([True, False]))
    assert (flags["datatype"], flags["data"].tolist()) == ("BOOL", [True, False])


def test_response_and_error_documents() -> None:
    outputs = [output_tensor("y", np.array([1.5, 2.5]))]
    assert orjson.loads(encode_response("m", "v1", None, outputs)) == {
        "model_name": "m",
        "model_version": "v1",
        "outputs": [{"name": "y", "datatype": "FP64", "shape": [2], "data": [1.5, 2.5]}],
    }
    assert orjson.loads(encode_response("m", "v1", "r", outputs, {"a": 1})) == {
        "model_name": "m",
        "model_version": "v1",
        "id": "r",
        "parameters": {"a": 1},
        "outputs": [{"name": "y", "datatype": "FP64", "shape": [2], "data": [1.5, 2.5]}],
    }
    assert "parameters" not in orjson.loads(encode_response("m", "v1", None, outputs, {}))
    assert error_body("bad 'x'") == b'{"error":"bad \'x\'"}'


# The binary tensor extension: a JSON header, then each binary input's bytes in input order.


def header_of(doc: dict[str, Any], size: int) -> dict[str, Any]:
    return {**doc, "parameters": {"binary_data_size": size}}


def strings(*values: bytes) -> bytes:
    """BYTES elements as the extension lays them out: a 4-byte little-endian length, the bytes."""
    return b"".join(struct.pack("<I", len(value)) + value for value in values)


def meta(name: str, shape: list[int], datatype: str) -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype}


TWO_FP64 = b"\x00" * 16  # two float64 zeros


def binary_request(docs: list[dict[str, Any]], raw: bytes) -> tuple[bytes, int]:
    header = body({"inputs": docs})
    return header + raw, len(header)


RAW_REFUSALS = [
    (
        # a second input asks for more bytes than are left after the first one's
        [header_of(meta("a", [2], "FP64"), 16), header_of(meta("b", [2], "FP64"), 16)],
        TWO_FP64 + b"\x00" * 8,
        "input 'b': binary_data_size is 16 bytes, but only 8 bytes of binary data are left in "
        "the body",
    ),
    (
        [header_of(meta("a", [1, 2], "FP64"), 16)],
        TWO_FP64 + b"\x00" * 3,
        "the body has 19 bytes after its JSON header, the inputs' binary_data_size add up to 16",
    ),
    (
        [header_of(meta("a", [1, 2], "FP64"), 8)],
        b"\x00" * 8,
        "input 'a': shape [1, 2] of FP64 needs 16 bytes of binary data, got 8",
    ),
    (
        [header_of(meta("a", [3], "INT32"), 8)],
        b"\x00" * 8,
        "input 'a': shape [3] of INT32 needs 12 bytes of binary data, got 8",
    ),
    (
        [header_of(meta("a", [2], "BOOL"), 2)],
        b"\x01\x02",
        "input 'a': BOOL bytes must be 0 or 1",
    ),
    (
        [header_of(meta("s", [1], "BYTES"), 10)],
        strings(b"a", b"b"),
        "input 's': binary data holds more than the 1 BYTES elements its shape has",
    ),
    (
        [header_of(meta("s", [2], "BYTES"), 7)],
        strings(b"a") + b"\x01\x00",
        "input 's': BYTES element 1 is cut off in its length prefix",
    ),
    (
        # the second element says 9 bytes; 2 follow its prefix
        [header_of(meta("s", [2], "BYTES"), 11)],
        strings(b"a") + struct.pack("<I", 9) + b"xy",
        "input 's': BYTES element 1 says 9 bytes, only 2 are left",
    ),
    (
        [header_of(meta("s", [2], "BYTES"), 11)],
        strings(b"a", b"\xff\xfe"),
        "input 's': BYTES element 1 is not UTF-8 text",
    ),
    (
        [header_of(meta("s", [3], "BYTES"), 10)],
        strings(b"a", b"b"),
        "input 's': shape needs 3 BYTES elements, binary data holds 2",
    ),
]


@pytest.mark.parametrize(("docs", "raw", "message"), RAW_REFUSALS)
def test_binary_refusals_say_exactly_why(
    docs: list[dict[str, Any]], raw: bytes, message: str
) -> None:
    request, header_length = binary_request(docs, raw)
    with pytest.raises(InvalidInputError) as caught:
        parse_infer_request(request, header_length)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"inputs": [tensor()], "parameters": {"binary_data_output": 1}},
            "request parameter 'binary_data_output' must be a boolean",
        ),
        (
            {"inputs": [tensor()], "outputs": [{"name": "p", "parameters": {"binary_data": "y"}}]},
            "output 'p': parameter 'binary_data' must be a boolean",
        ),
        (
            {"inputs": [header_of(meta("a", [1, 2], "FP64"), -16)]},
            "input 'a': binary_data_size must be an integer >= 0, got -16",
        ),
        (
            {"inputs": [header_of(meta("a", [1, 2], "FP64"), 16)]},
            "input 'a' has a binary_data_size, but the request has no "
            "Inference-Header-Content-Length header saying where its JSON ends",
        ),
    ],
)
def test_binary_flags_and_sizes_are_checked_when_parsed(doc: Any, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_infer_request(body(doc))
    assert str(caught.value) == message


def test_a_header_length_past_the_body_is_refused_with_both_lengths() -> None:
    raw = body({"inputs": [tensor()]})
    with pytest.raises(InvalidInputError) as caught:
        parse_infer_request(raw, len(raw) + 1)
    assert str(caught.value) == (
        f"Inference-Header-Content-Length is {len(raw) + 1}, past the end of the "
        f"{len(raw)}-byte body"
    )


def test_binary_data_of_zero_bytes_and_empty_trailing_strings_are_accepted() -> None:
    request, length = binary_request([header_of(meta("a", [0, 2], "FP64"), 0)], b"")
    parsed = parse_infer_request(request, length)
    assert parsed.inputs[0].binary_size == 0
    assert tensor_array(parsed.inputs[0]).shape == (0, 2)
    # An empty string last: its 4-byte length prefix ends exactly at the end of the data.
    assert decode_raw_tensor("s", "BYTES", [2], strings(b"a", b"")).tolist() == ["a", ""]
    assert decode_raw_tensor("s", "BYTES", [1], strings(b"")).tolist() == [""]


def test_binary_numbers_are_used_in_place_not_copied() -> None:
    # A large binary request is read where it lies in the body: no copy of its numbers.
    values = np.array([[0.5, 1.5], [2.5, 3.5]])
    request, length = binary_request([header_of(meta("x", [2, 2], "FP64"), 32)], values.tobytes())
    parsed = parse_infer_request(request, length)
    data = parsed.inputs[0].data
    array = tensor_array(parsed.inputs[0])
    assert array.tolist() == values.tolist()
    assert np.shares_memory(array, data)
    matrix = decode_features(parsed, NUMERIC, 2)
    assert matrix.tolist() == values.tolist()
    assert np.shares_memory(matrix, data)


def test_narrowing_and_large_sums_decode_without_numpy_warnings() -> None:
    # The server logs warnings: a request must not make numpy print one.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fp32 = tensor_array(InputTensor("x", (1,), "FP32", [1e39]))
        assert fp32.tolist() == [float("inf")]
        big = np.array([1.7e308, 1.7e308])
        request, length = binary_request([header_of(meta("x", [1, 2], "FP64"), 16)], big.tobytes())
        matrix = decode_features(parse_infer_request(request, length), NUMERIC, 2)
    assert matrix.tolist() == [[1.7e308, 1.7e308]]


def test_infinity_in_list_data_is_refused_flat_or_nested() -> None:
    # JSON cannot carry infinity, but decode_features promises to refuse it from any source.
    for data in ([1.0, float("inf")], [[1.0, float("-inf")]]):
        request = request_of(tensor(shape=(1, 2), data=data))
        with pytest.raises(InvalidInputError) as caught:
            decode_features(request, NUMERIC, 2)
        assert str(caught.value) == "feature 'b' has an infinite value (send NaN for a missing one)"


def test_per_feature_columns_of_shape_rows_by_one_for_a_categorical_model() -> None:
    mixed = decode_features(
        request_of(
            tensor(name="c", shape=[2, 1], datatype="BYTES", data=[["red"], ["blue"]]),
            tensor(name="a", shape=[2, 1], datatype="INT64", data=[[1], [2]]),
        ),
        MIXED,
        2,
    )
    assert mixed.tolist() == [[1.0, "red"], [2.0, "blue"]]


def test_output_data_keeps_its_datatype_in_json() -> None:
    outputs = [
        output_tensor("f", np.array([True, False])),
        output_tensor("n", np.array([1, 2], dtype=np.int64)),
        output_tensor("p", np.array([0.5])),
    ]
    assert encode_response("m", "1", None, outputs) == (
        b'{"model_name":"m","model_version":"1","outputs":['
        b'{"name":"f","datatype":"BOOL","shape":[2],"data":[true,false]},'
        b'{"name":"n","datatype":"INT64","shape":[2],"data":[1,2]},'
        b'{"name":"p","datatype":"FP64","shape":[1],"data":[0.5]}]}'
    )


def test_a_binary_response_names_its_model_and_outputs() -> None:
    doc, raw = binary_output("predict", np.array([1, 0], dtype=np.int64))
    assert doc == {
        "name": "predict",
        "datatype": "INT64",
        "shape": [2],
        "parameters": {"binary_data_size": 16},
    }
    assert raw == struct.pack("<qq", 1, 0)
    response, length = encode_binary_response("iris", "v7", None, [doc], [raw])
    assert orjson.loads(response[:length]) == {
        "model_name": "iris",
        "model_version": "v7",
        "outputs": [doc],
    }
    assert response[length:] == raw
