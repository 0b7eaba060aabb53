"""The only module that talks to the Kubernetes API (plus Kopf's own watching and Event posting).

Requests are raw JSON over the ``kubernetes`` client's authenticated connection pool: no model
classes, so a body round-trips unchanged and costs no deserialisation. Every write is a
``application/merge-patch+json`` PATCH or a POST, never an update (PUT), matching the RBAC rules in
``modelops.rbac``. Every write names the field manager ``modelops`` and every request carries the
User-Agent ``modelops/<version>``, so ``managedFields`` and the API server's audit log say which
writes are ours. Label selectors are sent to the server and re-checked here, which costs nothing
and keeps the result right even where the server ignored them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, cast

import kopf
import kubernetes
import orjson

from modelops import API_GROUP, API_VERSION, __version__
from modelops.resources import labels as label_keys

MERGE_PATCH: Final = "application/merge-patch+json"
#: The ``fieldManager`` of every write: ``managedFields`` then name us, not a client library.
FIELD_MANAGER: Final = "modelops"
#: Sent with every request. The API server also derives the field manager of writes that name
#: none from the part before the first "/", so Kopf's own writes are recorded as ``modelops`` too.
USER_AGENT: Final = f"{FIELD_MANAGER}/{__version__}"
_WRITES: Final = frozenset({"POST", "PATCH", "PUT"})
TOO_MANY_REQUESTS: Final = 429
#: Attempts of a request answered 429 before the error goes to the handler (which retries later).
THROTTLED_ATTEMPTS: Final = 4
#: Longest wait between them, whatever Retry-After asks: a handler thread must not block long.
RETRY_AFTER_CAP: Final = 5.0


@dataclass(frozen=True)
class ResourceType:
    """A Kubernetes resource by group, version and plural (namespaced)."""

    group: str
    version: str
    plural: str

    def path(self, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
        prefix = "/api" if not self.group else f"/apis/{self.group}"
        path = f"{prefix}/{self.version}/namespaces/{namespace}/{self.plural}"
        if name is not None:
            path += f"/{name}"
        if subresource is not None:
            path += f"/{subresource}"
        return path


DEPLOYMENTS: Final = ResourceType("apps", "v1", "deployments")
SERVICES: Final = ResourceType("", "v1", "services")
JOBS: Final = ResourceType("batch", "v1", "jobs")
PODS: Final = ResourceType("", "v1", "pods")
ENDPOINT_SLICES: Final = ResourceType("discovery.k8s.io", "v1", "endpointslices")
MODEL_DEPLOYMENTS: Final = ResourceType(API_GROUP, API_VERSION, "modeldeployments")
DRIFT_POLICIES: Final = ResourceType(API_GROUP, API_VERSION, "driftpolicies")


class KubeError(Exception):
    """A failed API request; ``status`` is the HTTP status (0 when none was received)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status
        self.message = message


class NotFoundError(KubeError):
    """HTTP 404."""


class ConflictError(KubeError):
    """HTTP 409: the object exists already (create) or changed meanwhile."""


class ClusterConfigError(Exception):
    """No way to reach a cluster: not in a pod, and no kubeconfig that can be read.

    Nothing fixes this by waiting, unlike an API server that does not answer (retried)."""


def kubeconfig_paths(environ: Mapping[str, str]) -> list[str]:
    """The kubeconfig files the client reads: ``$KUBECONFIG`` (a list) or ~/.kube/config."""
    listed = [os.path.expanduser(p) for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    home = environ.get("HOME") or os.path.expanduser("~")
    return listed or [os.path.join(home, ".kube", "config")]


def load_configuration(environ: Mapping[str, str] | None = None) -> Any:
    """The client configuration (in-cluster in a pod, else the kubeconfig), read without any
    request to the API server; ClusterConfigError says in one line what is missing or broken."""
    env = os.environ if environ is None else environ
    configuration = kubernetes.client.Configuration()
    if env.get("KUBERNETES_SERVICE_HOST"):
        try:
            kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
        except kubernetes.config.ConfigException as exc:
            raise ClusterConfigError(f"cannot use the pod's service account: {exc}") from exc
        return configuration
    paths = kubeconfig_paths(env)
    found = [p for p in paths if os.path.isfile(p)]
    hint = "start a local cluster with `make kind-up`, or set KUBECONFIG to a kubeconfig file"
    if not found:
        raise ClusterConfigError(
            "no cluster to connect to: KUBERNETES_SERVICE_HOST is unset (not in a pod) and "
            f"there is no kubeconfig at {os.pathsep.join(paths)}; {hint}"
        )
    try:
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=os.pathsep.join(found), client_configuration=configuration
        )
    except Exception as exc:  # ConfigException, YAML errors, bad base64 or certificate data
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ClusterConfigError(
            f"cannot use the kubeconfig {os.pathsep.join(found)}: {reason}; {hint}"
        ) from exc
    return configuration


