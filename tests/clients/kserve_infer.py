"""Run KServe's own Python clients against a server, in KServe's own virtualenv.

kserve pins protobuf<7 and pandas<3, which the project's environment has moved past, so
``make kserve-client`` installs it into ``.venv-kserve/`` and the tests run this script with that
venv's Python. It reads a request description as JSON on stdin::

    {"rest_url": "http://127.0.0.1:PORT", "grpc_target": "127.0.0.1:PORT", "model": NAME,
     "inputs": [{"name": ..., "datatype": ..., "data": [...]}], "outputs": ["predict", ...]}

sends it once with ``InferenceRESTClient`` (V2, binary tensors as the client sets them) and once
with ``InferenceGRPCClient``, and prints ``{"rest": {output: values}, "grpc": {...}}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import numpy as np
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest
from kserve.inference_client import RESTConfig
from kserve.protocol.infer_type import RequestedOutput

NUMPY = {"FP64": np.float64, "FP32": np.float32, "INT64": np.int64, "BOOL": np.bool_}


def build(spec: dict[str, Any], binary: bool) -> InferRequest:
    inputs = []
    for item in spec["inputs"]:
        values = np.asarray(item["data"], dtype=NUMPY.get(item["datatype"], object))
        tensor = InferInput(item["name"], list(values.shape), item["datatype"])
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    outputs = [RequestedOutput(name, {"binary_data": binary}) for name in spec["outputs"]]
    return InferRequest(model_name=spec["model"], infer_inputs=inputs, request_outputs=outputs)


def as_lists(response: Any) -> dict[str, Any]:
    found = {}
    for output in response.outputs:
        values = output.as_numpy()
        if values.dtype == object:
            values = np.array([v.decode() if isinstance(v, bytes) else v for v in values.ravel()])
        found[output.name] = values.tolist()
    return found


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    rest = InferenceRESTClient(RESTConfig(protocol="v2"))
    try:
        response = await rest.infer(spec["rest_url"], build(spec, True), model_name=spec["model"])
    finally:
        await rest.close()
    grpc_client = InferenceGRPCClient(spec["grpc_target"])
    try:
        grpc_response = await grpc_client.infer(build(spec, False))
    finally:
        await grpc_client.close()
    return {"rest": as_lists(response), "grpc": as_lists(grpc_response)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(json.load(sys.stdin)))))
