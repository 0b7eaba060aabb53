"""Volumes for ``pvc://`` URIs: each claim is mounted at ``<pvc root>/<claim>``.

That is exactly where ``modelops.storage.local_path`` looks for ``pvc://<claim>/<path>`` inside the
pod, so the server and the trainer need no further configuration than ``MODELOPS_PVC_ROOT``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from modelops.resources.names import dns_label
from modelops.storage import parse_uri


@dataclass(frozen=True)
class ClaimMount:
    """One PersistentVolumeClaim mounted into a container."""

    claim: str
    read_only: bool

    @property
    def volume_name(self) -> str:
        return dns_label(f"pvc-{self.claim}")

    def volume(self) -> dict[str, Any]:
        return {
            "name": self.volume_name,
            "persistentVolumeClaim": {"claimName": self.claim, "readOnly": self.read_only},
        }

    def mount(self, pvc_root: str) -> dict[str, Any]:
        return {
            "name": self.volume_name,
            "mountPath": f"{pvc_root.rstrip('/')}/{self.claim}",
            "readOnly": self.read_only,
        }


def claim_mounts(read_only: Iterable[str], read_write: Iterable[str] = ()) -> list[ClaimMount]:
    """One mount per distinct claim among the URIs; a claim written to anywhere is read-write."""
    writable = {parse_uri(u).claim for u in read_write if parse_uri(u).scheme == "pvc"}
    readable = {parse_uri(u).claim for u in read_only if parse_uri(u).scheme == "pvc"}
    return [
        ClaimMount(claim, read_only=claim not in writable) for claim in sorted(readable | writable)
    ]


def tmp_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """The writable /tmp (an emptyDir) a read-only root filesystem needs: (volume, mount)."""
    return (
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the container's own scratch space
    )
