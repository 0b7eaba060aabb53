"""V2 request parsing and tensor codecs (modelops.serving.protocol): pure functions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pytest

from modelops.serving.errors import InvalidInputError
from modelops.serving.protocol import (
    FeatureLayout,
    decode_features,
    encode_response,
    output_tensor,
    parse_infer_request,
)

NUMERIC = FeatureLayout(("a", "b", "c"), (False, False, False))
MIXED = FeatureLayout(("size", "colour"), (False, True))


def decode(doc: Any, layout: FeatureLayout = NUMERIC, max_rows: int = 100) -> np.ndarray:
    return decode_features(parse_infer_request(orjson.dumps(doc)), layout, max_rows)


def matrix(data: Any, shape: list[int], datatype: str = "FP64") -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": shape, "datatype": datatype, "data": data}]}


@pytest.mark.parametrize(
    "data",
    [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]],
    ids=["flat", "nested"],
)
def test_matrix_flat_or_nested_gives_rows_by_features(data: list[Any]) -> None:
    X = decode(matrix(data, [2, 3]))
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, [[1, 2, 3], [4, 5, 6]])


@pytest.mark.parametrize(
    ("datatype", "data"),
    [
        ("INT32", [1, 2, 3]),
        ("INT64", [1, 2, 3]),
        ("FP32", [1.0, 2.0, 3.0]),
        ("FP64", [1, 2.0, 3]),
        ("BOOL", [True, False, True]),
    ],
)
def test_every_numeric_datatype_is_accepted(datatype: str, data: list[Any]) -> None:
    X = decode(matrix(data, [1, 3], datatype))
    np.testing.assert_array_equal(X, [[float(v) for v in data]])


@pytest.mark.parametrize(
    "data",
    [
        [1, 2.5, 3],  # integers among floats
        [0.5, True, False],  # booleans after a number: numpy reads them as numbers
        [2**64 - 1, 1.0, -(2**63)],  # integers at the ends of uint64 and int64
        [-0.0, 1e-320, 1.7976931348623157e308],  # signed zero, subnormal, the largest double
    ],
)
def test_flat_fp64_lists_give_exactly_what_numpy_gives(data: list[Any]) -> None:
    X = decode(matrix(data, [1, 3]))
    expected = np.array(data, dtype=np.float64).reshape(1, 3)
    assert X.dtype == np.float64
    assert X.tobytes() == expected.tobytes()  # bit for bit, the sign of zero included


def test_one_tensor_per_feature_in_any_order() -> None:
    doc = {
        "inputs": [
            {"name": "c", "shape": [2], "datatype": "FP64", "data": [5.0, 6.0]},
            {"name": "a", "shape": [2, 1], "datatype": "INT64", "data": [[1], [2]]},
            {"name": "b", "shape": [2], "datatype": "FP32", "data": [3.0, 4.0]},
        ]
    }
    np.testing.assert_array_equal(decode(doc), [[1, 3, 5], [2, 4, 6]])


def test_categorical_features_become_an_object_matrix() -> None:
    doc = {
        "inputs": [
            {"name": "size", "shape": [2], "datatype": "FP64", "data": [1.5, 2.5]},
            {"name": "colour", "shape": [2], "datatype": "BYTES", "data": ["red", "blue"]},
        ]
    }
    X = decode(doc, MIXED)
    assert X.dtype == object
    assert X.tolist() == [[1.5, "red"], [2.5, "blue"]]


def test_mixed_model_takes_a_bytes_matrix_with_numbers_as_text() -> None:
    X = decode(matrix([["1.5", "red"], ["2", "blue"]], [2, 2], "BYTES"), MIXED)
    assert X.tolist() == [[1.5, "red"], [2.0, "blue"]]


def test_request_id_outputs_and_parameters_are_parsed() -> None:
    doc = {
        "id": "req-7",
        "parameters": {"content_type": "np", "priority": 2},
        "inputs": matrix([1, 2, 3], [1, 3])["inputs"],
        "outputs": [{"name": "predict_proba", "parameters": {"binary_data": False}}],
    }
    request = parse_infer_request(orjson.dumps(doc))
    assert request.id == "req-7"
    assert request.parameters == {"content_type": "np", "priority": 2}
    assert [o.name for o in request.outputs] == ["predict_proba"]


MALFORMED: list[tuple[str, Any]] = [
    ("not json", b"{"),
    ("json array", [1, 2]),
    ("no inputs", {"id": "x"}),
    ("inputs not list", {"inputs": {"name": "x"}}),
    ("empty inputs", {"inputs": []}),
    ("input not object", {"inputs": [3]}),
    ("id not string", {"id": 5, **matrix([1, 2, 3], [1, 3])}),
    ("no name", {"inputs": [{"shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}),
    ("no shape", {"inputs": [{"name": "x", "datatype": "FP64", "data": [1, 2, 3]}]}),
    ("negative shape", matrix([1, 2, 3], [-1, 3])),
    ("float shape", matrix([1, 2, 3], [1.0, 3])),
    ("bool shape", matrix([1, 2, 3], [True, 3])),
    ("no datatype", {"inputs": [{"name": "x", "shape": [1, 3], "data": [1, 2, 3]}]}),
    ("unknown datatype", matrix([1, 2, 3], [1, 3], "FP16")),
    ("no data", {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64"}]}),
    ("too few values", matrix([1, 2], [1, 3])),
    ("no values", matrix([], [1, 3])),
    ("nested values in a flat-looking tensor", matrix([1, [2], 3], [1, 3])),
    ("too many values", matrix([1, 2, 3, 4], [1, 3])),
    ("wrong feature count", matrix([1, 2, 3, 4], [1, 4])),
    ("3-d tensor", matrix([1, 2, 3], [1, 1, 3])),
    ("zero rows", matrix([], [0, 3])),
    ("too many rows", matrix([0.0] * 303, [101, 3])),
    ("huge shape", matrix([1, 2, 3], [10**12, 3])),
    ("ragged nesting", matrix([[1, 2, 3], [4, 5]], [2, 3])),
    ("nesting unlike shape", matrix([[1, 2], [3, 4], [5, 6]], [2, 3])),
    ("string in FP64", matrix([1, "2", 3], [1, 3])),
    ("null in FP64", matrix([1, None, 3], [1, 3])),
    ("object in FP64", matrix([1, {"a": 1}, 3], [1, 3])),
    ("float in INT64", matrix([1, 2.5, 3], [1, 3], "INT64")),
    ("INT32 overflow", matrix([1, 2**31, 3], [1, 3], "INT32")),
    ("INT64 overflow", matrix([1, 2**64 - 1, 3], [1, 3], "INT64")),
    ("number in BOOL", matrix([1, 0, 1], [1, 3], "BOOL")),
    ("bool in FP64", matrix([True, False, True], [1, 3])),
    ("FP32 overflow is infinite", matrix([1.0, 1e39, 3.0], [1, 3], "FP32")),
    ("BYTES for numeric model", matrix(["1", "2", "3"], [1, 3], "BYTES")),
    (
        "unknown feature tensor",
        {"inputs": [{"name": "z", "shape": [1], "datatype": "FP64", "data": [1]}]},
    ),
    (
        "missing feature tensor",
        {
            "inputs": [
                {"name": "a", "shape": [1], "datatype": "FP64", "data": [1]},
                {"name": "b", "shape": [1], "datatype": "FP64", "data": [1]},
            ]
        },
    ),
    (
        "duplicate feature tensor",
        {
            "inputs": [
                {"name": n, "shape": [1], "datatype": "FP64", "data": [1]}
                for n in ("a", "a", "b", "c")
            ]
        },
    ),
    (
        "feature tensors of different rows",
        {
            "inputs": [
                {"name": "a", "shape": [1], "datatype": "FP64", "data": [1]},
                {"name": "b", "shape": [2], "datatype": "FP64", "data": [1, 2]},
                {"name": "c", "shape": [1], "datatype": "FP64", "data": [1]},
            ]
        },
    ),
    ("parameters not object", {"parameters": [1], **matrix([1, 2, 3], [1, 3])}),
    ("parameter value a list", {"parameters": {"x": [1]}, **matrix([1, 2, 3], [1, 3])}),
    ("outputs not list", {"outputs": "predict", **matrix([1, 2, 3], [1, 3])}),
    ("output without name", {"outputs": [{}], **matrix([1, 2, 3], [1, 3])}),
    (
        "binary input data",
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1, 3],
                    "datatype": "FP64",
                    "data": [],
                    "parameters": {"binary_data_size": 24},
                }
            ]
        },
    ),
]


@pytest.mark.parametrize(("case", "doc"), MALFORMED, ids=[case for case, _ in MALFORMED])
def test_malformed_requests_raise_invalid_input(case: str, doc: Any) -> None:
    body = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    with pytest.raises(InvalidInputError) as raised:
        decode_features(parse_infer_request(body), NUMERIC, 100)
    assert str(raised.value)  # every refusal says why


@pytest.mark.parametrize(
    "doc",
    [
        matrix([[1.0, 2.0]], [1, 2]),  # float for a categorical column
        {
            "inputs": [
                {"name": "size", "shape": [1], "datatype": "BYTES", "data": ["big"]},
                {"name": "colour", "shape": [1], "datatype": "BYTES", "data": ["red"]},
            ]
        },
        {
            "inputs": [
                {"name": "size", "shape": [1], "datatype": "BYTES", "data": ["inf"]},
                {"name": "colour", "shape": [1], "datatype": "BYTES", "data": ["red"]},
            ]
        },
        {
            "inputs": [
                {"name": "size", "shape": [1], "datatype": "FP64", "data": [1.0]},
                {"name": "colour", "shape": [1], "datatype": "BYTES", "data": [3]},
            ]
        },
    ],
    ids=["float-category", "text-number", "inf-text", "number-in-bytes"],
)
def test_mixed_model_refuses_wrong_kinds(doc: Any) -> None:
    with pytest.raises(InvalidInputError):
        decode(doc, MIXED)


def test_missing_numbers_reach_the_model_as_nan() -> None:
    """NaN is a missing value (binary FP64, "nan" as text): the model imputes or refuses it."""
    doc = {
        "inputs": [
            {"name": "size", "shape": [2], "datatype": "BYTES", "data": ["nan", "2.5"]},
            {"name": "colour", "shape": [2], "datatype": "BYTES", "data": ["red", "blue"]},
        ]
    }
    matrix = decode(doc, MIXED)
    assert math.isnan(matrix[0, 0])
    assert matrix[1].tolist() == [2.5, "blue"]


def test_output_tensors_keep_datatype_and_shape() -> None:
    labels = output_tensor("predict", np.array(["setosa", "virginica"], dtype=object))
    assert labels == {
        "name": "predict",
        "datatype": "BYTES",
        "shape": [2],
        "data": ["setosa", "virginica"],
    }
    proba = output_tensor("predict_proba", np.array([[0.25, 0.75]], dtype=np.float32))
    assert proba["datatype"] == "FP64"
    assert proba["shape"] == [1, 2]
    assert output_tensor("predict", np.array([1, 0], dtype=np.int32))["datatype"] == "INT64"
    assert output_tensor("predict", np.array([True]))["datatype"] == "BOOL"


def test_response_echoes_id_and_serialises_numpy_flat() -> None:
    body = encode_response(
        "iris", "v3", "req-1", [output_tensor("p", np.array([[0.5, 0.5], [0.1, 0.9]]))]
    )
    assert orjson.loads(body) == {
        "model_name": "iris",
        "model_version": "v3",
        "id": "req-1",
        "outputs": [
            {"name": "p", "datatype": "FP64", "shape": [2, 2], "data": [0.5, 0.5, 0.1, 0.9]}
        ],
    }
    assert "id" not in orjson.loads(encode_response("iris", "v3", None, []))
