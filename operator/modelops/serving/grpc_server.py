"""The Open Inference Protocol over gRPC: ``inference.GRPCInferenceService`` (grpcio, asyncio).

It runs in the REST server's event loop and answers from the same :class:`DataPlane` and the same
micro-batcher, so gRPC and REST requests share batches, validation, metrics (``protocol="grpc"``)
and the counting of feature values into the profile's bins. Errors map to gRPC status codes in
one place (``GRPC_STATUS``, keyed by the HTTP status the data plane gives the same error): a
client mistake is INVALID_ARGUMENT, NOT_FOUND or RESOURCE_EXHAUSTED, never INTERNAL. Messages
over ``max_request_bytes`` are refused by grpcio itself with RESOURCE_EXHAUSTED (before any
handler runs, so they are not in the request metrics).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import orjson

from modelops import __version__
from modelops.serving.app import THREAD_ROWS
from modelops.serving.batching import Batcher
from modelops.serving.dataplane import EXTENSIONS, DataPlane, http_status, log_server_error
from modelops.serving.grpc_codec import request_from_grpc, response_to_grpc, tensor_metadata
from modelops.serving.proto import open_inference_grpc_pb2 as pb
from modelops.serving.proto import open_inference_grpc_pb2_grpc as pb_grpc

#: The gRPC status of each HTTP status the data plane maps an error to; anything else INTERNAL.
GRPC_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
}
Context = grpc.aio.ServicerContext[Any, Any]


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    """The six RPCs of ``inference.GRPCInferenceService`` for one :class:`DataPlane`."""

    def __init__(self, dataplane: DataPlane, batcher: Batcher) -> None:
        self.dataplane = dataplane
        self.batcher = batcher
        self.metrics = dataplane.metrics
        metadata = orjson.loads(dataplane.model_metadata)
        self.model_metadata = pb.ModelMetadataResponse(
            name=metadata["name"],
            versions=metadata["versions"],
            platform=metadata["platform"],
            inputs=tensor_metadata(metadata["inputs"]),
            outputs=tensor_metadata(metadata["outputs"]),
        )
        self.server_metadata = pb.ServerMetadataResponse(
            name="modelops", version=__version__, extensions=list(EXTENSIONS)
        )

    async def ServerLive(  # noqa: N802 - the protocol's method names
        self, request: pb.ServerLiveRequest, context: Context
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(  # noqa: N802
        self, request: pb.ServerReadyRequest, context: Context
    ) -> pb.ServerReadyResponse:
        # The model is loaded before the ports open: once this answers, the server is ready.
        return pb.ServerReadyResponse(ready=True)

    async def ModelReady(  # noqa: N802
        self, request: pb.ModelReadyRequest, context: Context
    ) -> pb.ModelReadyResponse:
        await self._check_model(request.name, request.version, context)
        return pb.ModelReadyResponse(ready=True)

    async def ServerMetadata(  # noqa: N802
        self, request: pb.ServerMetadataRequest, context: Context
    ) -> pb.ServerMetadataResponse:
        return self.server_metadata

    async def ModelMetadata(  # noqa: N802
        self, request: pb.ModelMetadataRequest, context: Context
    ) -> pb.ModelMetadataResponse:
        await self._check_model(request.name, request.version, context)
        return self.model_metadata

    async def ModelInfer(  # noqa: N802
        self, request: pb.ModelInferRequest, context: Context
    ) -> pb.ModelInferResponse:
        started = time.perf_counter()
        dataplane = self.dataplane
        try:
            dataplane.check_model(request.model_name, request.model_version or None)
            prepared = dataplane.prepare_request(request_from_grpc(request))
            if prepared.features.shape[0] > THREAD_ROWS:
                loop = asyncio.get_running_loop()
                arrays = await loop.run_in_executor(None, dataplane.predict_in_thread, prepared)
                dataplane.count(prepared.features, prepared.outputs, arrays)
            else:
                arrays = await self.batcher.predict(prepared)
            response = response_to_grpc(
                dataplane.name,
                dataplane.version,
                prepared.request.id,
                prepared.outputs,
                arrays,
                raw=bool(request.raw_input_contents),
            )
        except Exception as exc:
            status = http_status(exc)
            log_server_error(exc, "/inference.GRPCInferenceService/ModelInfer")
            self.metrics.observe_request(status, time.perf_counter() - started, "grpc")
            message = str(exc) if status < 500 else "internal error, see the server log"
            await context.abort(GRPC_STATUS.get(status, grpc.StatusCode.INTERNAL), message)
        self.metrics.observe_request(200, time.perf_counter() - started, "grpc")
        return response

    async def _check_model(self, name: str, version: str, context: Context) -> None:
        try:
            self.dataplane.check_model(name, version or None)
        except Exception as exc:
            await context.abort(
                GRPC_STATUS.get(http_status(exc), grpc.StatusCode.INTERNAL), str(exc)
            )


async def start_grpc_server(
    dataplane: DataPlane, batcher: Batcher, host: str, port: int, *, max_request_bytes: int
) -> grpc.aio.Server:
    """Bind ``host:port`` and start serving in the running event loop (raises
    ``RuntimeError`` when the port cannot be bound)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),  # a second server on the same port fails, as for HTTP
        ]
    )
    service = InferenceService(dataplane, batcher)
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(service, server)  # type: ignore[no-untyped-call]
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    server.add_insecure_port(address)
    await server.start()
    return server
