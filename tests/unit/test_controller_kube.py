"""The controller's API client: who it says it is, and how it treats a throttled request.

The real ``kubernetes`` ApiClient serialises each request (so header and query handling are the
library's own); only the network call is replaced by a recording fake.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kopf
import kubernetes
import pytest
from kopf._cogs.clients.auth import APIContext

from modelops import __version__
from modelops.controller.handlers import IdentifiedConnectionInfo
from modelops.controller.kube import DEPLOYMENTS, MODEL_DEPLOYMENTS, Kube, KubeError


class FakeResponse:
    """What ``ApiClient.call_api`` returns: status, reason, headers and a body."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None):
        self.status = status
        self.reason = "Too Many Requests" if status == 429 else "OK"
        self.headers = headers or {}
        self._data = json.dumps(body).encode() if body is not None else b""

    def read(self) -> bytes:
        return self._data


class RecordingApi(kubernetes.client.ApiClient):  # type: ignore[misc]
    """The real client with the network replaced: records requests, answers from a script."""

    def __init__(self, responses: list[FakeResponse] | None = None) -> None:
        super().__init__(kubernetes.client.Configuration(host="https://cluster.test"))
        self.responses = list(responses or [])
        self.sent: list[tuple[str, str, dict[str, str]]] = []

    def call_api(self, method: str, url: str, header_params: Any = None, **_: Any) -> Any:
        self.sent.append((method, url, dict(header_params or {})))
        return self.responses.pop(0) if self.responses else FakeResponse(200, {"kind": "X"})


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_every_write_names_the_field_manager_and_reads_do_not() -> None:
    api = RecordingApi()
    kube = Kube(api)
    kube.create(DEPLOYMENTS, "ml", {"metadata": {"name": "iris"}})
    kube.patch(DEPLOYMENTS, "ml", "iris", {"spec": {"replicas": 2}})
    kube.patch_status(MODEL_DEPLOYMENTS, "ml", "iris", {"phase": "Ready"})
    kube.get(DEPLOYMENTS, "ml", "iris")
    kube.list(DEPLOYMENTS, "ml", {"app": "x"})
    writes = [(m, query_of(url)) for m, url, _ in api.sent if m in ("POST", "PATCH")]
    assert len(writes) == 3
    assert all(query["fieldManager"] == ["modelops"] for _, query in writes)
    reads = [query_of(url) for m, url, _ in api.sent if m == "GET"]
    assert all("fieldManager" not in query for query in reads)
    assert reads[1]["labelSelector"] == ["app=x"]


def test_every_request_carries_our_user_agent() -> None:
    api = RecordingApi()
    kube = Kube(api)
    kube.get(DEPLOYMENTS, "ml", "iris")
    kube.create(DEPLOYMENTS, "ml", {"metadata": {"name": "iris"}})
    assert [headers["User-Agent"] for _, _, headers in api.sent] == [f"modelops/{__version__}"] * 2


async def test_kopfs_own_requests_carry_our_user_agent() -> None:
    """Kopf builds its HTTP session from the login handler's result; the API server then records
    Kopf's writes (which name no fieldManager) under the User-Agent's product name."""
    plain = kopf.ConnectionInfo(server="https://cluster.test", token="secret")
    info = IdentifiedConnectionInfo.of(plain)
    assert info.as_http_headers() == {
        "Authorization": "Bearer secret",
        "User-Agent": f"modelops/{__version__}",
    }
    assert info == IdentifiedConnectionInfo.of(plain)  # Kopf's vault compares credentials
    context = APIContext(info)
    try:
        assert context.session.headers["User-Agent"] == f"modelops/{__version__}"
    finally:
        await context.close()


def test_connection_failures_are_kube_errors() -> None:
    class Down(RecordingApi):
        def call_api(self, method: str, url: str, header_params: Any = None, **_: Any) -> Any:
            raise OSError("connection refused")

    with pytest.raises(KubeError) as raised:
        Kube(Down()).get(DEPLOYMENTS, "ml", "iris")
    assert raised.value.status == 0


STORAGE_INITIALISING = {
    "kind": "Status",
    "status": "Failure",
    "message": "storage is (re)initializing",
    "reason": "TooManyRequests",
    "code": 429,
}


def test_a_throttled_request_is_resent_after_retry_after_capped() -> None:
    api = RecordingApi(
        [
            FakeResponse(429, STORAGE_INITIALISING, {"Retry-After": "1"}),
            FakeResponse(429, STORAGE_INITIALISING, {"Retry-After": "3600"}),
            FakeResponse(201, {"metadata": {"name": "iris"}}),
        ]
    )
    waits: list[float] = []
    kube = Kube(api, sleep=waits.append)
    created = kube.create(DEPLOYMENTS, "ml", {"metadata": {"name": "iris"}})
    assert created == {"metadata": {"name": "iris"}}
    assert waits == [1.0, 5.0]  # the server's hint, capped
    assert [m for m, _, _ in api.sent] == ["POST"] * 3
    assert kube.requests == 3


def test_a_request_throttled_every_time_fails_after_a_few_attempts() -> None:
    api = RecordingApi([FakeResponse(429, STORAGE_INITIALISING) for _ in range(10)])
    waits: list[float] = []
    with pytest.raises(KubeError) as raised:
        Kube(api, sleep=waits.append).get(MODEL_DEPLOYMENTS, "ml", "iris")
    assert raised.value.status == 429
    assert "storage is (re)initializing" in str(raised.value)
    assert len(api.sent) == 4
    assert waits == [0.5, 1.0, 2.0]  # no Retry-After: a short doubling wait


def test_other_errors_are_not_resent() -> None:
    api = RecordingApi([FakeResponse(500, {"message": "etcd timeout"})])
    with pytest.raises(KubeError):
        Kube(api, sleep=lambda _: None).get(DEPLOYMENTS, "ml", "iris")
    assert len(api.sent) == 1
