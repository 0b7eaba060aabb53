"""The tests' own API client for the real API server: raw JSON, async, one namespace.

Async because the operator under test runs in the test's event loop; ``Connection: close`` so
that the operator's shutdown is not held up by idle connections. It authenticates as the
cluster admin (the tests set the scene); the operator authenticates as its ServiceAccount.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from typing import Any

import httpx

from modelops import API_GROUP, API_VERSION

PATHS = {
    "modeldeployments": f"/apis/{API_GROUP}/{API_VERSION}",
    "driftpolicies": f"/apis/{API_GROUP}/{API_VERSION}",
    "deployments": "/apis/apps/v1",
    "replicasets": "/apis/apps/v1",
    "jobs": "/apis/batch/v1",
    "endpointslices": "/apis/discovery.k8s.io/v1",
    "services": "/api/v1",
    "pods": "/api/v1",
    "events": "/api/v1",
    "configmaps": "/api/v1",
    "secrets": "/api/v1",
    "persistentvolumeclaims": "/api/v1",
}
TEST_AGENT = "modelops-tests"


class ApiError(Exception):
    """A request of the tests' client that the server refused."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class KubeClient:
    """Create, read, patch and wait for objects of one namespace, as the cluster admin."""

    def __init__(self, base_url: str, namespace: str, tls: ssl.SSLContext) -> None:
        self.namespace = namespace
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Connection": "close", "User-Agent": TEST_AGENT},
            timeout=15,
            verify=tls,
        )

    async def close(self) -> None:
        await self._client.aclose()

    def path(self, plural: str, name: str | None = None, sub: str | None = None) -> str:
        path = f"{PATHS[plural]}/namespaces/{self.namespace}/{plural}"
        return path + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")

    async def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        for _ in range(20):
            response = await self._client.request(method, path, **kwargs)
            # Right after a CRD is installed the server may say "storage is (re)initializing".
            if response.status_code != 429:
                break
            await asyncio.sleep(0.25)
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise ApiError(response.status_code, f"{method} {path}: {message}")
        return response.json() if response.content else None

    async def create(
        self, plural: str, body: dict[str, Any], *, dry_run: bool = False, strict: bool = False
    ) -> dict[str, Any]:
        """POST ``body``; ``strict`` refuses unknown fields as kubectl does (400)."""
        params = {"dryRun": "All"} if dry_run else {}
        if strict:
            params["fieldValidation"] = "Strict"
        created: dict[str, Any] = await self._send(
            "POST", self.path(plural), json=body, params=params
        )
        return created

    async def get(self, plural: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await self._send("GET", self.path(plural, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    async def list(self, plural: str, selector: str | None = None) -> list[dict[str, Any]]:
        params = {"labelSelector": selector} if selector else None
        found = await self._send("GET", self.path(plural), params=params)
        items: list[dict[str, Any]] = found.get("items") or []
        return items

    async def patch(
        self, plural: str, name: str, patch: dict[str, Any], sub: str | None = None
    ) -> dict[str, Any]:
        patched: dict[str, Any] = await self._send(
            "PATCH",
            self.path(plural, name, sub),
            content=json.dumps(patch),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        return patched

    async def delete(self, plural: str, name: str, *, propagation: str = "Background") -> None:
        await self._send(
            "DELETE",
            self.path(plural, name),
            json={"propagationPolicy": propagation},
        )

    async def wait_for(
        self,
        plural: str,
        name: str,
        check: Callable[[dict[str, Any] | None], Any],
        *,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Poll until ``check(object or None)`` is truthy; returns the object."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: dict[str, Any] | None = None
        while loop.time() < deadline:
            last = await self.get(plural, name)
            if check(last):
                return last or {}
            await asyncio.sleep(0.2)
        raise AssertionError(f"{plural}/{name} never satisfied the check; last seen: {last}")

    async def events(self, involved: str) -> list[dict[str, Any]]:
        """Events about the object named ``involved`` in this namespace."""
        return [e for e in await self.list("events") if e["involvedObject"]["name"] == involved]


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    """The status condition of ``type_`` of ``obj``, if any."""
    for found in ((obj or {}).get("status") or {}).get("conditions") or []:
        if found.get("type") == type_:
            return dict(found)
    return None
