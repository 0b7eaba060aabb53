"""The ASGI application: V2 REST routes and ``/metrics``, without a web framework.

A framework's routing, middleware and request objects cost more per request than a 1-row
prediction, so routing here is a dictionary lookup for the served model's own paths and a small
parser for everything else (to tell an unknown model from an unknown endpoint).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from modelops.serving import counts
from modelops.serving.batching import Batcher
from modelops.serving.dataplane import DataPlane, http_status, log_server_error
from modelops.serving.errors import (
    EndpointNotFoundError,
    InvalidInputError,
    MethodNotAllowedError,
    RequestTooLargeError,
    ServingError,
)
from modelops.serving.protocol import error_body, parse_infer_request
from modelops.serving.settings import DEFAULT_MAX_REQUEST_BYTES

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_HEADERS = [(b"content-type", b"application/json")]
#: A response with binary outputs (binary tensor extension): JSON header, then raw bytes.
BINARY_HEADERS = [(b"content-type", b"application/octet-stream")]
INFERENCE_HEADER = b"inference-header-content-length"
#: Batches with more rows than this are predicted in a worker thread, so the event loop keeps
#: answering health checks and small requests while a big batch runs.
THREAD_ROWS = 2048

INFER, READY, METADATA, PROFILE = "infer", "ready", "metadata", "profile"
CARD = "card"
COUNTS = counts.SUFFIX


class ClientDisconnectedError(Exception):
    """The client went away before sending its whole body."""


class ServingApp:
    """ASGI callable serving one :class:`DataPlane`."""

    def __init__(
        self,
        dataplane: DataPlane,
        *,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        card_json: bytes | None = None,
    ) -> None:
        self.dataplane = dataplane
        self.card_json = card_json
        """The model directory's ``card.json`` (None: it has none; the endpoint says so)."""
        self.metrics = dataplane.metrics
        self.max_request_bytes = max_request_bytes
        self.batcher = Batcher(dataplane)
        name, version = dataplane.name, dataplane.version
        # The served model's own paths, resolved with one dictionary lookup.
        self.model_routes: dict[str, str] = {}
        for base in (f"/v2/models/{name}", f"/v2/models/{name}/versions/{version}"):
            self.model_routes[base] = METADATA
            self.model_routes[base + "/ready"] = READY
            self.model_routes[base + "/infer"] = INFER
            # Not part of the V2 protocol: the model's reference profile (profile.json).
            self.model_routes[base + "/profile"] = PROFILE
            # Not part of the V2 protocol: the bin counts of /metrics as JSON, for the operator.
            self.model_routes[base + "/" + COUNTS] = COUNTS
            # Not part of the V2 protocol: the model card (card.json), see serving.card.
            self.model_routes[base + "/" + CARD] = CARD

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is off; websockets are not served
        path: str = scope["path"]
        method: str = scope["method"]
        route = self.model_routes.get(path)
        if route == INFER and method == "POST":
            await self._infer(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            if route is None:
                route = self._parse_route(path)
            if route == INFER:  # POST was served above
                raise MethodNotAllowedError(f"{path} takes POST", ("POST",))
            if method not in ("GET", "HEAD"):
                raise MethodNotAllowedError(f"{path} takes GET", ("GET", "HEAD"))
            await self._get(route, send)
        except ServingError as exc:
            await _send_error(send, exc)
            if path.endswith("/infer"):  # an inference request for another model or version
                self.metrics.observe_request(http_status(exc), time.perf_counter() - started)

    def _parse_route(self, path: str) -> str:
        """Route of a path that is not one of the served model's own paths."""
        if path in ("/v2", "/v2/"):
            return "server"
        if path == "/v2/health/live":
            return "live"
        if path == "/v2/health/ready":
            return "server-ready"
        if path == "/metrics":
            return "metrics"
        parts = path.strip("/").split("/")
        if len(parts) >= 3 and parts[:2] == ["v2", "models"]:
            name, rest = parts[2], parts[3:]
            version = None
            if len(rest) >= 2 and rest[0] == "versions":
                version, rest = rest[1], rest[2:]
            if len(rest) <= 1 and (not rest or rest[0] in (READY, INFER, PROFILE, COUNTS, CARD)):
                self.dataplane.check_model(name, version)  # raises ModelNotFoundError
        raise EndpointNotFoundError(f"no endpoint {path}")

    async def _get(self, route: str, send: Send) -> None:
        dataplane = self.dataplane
        if route == METADATA:
            await _send(send, 200, dataplane.model_metadata)
        elif route == READY:
            await _send(send, 200, dataplane.model_ready)
        elif route == PROFILE:
            await _send(send, 200, dataplane.profile_json)
        elif route == COUNTS:
            await _send(send, 200, self.metrics.counts_document())
        elif route == CARD:
            if self.card_json is None:
                raise EndpointNotFoundError(
                    f"model {dataplane.name} version {dataplane.version} has no model card: its "
                    "model directory holds no card.json (made before model cards, or by hand)"
                )
            await _send(send, 200, self.card_json)
        elif route == "server":
            await _send(send, 200, dataplane.server_metadata)
        elif route == "live":
            await _send(send, 200, b'{"live":true}')
        elif route == "server-ready":
            # The model is loaded before the port opens: once this answers, the server is ready.
            await _send(send, 200, b'{"ready":true}')
        else:
            body = self.metrics.exposition()
            await _send(send, 200, body, [(b"content-type", CONTENT_TYPE_LATEST.encode())])

    async def _infer(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        dataplane = self.dataplane
        try:
            body, header_length = await self._read_body(scope, receive)
            if header_length is None:
                prepared = dataplane.prepare(body)
            else:  # binary tensor extension
                prepared = dataplane.prepare_request(parse_infer_request(body, header_length))
            if prepared.features.shape[0] > THREAD_ROWS:
                loop = asyncio.get_running_loop()
                arrays = await loop.run_in_executor(None, dataplane.predict_in_thread, prepared)
                dataplane.count(prepared.features)
            else:
                arrays = await self.batcher.predict(prepared)
            response, response_header_length = dataplane.encode_parts(prepared, arrays)
        except ClientDisconnectedError:
            return
        except Exception as exc:
            status = http_status(exc)
            log_server_error(exc, scope["path"])
            await _send_error(send, exc, status)
            self.metrics.observe_request(status, time.perf_counter() - started)
            return
        if response_header_length is None:
            await _send(send, 200, response)
        else:
            extra = [(INFERENCE_HEADER, str(response_header_length).encode())]
            await _send(send, 200, response, BINARY_HEADERS, extra)
        self.metrics.observe_request(200, time.perf_counter() - started)

    async def _read_body(self, scope: Scope, receive: Receive) -> tuple[bytes, int | None]:
        """The request body (at most ``max_request_bytes``, binary data included) and the
        ``Inference-Header-Content-Length`` header (binary tensor extension), if given."""
        limit = self.max_request_bytes
        header_length: int | None = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise InvalidInputError("Content-Length is not a number") from None
                if declared > limit:
                    raise RequestTooLargeError(f"request body is {declared} bytes, limit {limit}")
            elif key == INFERENCE_HEADER:
                header_length = _header_length(value)
        return await self._receive_body(receive, limit), header_length

    async def _receive_body(self, receive: Receive, limit: int) -> bytes:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnectedError
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if len(body) > limit:
                raise RequestTooLargeError(f"request body is over the {limit}-byte limit")
            return body
        chunks = [body]
        size = len(body)
        while message.get("more_body", False):
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnectedError
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise RequestTooLargeError(f"request body is over the {limit}-byte limit")
            chunks.append(chunk)
        return b"".join(chunks)


def _header_length(value: bytes) -> int:
    try:
        length = int(value)
    except ValueError:
        raise InvalidInputError("Inference-Header-Content-Length is not a number") from None
    if length < 0:
        raise InvalidInputError("Inference-Header-Content-Length is negative")
    return length


async def _send(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] = JSON_HEADERS,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    all_headers = [*headers, (b"content-length", str(len(body)).encode())]
    if extra:
        all_headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, exc: BaseException, status: int | None = None) -> None:
    status = http_status(exc) if status is None else status
    extra: list[tuple[bytes, bytes]] = []
    if isinstance(exc, MethodNotAllowedError):
        extra.append((b"allow", ", ".join(exc.allowed).encode()))
    if isinstance(exc, RequestTooLargeError):
        extra.append((b"connection", b"close"))  # the rest of the body is never read
    message = str(exc) if status < 500 else "internal error, see the server log"
    await _send(send, status, error_body(message), extra=extra)
