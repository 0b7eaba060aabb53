"""A fault proxy in front of the real API server: the faults a cluster really produces, on cue.

The operator under test talks plain HTTP to the proxy on 127.0.0.1 with its ServiceAccount
token; the proxy forwards every request over TLS to the API server, watches streamed, unless a
fault armed by the test matches it first. Each fault fires once:

- ``error``: answer a Kubernetes ``Status`` with that code without forwarding (a 500 on a LIST,
  a 429 with Retry-After, a lost write: the server never sees it);
- ``watch_gone``: answer a watch with one ``ERROR 410 Expired`` event and end it;
- ``watch_cut``: end a watch without a word (the connection just closes).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding"}


@dataclass(frozen=True)
class Request:
    """What a fault can match on: the request as RBAC sees it, and a write's body."""

    method: str
    path: str
    query: dict[str, str]
    body: Any

    @property
    def watch(self) -> bool:
        return self.query.get("watch") in ("true", "1")

    @property
    def verb(self) -> str:
        """get, list, watch, create, patch, update or delete."""
        if self.method == "GET":
            if self.watch:
                return "watch"
            return "get" if self._named else "list"
        return {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}.get(
            self.method, self.method.lower()
        )

    @property
    def _parts(self) -> list[str]:
        parts = [p for p in self.path.split("/") if p]
        # /api/v1/... or /apis/<group>/<version>/...; drop the prefix and a namespaces/<ns> pair
        rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            rest = rest[2:]
        return rest

    @property
    def resource(self) -> str:
        return self._parts[0] if self._parts else ""

    @property
    def _named(self) -> bool:
        return len(self._parts) >= 2

    @property
    def subresource(self) -> str | None:
        return self._parts[2] if len(self._parts) >= 3 else None


Matcher = Callable[[Request], bool]


@dataclass
class Fault:
    kind: str  # error | watch_gone | watch_cut
    match: Matcher
    status: int = 500
    message: str = "injected by the fault proxy"
    headers: dict[str, str] = field(default_factory=dict)
    fired: list[Request] = field(default_factory=list)
    times: int = 1

    @property
    def done(self) -> bool:
        return len(self.fired) >= self.times


def _status(code: int, message: str) -> dict[str, Any]:
    reasons = {410: "Expired", 429: "TooManyRequests", 500: "InternalError", 503: "Unavailable"}
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reasons.get(code, "InternalError"),
        "code": code,
    }


class FaultProxy:
    """``async with FaultProxy(url, tls) as proxy:``; point the operator at ``proxy.url``."""

    def __init__(self, upstream: str, tls: ssl.SSLContext) -> None:
        self.upstream = upstream.rstrip("/")
        self._tls = tls
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    # --- Arming faults -------------------------------------------------------------------------

    def error(self, match: Matcher, status: int = 500, *, times: int = 1, **headers: str) -> Fault:
        """Answer the next ``times`` matching requests with ``status`` instead of forwarding."""
        return self._arm(Fault("error", match, status=status, headers=headers, times=times))

    def watch_gone(self, match: Matcher) -> Fault:
        return self._arm(Fault("watch_gone", match, status=410, message="too old resource version"))

    def watch_cut(self, match: Matcher) -> Fault:
        return self._arm(Fault("watch_cut", match))

    def _arm(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def _fault_for(self, request: Request) -> Fault | None:
        for fault in self.faults:
            if not fault.done and fault.match(request):
                fault.fired.append(request)
                return fault
        return None

    # --- Serving ---------------------------------------------------------------------------

    async def __aenter__(self) -> FaultProxy:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._tls),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            auto_decompress=False,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, incoming: web.Request) -> web.StreamResponse:
        raw = await incoming.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        request = Request(incoming.method, incoming.path, dict(incoming.query), body)
        self.requests.append(request)
        fault = self._fault_for(request)
        if fault is not None and fault.kind == "error":
            return web.json_response(
                _status(fault.status, fault.message), status=fault.status, headers=fault.headers
            )
        if fault is not None and fault.kind == "watch_gone":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(incoming)
            event = {"type": "ERROR", "object": _status(410, fault.message)}
            await response.write(json.dumps(event).encode() + b"\n")
            await response.write_eof()
            return response
        if fault is not None and fault.kind == "watch_cut":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(incoming)
            await response.write_eof()
            return response
        return await self._forward(incoming, raw)

    async def _forward(self, incoming: web.Request, raw: bytes) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in incoming.headers.items() if k.lower() not in HOP_HEADERS}
        async with self._session.request(
            incoming.method,
            self.upstream + incoming.path_qs,
            headers=headers,
            data=raw or None,
        ) as upstream:
            response = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS},
            )
            await response.prepare(incoming)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except (aiohttp.ClientError, ConnectionResetError):
                pass  # the client or the server ended the stream: end ours too
            await response.write_eof()
            return response