class Kube:
    """Raw JSON access to the objects the controller reads and writes."""

    def __init__(
        self,
        api_client: Any,
        *,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api = api_client
        self._sleep = sleep
        # The client's default headers override the per-request ones, so set it there too.
        self._api.user_agent = USER_AGENT
        self._timeout = timeout
        self._lock = threading.Lock()
        self.requests = 0
        """Requests sent so far (for the benchmark and logs)."""

    @classmethod
    def connect(cls, *, timeout: float = 30.0, pool_size: int = 32) -> Kube:
        """In-cluster credentials when running in a pod, else ``$KUBECONFIG`` (or ~/.kube).

        ``pool_size`` connections are kept open to the API server: one per thread that may call
        at once (Kopf's handler threads). The client's default, 5 per CPU, makes urllib3 discard
        the connections of the threads beyond it ("Connection pool is full") and open new ones.
        """
        configuration = load_configuration()
        configuration.connection_pool_maxsize = pool_size
        return cls(kubernetes.client.ApiClient(configuration), timeout=timeout)

    def close(self) -> None:
        """Close the connection pool (so that shutdown does not wait for idle connections)."""
        self._api.close()

    # --- Requests --------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = content_type
        params = dict(query or {})
        if method in _WRITES:
            params["fieldManager"] = FIELD_MANAGER
        _, url, header_params, payload, _ = self._api.param_serialize(
            method,
            path,
            query_params=list(params.items()) or None,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        attempt = 1
        response, data = self._send(method, path, url, header_params, payload)
        while int(response.status) == TOO_MANY_REQUESTS and attempt < THROTTLED_ATTEMPTS:
            # Throttled (priority and fairness), or the storage is (re)initialising right after a
            # CRD install: the request was not processed, so sending it again is safe.
            self._sleep(retry_after(response, attempt))
            attempt += 1
            response, data = self._send(method, path, url, header_params, payload)
        status = int(response.status)
        if status >= 400:
            message = _status_message(data) or (response.reason or "")
            error = {404: NotFoundError, 409: ConflictError}.get(status, KubeError)
            raise error(status, f"{method} {path}: {message}")
        return orjson.loads(data) if data else None  # a third of json.loads's time here

    def _send(
        self, method: str, path: str, url: str, headers: Any, payload: Any
    ) -> tuple[Any, bytes]:
        """One HTTP exchange: the response and its body; a failed connection is a KubeError."""
        with self._lock:
            self.requests += 1
        try:
            response = self._api.call_api(
                method,
                url,
                header_params=headers,
                body=payload,
                _request_timeout=self._timeout,
            )
            data: bytes = response.read()
        except Exception as exc:  # urllib3 connection errors, timeouts
            raise KubeError(0, f"{method} {path} failed: {exc}") from exc
        return response, data

    def get(self, kind: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            found: dict[str, Any] = self._call("GET", kind.path(namespace, name))
        except NotFoundError:
            return None
        return found

    def list(
        self, kind: ResourceType, namespace: str, selector: dict[str, str]
    ) -> list[dict[str, Any]]:
        """Objects of ``kind`` in ``namespace`` carrying every label of ``selector``."""
        query = {"labelSelector": label_keys.selector(selector)} if selector else None
        found = self._call("GET", kind.path(namespace), query=query) or {}
        items: list[dict[str, Any]] = found.get("items") or []
        return [
            i for i in items if label_keys.matches(i.get("metadata", {}).get("labels"), selector)
        ]

    def create(self, kind: ResourceType, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body``; raises ConflictError when the name is taken."""
        created: dict[str, Any] = self._call("POST", kind.path(namespace), body=body)
        return created

    def patch(
        self,
        kind: ResourceType,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386): dicts merge, lists are replaced, None deletes."""
        patched: dict[str, Any] = self._call(
            "PATCH", kind.path(namespace, name, subresource), body=patch, content_type=MERGE_PATCH
        )
        return patched

    def patch_status(
        self, kind: ResourceType, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """Merge ``status`` into the status subresource."""
        return self.patch(kind, namespace, name, {"status": status}, subresource="status")


def retry_after(response: Any, attempt: int) -> float:
    """Seconds to wait before resending a throttled request: the server's Retry-After (in
    seconds; the API server sends 1) or a doubling default, capped at RETRY_AFTER_CAP."""
    headers = getattr(response, "headers", None) or {}
    try:
        wanted = float(str(headers["Retry-After"]))
    except (KeyError, ValueError):  # absent, or an HTTP date
        wanted = 0.5 * 2 ** (attempt - 1)
    return min(max(wanted, 0.0), RETRY_AFTER_CAP)


def _status_message(data: bytes | None) -> str:
    try:
        return str(orjson.loads(data or b"{}").get("message", ""))
    except (ValueError, AttributeError):
        return ""


def post_event(body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
    """Record an Event on ``body`` through Kopf's Event poster (batched, non-blocking)."""
    kopf.event(cast(kopf.Body, body), type=type_, reason=reason, message=message[:1024])
