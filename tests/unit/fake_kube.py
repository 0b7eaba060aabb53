"""An in-memory fake of the controller's Kubernetes boundary (``modelops.controller.kube.Kube``).

It behaves like the API server where the controller can tell the difference:

- objects are stored as JSON dicts (every body round-trips through ``json``, so a value the
  real client could not send fails here too) and every read returns a copy;
- ``create`` fills ``uid``, ``resourceVersion``, ``creationTimestamp`` and ``generation``, drops
  ``status`` (the status subresource is written separately) and raises ``ConflictError`` (409)
  when the name is taken;
- ``patch`` is an RFC 7386 JSON merge patch (dicts merge, lists are replaced, ``None``
  deletes); on the main resource it ignores ``status``, on the ``status`` subresource it changes
  only ``status``; a ``metadata.resourceVersion`` in the patch is a precondition (409 when
  stale); ``generation`` moves when ``spec`` changes; patching a missing object raises
  ``NotFoundError`` (404);
- ``list`` filters by namespace and by every label of the selector.

Tests set up state with ``put`` (an object as it is on the server, status included), change it
with ``update_status``/``delete``, and read what the controller did in ``writes``. ``on_create``
hooks run before a create is applied (e.g. another operator replica creating the same Job first).
"""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from modelops.controller.kube import ConflictError, Kube, NotFoundError, ResourceType
from modelops.resources import labels as label_keys

Key = tuple[str, str, str]
"""(resource path prefix, namespace, name)."""
CreateHook = Callable[[ResourceType, str, dict[str, Any]], None]


def _kind_key(kind: ResourceType) -> str:
    return f"{kind.group}/{kind.version}/{kind.plural}"


def _json(value: Any) -> Any:
    """A deep copy through JSON, as if it had crossed the wire."""
    return json.loads(json.dumps(value))


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: apply ``patch`` to ``target`` (returns the result; ``target`` is not changed)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class FakeKube(Kube):
    """Objects in a dict; the same methods, errors and server-filled fields as the real client."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        # No connection pool: the real __init__ only keeps the API client.
        self._clock = clock or (lambda: datetime.now(UTC))
        self._objects: dict[Key, dict[str, Any]] = {}
        self._versions = itertools.count(1)
        self.requests = 0
        self.writes: list[tuple[str, str, str, dict[str, Any]]] = []
        """(verb, plural, name, body or patch) of every create/patch the controller sent."""
        self.on_create: list[CreateHook] = []

    # --- the Kube interface ------------------------------------------------------------------

    def close(self) -> None:
        pass

    def get(self, kind: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        self.requests += 1
        found = self._objects.get((_kind_key(kind), namespace, name))
        return _json(found) if found is not None else None

    def list(
        self, kind: ResourceType, namespace: str, selector: dict[str, str]
    ) -> list[dict[str, Any]]:
        self.requests += 1
        prefix = _kind_key(kind)
        return [
            _json(obj)
            for (k, ns, _), obj in sorted(self._objects.items())
            if k == prefix
            and ns == namespace
            and label_keys.matches(obj["metadata"].get("labels"), selector)
        ]

    def create(self, kind: ResourceType, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.requests += 1
        body = _json(body)
        for hook in list(self.on_create):
            hook(kind, namespace, body)
        name = body.get("metadata", {}).get("name")
        if not name:
            raise ValueError("the fake supports only named creates")
        self.writes.append(("create", kind.plural, name, body))
        key = (_kind_key(kind), namespace, name)
        if key in self._objects:
            raise ConflictError(
                409, f"POST {kind.path(namespace)}: {kind.plural} {name!r} already exists"
            )
        body.pop("status", None)
        self._objects[key] = self._stamp(body, namespace, new=True)
        return _json(self._objects[key])

    def patch(
        self,
        kind: ResourceType,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        self.requests += 1
        patch = _json(patch)
        verb = "patch" if subresource is None else f"patch/{subresource}"
        self.writes.append((verb, kind.plural, name, patch))
        key = (_kind_key(kind), namespace, name)
        live = self._objects.get(key)
        if live is None:
            raise NotFoundError(404, f"PATCH {kind.path(namespace, name, subresource)}: not found")
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != live["metadata"]["resourceVersion"]:
            raise ConflictError(409, f"PATCH {kind.path(namespace, name)}: object changed")
        if subresource == "status":
            updated = dict(live)
            updated["status"] = merge_patch(live.get("status") or {}, patch.get("status") or {})
        elif subresource is None:
            patch.pop("status", None)
            updated = merge_patch(live, patch)
            if updated.get("spec") != live.get("spec"):
                updated["metadata"]["generation"] = int(live["metadata"]["generation"]) + 1
        else:
            raise NotImplementedError(subresource)
        self._objects[key] = self._stamp(updated, namespace, new=False)
        return _json(self._objects[key])

    # --- test helpers (no controller calls these) ---------------------------------------------

    def put(self, kind: ResourceType, body: dict[str, Any]) -> dict[str, Any]:
        """Store ``body`` as it is on the server (status kept); fills what the server fills."""
        body = _json(body)
        namespace = body["metadata"]["namespace"]
        key = (_kind_key(kind), namespace, body["metadata"]["name"])
        self._objects[key] = self._stamp(body, namespace, new=key not in self._objects)
        return _json(self._objects[key])

    def update_status(
        self, kind: ResourceType, namespace: str, name: str, status: dict[str, Any]
    ) -> None:
        """Another controller (Job, Deployment) merges ``status`` into the object."""
        key = (_kind_key(kind), namespace, name)
        live = self._objects[key]
        live["status"] = merge_patch(live.get("status") or {}, _json(status))
        self._stamp(live, namespace, new=False)

    def apply(
        self, kind: ResourceType, namespace: str, name: str, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """A user's merge patch (``kubectl patch --type merge``): not logged in ``writes``."""
        key = (_kind_key(kind), namespace, name)
        updated = merge_patch(self._objects[key], _json(patch))
        if updated.get("spec") != self._objects[key].get("spec"):
            updated["metadata"]["generation"] = int(updated["metadata"]["generation"]) + 1
        self._objects[key] = self._stamp(updated, namespace, new=False)
        return _json(self._objects[key])

    def delete(self, kind: ResourceType, namespace: str, name: str) -> None:
        del self._objects[(_kind_key(kind), namespace, name)]

    def objects(self, kind: ResourceType, namespace: str) -> list[dict[str, Any]]:
        """Every stored object of ``kind`` in ``namespace`` (no request counted)."""
        prefix = _kind_key(kind)
        return [
            _json(obj)
            for (k, ns, _), obj in sorted(self._objects.items())
            if k == prefix and ns == namespace
        ]

    def created(self, kind: ResourceType) -> list[str]:
        """Names the controller asked to create, in order (failed attempts included)."""
        return [
            name
            for verb, plural, name, _ in self.writes
            if verb == "create" and plural == kind.plural
        ]

    def patches(
        self, kind: ResourceType, *, subresource: str | None = None
    ) -> list[dict[str, Any]]:
        verb = "patch" if subresource is None else f"patch/{subresource}"
        return [body for v, plural, _, body in self.writes if v == verb and plural == kind.plural]

    # --- internals ----------------------------------------------------------------------------

    def _stamp(self, obj: dict[str, Any], namespace: str, *, new: bool) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        meta["namespace"] = namespace
        if new:
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", self._clock().strftime("%Y-%m-%dT%H:%M:%SZ"))
            meta.setdefault("generation", 1)
        meta["resourceVersion"] = str(next(self._versions))
        return obj
