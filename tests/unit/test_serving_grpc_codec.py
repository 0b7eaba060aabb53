"""gRPC messages to and from the data plane's records (modelops.serving.grpc_codec): pure."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from modelops.serving.errors import InvalidInputError
from modelops.serving.grpc_codec import parameters_from_grpc, request_from_grpc, response_to_grpc
from modelops.serving.proto import open_inference_grpc_pb2 as pb
from modelops.serving.protocol import FeatureLayout, decode_features, decode_raw_tensor

NUMERIC = FeatureLayout(("a", "b"), (False, False))
MIXED = FeatureLayout(("size", "colour"), (False, True))


def typed(
    datatype: str, shape: list[int], field: str, values: list[object]
) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name="m")
    tensor = message.inputs.add(name="x", datatype=datatype, shape=shape)
    getattr(tensor.contents, field).extend(values)
    return message


@pytest.mark.parametrize(
    ("datatype", "field", "values"),
    [
        ("FP64", "fp64_contents", [1.5, 2.0, 3.0, 4.0]),
        ("FP32", "fp32_contents", [1.5, 2.0, 3.0, 4.0]),
        ("INT64", "int64_contents", [1, 2, 3, 4]),
        ("INT32", "int_contents", [1, 2, 3, 4]),
        ("BOOL", "bool_contents", [True, False, False, True]),
    ],
)
def test_typed_contents_of_every_numeric_datatype(
    datatype: str, field: str, values: list[object]
) -> None:
    X = decode_features(request_from_grpc(typed(datatype, [2, 2], field, values)), NUMERIC, 10)
    np.testing.assert_array_equal(X, np.array(values, dtype=np.float64).reshape(2, 2))


def test_raw_contents_with_bytes_columns() -> None:
    message = pb.ModelInferRequest(model_name="m")
    message.inputs.add(name="colour", datatype="BYTES", shape=[2])
    message.inputs.add(name="size", datatype="FP64", shape=[2])
    message.raw_input_contents.append(
        struct.pack("<I", 3) + b"red" + struct.pack("<I", 4) + b"blue"
    )
    message.raw_input_contents.append(np.array([1.5, 2.5]).tobytes())
    X = decode_features(request_from_grpc(message), MIXED, 10)
    assert X.tolist() == [[1.5, "red"], [2.5, "blue"]]


def _raw(count: int, size: int) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name="m")
    message.inputs.add(name="x", datatype="FP64", shape=[1, 2])
    for _ in range(count):
        message.raw_input_contents.append(b"\0" * size)
    return message


@pytest.mark.parametrize(
    "message",
    [
        pb.ModelInferRequest(model_name="m"),  # no inputs
        _raw(2, 16),  # two raw entries for one input
        _raw(1, 15),  # raw size off by one
        typed("FP64", [2, 2], "fp64_contents", [1.0, 2.0, 3.0]),  # too few values
        typed("FP64", [1, 2], "fp32_contents", [1.0, 2.0]),  # the wrong field
        typed("FP16", [1, 2], "fp32_contents", [1.0, 2.0]),  # unknown datatype
        typed("FP64", [], "fp64_contents", []),  # no shape
        typed("FP64", [-1, 2], "fp64_contents", [1.0, 2.0]),  # negative dimension
        typed("BYTES", [1, 2], "bytes_contents", [b"\xff", b"a"]),  # not UTF-8
    ],
)
def test_malformed_messages_raise_invalid_input(message: pb.ModelInferRequest) -> None:
    with pytest.raises(InvalidInputError):
        decode_features(request_from_grpc(message), NUMERIC, 10)


def test_parameters_take_the_value_that_is_set() -> None:
    message = pb.ModelInferRequest()
    message.parameters["a"].bool_param = True
    message.parameters["b"].int64_param = 7
    message.parameters["c"].string_param = "s"
    message.parameters["d"].double_param = 0.5
    message.parameters["e"].CopyFrom(pb.InferParameter())
    assert parameters_from_grpc(message.parameters) == {"a": True, "b": 7, "c": "s", "d": 0.5}


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
def test_responses_answer_in_kind(raw: bool) -> None:
    labels = np.array(["yes", "no"], dtype=object)
    proba = np.array([[0.25, 0.75], [0.5, 0.5]])
    response = response_to_grpc(
        "m", "v1", "id", ["predict", "predict_proba"], [labels, proba], raw=raw
    )
    assert (response.model_name, response.model_version, response.id) == ("m", "v1", "id")
    assert [o.datatype for o in response.outputs] == ["BYTES", "FP64"]
    assert list(response.outputs[1].shape) == [2, 2]
    if raw:
        assert decode_raw_tensor("p", "BYTES", [2], response.raw_output_contents[0]).tolist() == [
            "yes",
            "no",
        ]
        np.testing.assert_array_equal(np.frombuffer(response.raw_output_contents[1]), proba.ravel())
    else:
        assert list(response.outputs[0].contents.bytes_contents) == [b"yes", b"no"]
        assert list(response.outputs[1].contents.fp64_contents) == proba.ravel().tolist()
