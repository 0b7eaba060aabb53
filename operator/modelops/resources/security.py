"""Security contexts meeting the "restricted" Pod Security Standard.

restricted requires: runAsNonRoot, no privilege escalation, every capability dropped and a
RuntimeDefault (or Localhost) seccomp profile. We add a read-only root filesystem (the image needs
only /tmp, mounted as an emptyDir) and the image's numeric user, so runAsNonRoot can be verified
by the kubelet without inspecting the image.
"""

from __future__ import annotations

from typing import Any, Final

#: The numeric user and group of the modelops image (Dockerfile: USER 10001:10001).
RUN_AS_USER: Final = 10001
RUN_AS_GROUP: Final = 10001


def pod_security_context() -> dict[str, Any]:
    """Pod-level securityContext: non-root identity, group-owned volumes, RuntimeDefault seccomp."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_GROUP,
        "fsGroup": RUN_AS_GROUP,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """Container-level securityContext: nothing to escalate, nothing to write outside volumes."""
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
