"""Owner references: what makes Kubernetes' garbage collector delete the children with the owner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Owner:
    """The identity of a custom resource that owns the objects built for it."""

    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str

    def reference(self) -> dict[str, Any]:
        """A controller owner reference (blocks the owner's foreground deletion until gone)."""
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def owns(self, obj: dict[str, Any]) -> bool:
        """Whether ``obj`` names this owner (by uid) among its owner references."""
        refs = obj.get("metadata", {}).get("ownerReferences") or []
        return any(ref.get("uid") == self.uid for ref in refs)

    @classmethod
    def of(cls, body: dict[str, Any]) -> Owner:
        """The owner identity of a resource body as the API returns it."""
        meta = body.get("metadata", {})
        return cls(
            api_version=str(body.get("apiVersion", "")),
            kind=str(body.get("kind", "")),
            name=str(meta.get("name", "")),
            namespace=str(meta.get("namespace", "")),
            uid=str(meta.get("uid", "")),
        )
