"""Objects as the operator's watches last delivered them (Kopf indexes), read instead of a GET.

A resync of a ModelDeployment that changed nothing, and a drift evaluation, each asked the API
server for objects the operator already watches: two GETs per ModelDeployment a minute and an
EndpointSlice LIST per evaluation, at 2,000 of each most of the operator's requests. Kopf
keeps an index of every watched object of a kind (``handlers``); these views read it. An object
the index does not hold (not delivered yet, or outside the watch's label selector) is asked
of the API server as before, so a stale or missing entry costs a request, never a wrong answer
for long: a watch delivers every change within moments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Generic, TypeVar

Key = tuple[str | None, str]
"""(namespace, name) of an object, or (namespace, Service name) of EndpointSlices."""


def lean(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the operator keeps of a watched object in memory (not its managedFields)."""
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    return {**body, "metadata": meta}


V = TypeVar("V")


class Watched(Generic[V]):
    """One Kopf index keyed by ``Key``: what it keeps of each watched object (the object, or
    a digest of it such as the ready endpoints of an EndpointSlice)."""

    def __init__(self, index: Mapping[Key, Iterable[V]]) -> None:
        self._index = index

    def get(self, namespace: str, name: str) -> V | None:
        """The value, or None when the index does not hold the key."""
        return next(iter(self._index.get((namespace, name), ())), None)

    def all(self, namespace: str, name: str) -> list[V]:
        """Every value under the key (one per EndpointSlice of a Service), maybe none."""
        return list(self._index.get((namespace, name), ()))
