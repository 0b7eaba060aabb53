"""Open Inference Protocol gRPC messages to and from the data plane's records: pure, no I/O.

A ``ModelInferRequest`` becomes the same :class:`~modelops.serving.protocol.InferRequest` a REST
body does, so both transports share one validation (``decode_features``) and one set of error
messages. Tensor data comes either typed (``contents``, the field of the datatype) or raw
(``raw_input_contents``, one entry per input, laid out as the REST binary extension); the
response answers in kind: raw outputs for a raw request (what Triton's client reads), typed ones
otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from modelops.serving.errors import InvalidInputError
from modelops.serving.proto import open_inference_grpc_pb2 as pb
from modelops.serving.protocol import (
    DATATYPES,
    InferRequest,
    InputTensor,
    Parameters,
    RequestedOutput,
    decode_raw_tensor,
    output_tensor,
    raw_contents,
)

#: The ``InferTensorContents`` field of each accepted datatype.
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
_CONTENTS_DTYPE: dict[str, type[Any]] = {
    "BOOL": np.bool_,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP32": np.float32,
    "FP64": np.float64,
}


def request_from_grpc(message: pb.ModelInferRequest) -> InferRequest:
    """The :class:`InferRequest` of a ``ModelInferRequest`` (raises :class:`InvalidInputError`)."""
    raw = message.raw_input_contents
    tensors = message.inputs
    if not tensors:
        raise InvalidInputError("'inputs' must be a non-empty list of tensors")
    if raw and len(raw) != len(tensors):
        raise InvalidInputError(
            f"raw_input_contents has {len(raw)} entries for {len(tensors)} inputs: give one per "
            "input, in input order"
        )
    inputs = []
    for index, tensor in enumerate(tensors):
        name = tensor.name
        if not name:
            raise InvalidInputError(f"inputs[{index}].name must be a non-empty string")
        shape = tuple(tensor.shape)
        if not shape or min(shape) < 0:
            raise InvalidInputError(
                f"input {name!r}: 'shape' must be a non-empty list of integers >= 0"
            )
        datatype = tensor.datatype
        if datatype not in DATATYPES:
            raise InvalidInputError(
                f"input {name!r}: datatype {datatype!r} is not supported: use one of "
                + ", ".join(DATATYPES)
            )
        if raw:
            if tensor.HasField("contents"):
                raise InvalidInputError(
                    f"input {name!r} has contents while the request has raw_input_contents: "
                    "send one or the other"
                )
            data = decode_raw_tensor(name, datatype, shape, raw[index])
        else:
            data = _typed_contents(tensor, name, datatype, shape)
        inputs.append(InputTensor(name, shape, datatype, data))
    outputs = tuple(
        RequestedOutput(output.name, parameters_from_grpc(output.parameters))
        for output in message.outputs
    )
    return InferRequest(
        message.id or None, tuple(inputs), outputs, parameters_from_grpc(message.parameters)
    )


def _typed_contents(
    tensor: pb.ModelInferRequest.InferInputTensor, name: str, datatype: str, shape: Sequence[int]
) -> np.ndarray:
    field = CONTENTS_FIELD[datatype]
    contents = tensor.contents
    values = getattr(contents, field)
    expected = math.prod(shape)
    if len(values) != expected:
        others = [
            other
            for other in CONTENTS_FIELD.values()
            if other != field and len(getattr(contents, other))
        ]
        hint = f" (the values are in {others[0]}, not {field})" if others else ""
        raise InvalidInputError(
            f"input {name!r}: shape {list(shape)} needs {expected} values in "
            f"contents.{field}, it holds {len(values)}{hint}"
        )
    if datatype == "BYTES":
        array = np.empty(expected, dtype=object)
        try:
            array[:] = [value.decode() for value in values]
        except UnicodeDecodeError:
            raise InvalidInputError(f"input {name!r}: a BYTES element is not UTF-8 text") from None
        return array
    return np.array(values, dtype=_CONTENTS_DTYPE[datatype])


def parameters_from_grpc(parameters: Mapping[str, pb.InferParameter]) -> Parameters:
    """A ``parameters`` map as plain values (an unset parameter is left out)."""
    result: Parameters = {}
    for key, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        if choice is not None:
            result[key] = getattr(parameter, choice)
    return result


def response_to_grpc(
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: Sequence[str],
    arrays: Sequence[np.ndarray],
    *,
    raw: bool,
) -> pb.ModelInferResponse:
    """The ``ModelInferResponse`` for predicted arrays: ``raw_output_contents`` when ``raw``,
    else typed ``contents``."""
    response = pb.ModelInferResponse(
        model_name=model_name, model_version=model_version, id=request_id or ""
    )
    for name, values in zip(outputs, arrays, strict=True):
        doc = output_tensor(name, values)
        datatype: str = doc["datatype"]
        tensor = response.outputs.add(name=name, datatype=datatype, shape=doc["shape"])
        if raw:
            response.raw_output_contents.append(raw_contents(datatype, doc["data"]))
        elif datatype == "BYTES":
            tensor.contents.bytes_contents.extend([text.encode() for text in doc["data"]])
        else:
            getattr(tensor.contents, CONTENTS_FIELD[datatype]).extend(doc["data"].tolist())
    return response


def tensor_metadata(
    tensors: Sequence[Mapping[str, Any]],
) -> list[pb.ModelMetadataResponse.TensorMetadata]:
    """Tensor metadata messages from the REST metadata document's ``inputs``/``outputs``."""
    return [
        pb.ModelMetadataResponse.TensorMetadata(
            name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"]
        )
        for tensor in tensors
    ]
