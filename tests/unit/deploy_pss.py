"""The "restricted" Pod Security Standard as a pure function over a pod spec.

Follows https://kubernetes.io/docs/concepts/security/pod-security-standards/ (baseline + restricted,
policy version latest): every rule the admission controller enforces for a Linux pod, phrased as
one message per violation so a failing test says exactly what to fix.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: Volume types the restricted profile allows.
ALLOWED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
#: Sysctls the baseline profile allows.
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
ALLOWED_SECCOMP = frozenset({"RuntimeDefault", "Localhost"})
ALLOWED_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
ALLOWED_APPARMOR = frozenset({"RuntimeDefault", "Localhost"})


def _containers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(field) or []:
            yield f"{field}[{container.get('name')}]", container


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """Every way `spec` (a PodSpec as a dict) breaks the restricted Pod Security Standard."""
    found: list[str] = []
    pod_sc: dict[str, Any] = spec.get("securityContext") or {}

    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            found.append(f"{field} must not be true")
    if pod_sc.get("windowsOptions", {}).get("hostProcess"):
        found.append("securityContext.windowsOptions.hostProcess must not be true")
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        for kind in kinds - ALLOWED_VOLUME_TYPES:
            found.append(f"volume {volume.get('name')!r} has forbidden type {kind}")
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            found.append(f"sysctl {sysctl.get('name')!r} is not allowed")
    if pod_sc.get("runAsUser") == 0:
        found.append("securityContext.runAsUser must not be 0")
    found += _selinux("securityContext", pod_sc)
    found += _apparmor("securityContext", pod_sc)
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in ALLOWED_SECCOMP:
        found.append(f"securityContext.seccompProfile.type {pod_seccomp!r} is not allowed")

    for where, container in _containers(spec):
        sc: dict[str, Any] = container.get("securityContext") or {}
        if sc.get("privileged"):
            found.append(f"{where}: privileged must not be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where}: securityContext.allowPrivilegeEscalation must be false")
        run_as_non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if sc.get("runAsNonRoot") is False or run_as_non_root is not True:
            found.append(f"{where}: runAsNonRoot must be true (pod or container)")
        if sc.get("runAsUser") == 0:
            found.append(f"{where}: securityContext.runAsUser must not be 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type")
        if seccomp is not None and seccomp not in ALLOWED_SECCOMP:
            found.append(f"{where}: seccompProfile.type {seccomp!r} is not allowed")
        if seccomp is None and pod_seccomp is None:
            found.append(f"{where}: seccompProfile must be RuntimeDefault or Localhost")
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"{where}: capabilities.drop must contain ALL")
        for added in capabilities.get("add") or []:
            if added != "NET_BIND_SERVICE":
                found.append(f"{where}: capability {added!r} must not be added")
        if sc.get("procMount", "Default") != "Default":
            found.append(f"{where}: procMount must be Default")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                found.append(f"{where}: hostPort {port['hostPort']} is not allowed")
        found += _selinux(f"{where}: securityContext", sc)
        found += _apparmor(f"{where}: securityContext", sc)
    return found


def _selinux(where: str, sc: dict[str, Any]) -> list[str]:
    options = sc.get("seLinuxOptions") or {}
    found = []
    if options.get("type", "") not in ALLOWED_SELINUX_TYPES:
        found.append(f"{where}.seLinuxOptions.type {options['type']!r} is not allowed")
    for key in ("user", "role"):
        if options.get(key):
            found.append(f"{where}.seLinuxOptions.{key} must not be set")
    return found


def _apparmor(where: str, sc: dict[str, Any]) -> list[str]:
    kind = (sc.get("appArmorProfile") or {}).get("type")
    if kind is not None and kind not in ALLOWED_APPARMOR:
        return [f"{where}.appArmorProfile.type {kind!r} is not allowed"]
    return []


def hardening_violations(spec: dict[str, Any]) -> list[str]:
    """Beyond the standard: our own pods must run with a read-only root filesystem, a numeric
    non-root UID and a writable emptyDir at /tmp (the image sets TMPDIR=/tmp)."""
    found: list[str] = []
    pod_sc: dict[str, Any] = spec.get("securityContext") or {}
    empty_dirs = {v["name"] for v in spec.get("volumes") or [] if "emptyDir" in v}
    for where, container in _containers(spec):
        sc: dict[str, Any] = container.get("securityContext") or {}
        if sc.get("readOnlyRootFilesystem") is not True:
            found.append(f"{where}: readOnlyRootFilesystem must be true")
        uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
        if not isinstance(uid, int) or uid == 0:
            found.append(f"{where}: runAsUser must be a numeric non-root UID")
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}
        if mounts.get("/tmp") not in empty_dirs:
            found.append(f"{where}: /tmp must be an emptyDir mount")
    return found
