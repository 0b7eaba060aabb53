"""A fault proxy in front of the real API server: the faults a cluster really produces, on cue.

The operator under test talks plain HTTP to the proxy on 127.0.0.1 with its ServiceAccount
token; the proxy forwards every request over TLS to the API server, watches streamed, unless a
fault armed by the test matches it first. The proxy verifies the server with the CAs of the TLS
context it is given but never presents a client certificate: the API server authenticates a
client certificate before a bearer token, so forwarding with the admin certificate would make
every request through the proxy the admin's, not the operator's.

Each fault fires once (or ``times`` times):

- ``error``: answer a Kubernetes ``Status`` with that code without forwarding (a 500 on a LIST,
  a 429 with Retry-After, a lost write: the server never sees it);
- ``watch_gone``: answer a watch with one ``ERROR 410 Expired`` event and end it, as the API
  server does when the resourceVersion asked for is too old;
- ``watch_cut``: forward a watch, then drop its connection without a word (no ERROR event, no
  end of the chunked stream), as a dying load balancer or API server does.

``requests`` lists every request the proxy received, in order, with its arrival time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding"}
#: Subresources of a namespace itself (/api/v1/namespaces/NAME/status), as the API server's
#: request-info parser knows them.
NAMESPACE_SUBRESOURCES = {"status", "finalize"}


@dataclass(frozen=True)
class Request:
    """What a fault can match on: the request as RBAC sees it, and a write's body."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    time: float = field(default_factory=time.monotonic, compare=False)
    """When the proxy received it (``time.monotonic()``)."""

    @property
    def watch(self) -> bool:
        return self.query.get("watch") in ("true", "1")

    @property
    def verb(self) -> str:
        """get, list, watch, create, patch, update, delete or deletecollection."""
        if self.method == "GET":
            if self.watch:
                return "watch"
            return "get" if self._named else "list"
        if self.method == "DELETE" and not self._named:
            return "deletecollection"
        return {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}.get(
            self.method, self.method.lower()
        )

    @property
    def _parts(self) -> list[str]:
        """[resource, name, subresource] as far as the path has them (the API server's rule:
        /api/v1/... or /apis/GROUP/VERSION/..., then an optional namespaces/NS)."""
        parts = [p for p in self.path.split("/") if p]
        if parts[:1] == ["api"]:
            rest = parts[2:]
        elif parts[:1] == ["apis"]:
            rest = parts[3:]
        else:
            return []
        if rest[:1] == ["namespaces"] and len(rest) >= 3 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
        return rest

    @property
    def namespace(self) -> str | None:
        parts = [p for p in self.path.split("/") if p]
        rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
        return rest[1] if rest[:1] == ["namespaces"] and len(rest) >= 3 else None

    @property
    def resource(self) -> str:
        return self._parts[0] if self._parts else ""

    @property
    def _named(self) -> bool:
        return len(self._parts) >= 2

    @property
    def name(self) -> str | None:
        return self._parts[1] if self._named else None

    @property
    def subresource(self) -> str | None:
        return self._parts[2] if len(self._parts) >= 3 else None

    def __str__(self) -> str:
        return f"{self.verb} {self.path}"


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
    after: float = 0.0  # watch_cut: seconds of the real stream before the cut

    @property
    def done(self) -> bool:
        return len(self.fired) >= self.times


def _status(code: int, message: str, retry_after: str | None = None) -> dict[str, Any]:
    reasons = {
        410: "Expired",
        429: "TooManyRequests",
        500: "InternalError",
        503: "ServiceUnavailable",
        504: "Timeout",
    }
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reasons.get(code, "InternalError"),
        "code": code,
    }
    if retry_after is not None and retry_after.isdigit():
        status["details"] = {"retryAfterSeconds": int(retry_after)}
    return status


def _header_name(key: str) -> str:
    """``retry_after`` or ``Retry-After`` -> ``Retry-After`` (keyword arguments have no dash)."""
    return "-".join(part.capitalize() for part in key.replace("_", "-").split("-"))


class FaultProxy:
    """``async with FaultProxy(url, tls) as proxy:``; point the operator at ``proxy.url``.

    ``tls`` is used for its CA certificates only (see the module docstring)."""

    def __init__(self, upstream: str, tls: ssl.SSLContext) -> None:
        self.upstream = upstream.rstrip("/")
        self._tls = _verify_only(tls)
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    # --- Arming faults -------------------------------------------------------------------------

    def error(self, match: Matcher, status: int = 500, *, times: int = 1, **headers: str) -> Fault:
        """Answer the next ``times`` matching requests with a ``Status`` of code ``status``
        instead of forwarding them; ``headers`` go with it (``retry_after="1"`` or
        ``**{"Retry-After": "1"}``)."""
        named = {_header_name(k): v for k, v in headers.items()}
        return self._arm(Fault("error", match, status=status, headers=named, times=times))

    def watch_gone(self, match: Matcher, *, times: int = 1) -> Fault:
        return self._arm(
            Fault("watch_gone", match, status=410, message="too old resource version", times=times)
        )

    def watch_cut(self, match: Matcher, *, after: float = 0.0, times: int = 1) -> Fault:
        """Forward the matching watch for ``after`` seconds, then drop its connection."""
        return self._arm(Fault("watch_cut", match, after=after, times=times))

    def _arm(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def _fault_for(self, request: Request) -> Fault | None:
        for fault in self.faults:
            if not fault.done and fault.match(request):
                fault.fired.append(request)
                return fault
        return None

    def seen(self, match: Matcher, since: float = 0.0) -> list[Request]:
        """The requests received since ``since`` (``time.monotonic()``) that ``match``."""
        return [r for r in self.requests if r.time >= since and match(r)]

    # --- Serving -------------------------------------------------------------------------------

    async def __aenter__(self) -> FaultProxy:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=5.0
        )
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
        # Closing the session ends the watches still streamed, so the handlers return.
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
                _status(fault.status, fault.message, fault.headers.get("Retry-After")),
                status=fault.status,
                headers=fault.headers,
            )
        if fault is not None and fault.kind == "watch_gone":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(incoming)
            event = {"type": "ERROR", "object": _status(410, fault.message)}
            await response.write(json.dumps(event).encode() + b"\n")
            await response.write_eof()
            return response
        cut = fault.after if fault is not None and fault.kind == "watch_cut" else None
        return await self._forward(incoming, raw, cut_after=cut)

    async def _forward(
        self, incoming: web.Request, raw: bytes, *, cut_after: float | None = None
    ) -> web.StreamResponse:
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

            async def pump() -> None:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)

            try:
                if cut_after is None:
                    await pump()
                elif cut_after > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(pump(), timeout=cut_after)
            except (aiohttp.ClientError, ConnectionResetError):
                cut_after = None  # the client or the server ended the stream: end ours too
            if cut_after is not None:
                # No terminating chunk, no ERROR event: the client sees the connection drop.
                if incoming.transport is not None:
                    incoming.transport.abort()
                return response
            with contextlib.suppress(ConnectionResetError, aiohttp.ClientError):
                await response.write_eof()
            return response


def _verify_only(tls: ssl.SSLContext) -> ssl.SSLContext:
    """A client context trusting the CAs ``tls`` trusts, without its client certificate."""
    cas = tls.get_ca_certs(binary_form=True)
    if not cas:
        raise ValueError("the TLS context trusts no CA certificate loaded from a file or data")
    pem = "".join(ssl.DER_cert_to_PEM_cert(der) for der in cas)
    return ssl.create_default_context(cadata=pem)
