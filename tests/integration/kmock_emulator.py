"""A KMock emulator realistic enough for Kopf and for the operator's tests (see TESTING.md).

Plain KMock 0.8 stores bodies as given. A real API server also:
- fills ``metadata.uid``, ``resourceVersion``, ``creationTimestamp``, ``generation`` and the
  namespace from the URL on create, and honours ``generateName``;
- ignores ``status`` on create and on PATCHes of the main resource, and ignores everything but
  ``status`` on PATCHes of the ``/status`` subresource;
- bumps ``resourceVersion`` on every change and ``generation`` when ``spec`` changes;
- garbage-collects objects whose owner (by ``ownerReferences[].uid``) was deleted.

This subclass adds exactly that. The operator's tests run on the real control plane
(tests/kube_testbed); this emulator is kept as the reference of ``benchmarks/operator_bench.py``
(run without ``--real``), so that its figures can be set beside the real server's.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import enums

GROUP = "modelops.dev"
VERSION = "v1alpha1"


@attrs.define(kw_only=True)
class RealisticKubernetes(kmock.KubernetesEmulator):
    """KMock's emulator plus the API-server behaviour Kopf and the operator rely on."""

    _versions: Any = attrs.field(factory=lambda: itertools.count(1000), init=False)
    namespaces: set[str] = attrs.field(factory=lambda: {"default"})
    history_limit: int | None = None
    """Keep only this many requests in KMock's own history (None: all). KMock 0.8 matches every
    request against its whole history, which is quadratic; the benchmark keeps a short history
    and reads ``journal`` instead."""
    journal: list[Any] = attrs.field(factory=list)
    """Every request, appended as it arrives (a plain list, cheap at any size)."""
    lost_writes: list[Any] = attrs.field(factory=list)
    """Predicates on requests: the first write one matches fails with a 500 *before* it is
    stored (a KMock reaction cannot do that: the emulator stores the object regardless)."""

    def lose_next_write(self, predicate: Any) -> list[Any]:
        """Make the next write matching ``predicate`` fail unstored; returns a list that gets the
        lost request appended (so the test can wait for it)."""
        lost: list[Any] = []
        self.lost_writes.append((predicate, lost))
        return lost

    async def __call__(self, raw_request: Any) -> Any:
        # KMock 0.8 cannot parse the cluster-scoped /api/v1/namespaces, which Kopf lists and
        # watches to match its namespace patterns: serve it here.
        if raw_request.path.rstrip("/") == "/api/v1/namespaces":
            return await self._serve_namespaces(raw_request)
        return await super().__call__(raw_request)

    async def _serve_namespaces(self, raw_request: Any) -> Any:
        items = [
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "uid": f"ns-{name}", "resourceVersion": "1"},
                "status": {"phase": "Active"},
            }
            for name in sorted(self.namespaces)
        ]
        if raw_request.query.get("watch") not in ("true", "1"):
            return aiohttp.web.json_response(
                {
                    "apiVersion": "v1",
                    "kind": "NamespaceList",
                    "metadata": {"resourceVersion": "1"},
                    "items": items,
                }
            )
        response = aiohttp.web.StreamResponse()
        await response.prepare(raw_request)
        for item in items:
            await response.write(json.dumps({"type": "ADDED", "object": item}).encode() + b"\n")
        await asyncio.Event().wait()  # no namespace ever changes; cancelled on shutdown
        return response

    def _stored(self, request: Any) -> Any:
        key = (request.resource, request.namespace, request.name)
        if key in self.objects and not self.objects[key].deleted:
            return self.objects[key]
        return None

    async def _handle(self, request: Any) -> Any:
        self.journal.append(request)
        if self.history_limit is not None and len(self._requests) > self.history_limit:
            del self._requests[: -self.history_limit]
        deleted_uid: str | None = None
        for fault in list(self.lost_writes):
            predicate, lost = fault
            if request.action in WRITE_ACTIONS and predicate(request):
                self.lost_writes.remove(fault)
                lost.append(request)
                raise kmock.KubernetesError(
                    status=500, reason="InternalError", message="injected: write lost"
                )
        if (
            request.resource is not None
            and request.action == enums.action.UPDATE
            and isinstance(request.data, list)
        ):
            # A JSON Patch (RFC 6902, Kopf uses it for finalizers): apply it here and hand
            # KMock the equivalent merge patch.
            stored = self._stored(request)
            if stored is None:
                raise kmock.KubernetesObjectNotFoundError()
            before = copy.deepcopy(stored.raw)
            after = _apply_json_patch(copy.deepcopy(before), request.data)
            object.__setattr__(request, "data", _merge_patch_between(before, after))
        if request.resource is not None and isinstance(request.data, dict):
            data = request.data
            if request.action == enums.action.CREATE:
                self._fill_create(request, data)
            elif request.action == enums.action.UPDATE:
                self._fill_patch(request, data)
        if request.resource is not None and request.action in (
            enums.action.DELETE,
            enums.action.UPDATE,
        ):
            stored = self._stored(request)
            if stored is not None:
                deleted_uid = stored.get("metadata", {}).get("uid")
        response = await super()._handle(request)
        # Deleted now (directly, or by the patch that removed its last finalizer)?
        if deleted_uid is not None and self._stored(request) is None:
            await self._collect_garbage({deleted_uid})
        return response

    def _fill_create(self, request: Any, data: dict[str, Any]) -> None:
        meta = data.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if request.namespace:
            meta["namespace"] = request.namespace
        meta["uid"] = str(uuid.uuid4())
        meta["resourceVersion"] = str(next(self._versions))
        meta["creationTimestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        meta["generation"] = 1
        data.pop("status", None)

    def _fill_patch(self, request: Any, data: dict[str, Any]) -> None:
        stored = self._stored(request)
        if request.subresource == "status":
            for key in list(data):
                if key != "status":
                    del data[key]
        else:
            data.pop("status", None)
            given = data.get("metadata")
            for key in ("uid", "creationTimestamp", "generation", "resourceVersion"):
                if isinstance(given, dict):
                    given.pop(key, None)
        meta = data.setdefault("metadata", {})
        meta["resourceVersion"] = str(next(self._versions))
        if stored is not None and request.subresource is None and "spec" in data:
            before = copy.deepcopy(stored.get("spec"))
            after = _merge(copy.deepcopy(before) if before is not None else {}, data["spec"])
            if after != before:
                meta["generation"] = int(stored.get("metadata", {}).get("generation", 1)) + 1

    async def _collect_garbage(self, uids: set[str]) -> None:
        """Delete every object owned by one of ``uids`` (cascading, like the garbage collector)."""
        while uids:
            owned = [
                key
                for key in list(self.objects)
                if not self.objects[key].deleted
                and any(
                    ref.get("uid") in uids
                    for ref in self.objects[key].get("metadata", {}).get("ownerReferences") or []
                )
            ]
            uids = set()
            for key in owned:
                obj = self.objects[key]
                raw = obj.raw
                uids.add(raw.get("metadata", {}).get("uid"))
                obj.delete()
                await self._buses[key[0]].put({"type": "DELETED", "object": raw})


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def _apply_json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902 add/replace/remove/test (what clients send to Kubernetes)."""
    for op in ops:
        *parents, last = _pointer(op["path"])
        target = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
        kind = op["op"]
        if kind == "test":
            current = target[int(last)] if isinstance(target, list) else target.get(last)
            if current != op.get("value"):
                # What the API server answers (Kopf retries on its next cycle).
                raise kmock.KubernetesError(
                    status=422, reason="Invalid", message=f"test of {op['path']} failed"
                )
        elif kind in ("add", "replace"):
            if isinstance(target, list):
                if last == "-":
                    target.append(op["value"])
                elif kind == "add":
                    target.insert(int(last), op["value"])
                else:
                    target[int(last)] = op["value"]
            else:
                target[last] = op["value"]
        elif kind == "remove":
            if isinstance(target, list):
                del target[int(last)]
            else:
                target.pop(last, None)
        else:
            raise kmock.KubernetesError(status=422, reason="Invalid", message=f"op {kind}")
    return doc


def _merge_patch_between(before: Any, after: Any) -> Any:
    """The JSON merge patch that turns ``before`` into ``after``."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return after
    patch: dict[str, Any] = {}
    for key in before:
        if key not in after:
            patch[key] = None
    for key, value in after.items():
        if key not in before:
            patch[key] = value
        elif before[key] != value:
            patch[key] = _merge_patch_between(before[key], value)
    return patch


def _merge(base: Any, patch: Any) -> Any:
    if not isinstance(patch, dict) or not isinstance(base, dict):
        return patch
    for key, value in patch.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = _merge(base.get(key), value)
    return base


def declare_resources(server: Any) -> None:
    """Built-in resources plus both custom resources (namespaced, with a status subresource)."""
    server.resources.load_bundled()
    verbs = {"get", "list", "watch", "create", "patch", "update", "delete"}
    for plural, kind, singular in (
        ("modeldeployments", "ModelDeployment", "modeldeployment"),
        ("driftpolicies", "DriftPolicy", "driftpolicy"),
    ):
        server.resources[f"{GROUP}/{VERSION}/{plural}"] = kmock.ResourceInfo(
            kind=kind, singular=singular, namespaced=True, subresources={"status"}, verbs=verbs
        )


def kubeconfig(url: str) -> str:
    """A kubeconfig (YAML is a superset of JSON) pointing at the emulator."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kmock", "cluster": {"server": str(url).rstrip("/")}}],
            "users": [{"name": "kmock", "user": {"token": "test"}}],
            "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}],
            "current-context": "kmock",
        }
    )


VERBS = {
    enums.action.LIST: "list",
    enums.action.WATCH: "watch",
    enums.action.FETCH: "get",
    enums.action.CREATE: "create",
    enums.action.DELETE: "delete",
}


def rbac_triple(request: Any) -> tuple[str, str, str] | None:
    """(verb, group, resource[/subresource]) of an API request, as RBAC sees it."""
    if request.resource is None or request.action is None or not request.resource.plural:
        return None  # not a resource request (discovery is open to every authenticated user)
    verb = VERBS.get(request.action)
    if request.action == enums.action.UPDATE:
        verb = "patch" if str(request.method).upper().endswith("PATCH") else "update"
    resource = request.resource.plural + (f"/{request.subresource}" if request.subresource else "")
    return verb or str(request.action), request.resource.group or "", resource


WRITE_ACTIONS = {enums.action.CREATE, enums.action.UPDATE, enums.action.DELETE}


def is_write(request: Any) -> bool:
    return request.action in WRITE_ACTIONS
