"""Many pod addresses on one machine: a network namespace the bench creates, for fake pods.

A real Service's pods each have their own address and share one port, so its EndpointSlice
lists them all (one slice for up to 100 pods). Fake pods sharing this machine's one address
must differ by port, and a slice has one port list, so the bench needed one slice per pod:
ten times the slices of a real cluster, each watched and kept by the operator.

This gives every fake pod its own address inside one network namespace: the namespace routes
a whole block to itself (a ``local`` route on its ``lo``, so any address of the block can be
bound without adding 2,000 addresses), and a veth pair joins it to the host, which routes the
block through the namespace's end of the veth from a gateway address of its own. Nothing leaves
the machine: the block is reachable only through the veth, and the namespace has no route but
back to the gateway.

A thread enters the namespace with ``setns`` (network namespaces are per thread), so sockets it
then opens live there while the rest of the process stays on the host. Needs root and
iproute2. One bench at a time (a lock under ``/run``); leftovers of a killed bench are removed
by the next.
"""

from __future__ import annotations

import ctypes
import fcntl
import ipaddress
import os
import shutil
import subprocess
from pathlib import Path
from types import TracebackType

#: Pod addresses: 10.245.0.0/20 (outside the process kubelet's 10.244.0.0/16).
BLOCK = ipaddress.IPv4Network("10.245.0.0/20")
#: The host's end of the veth, outside the block.
GATEWAY = "10.245.16.1"
#: The namespace's end: the host's one next hop to the whole block. Routed to the veth directly,
#: the block's 2,000 addresses would each take a neighbour (ARP) entry on the host, past the
#: kernel's default table size of 1,024 (``neighbor table overflow``: connections time out).
NEXT_HOP = "10.245.16.2"
NETNS = "modelops-bench-pods"
HOST_LINK = "mobench0"
LOCK = Path("/run/modelops-bench-pods.lock")
_CLONE_NEWNET = 0x40000000


class PodNetworkError(RuntimeError):
    """The namespace cannot be made here (not root, no iproute2, another bench holds it)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise PodNetworkError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def pod_address(index: int) -> str:
    """The address of fake pod ``index``: 250 a /24, never a .0 or .255."""
    address = f"10.245.{index // 250}.{index % 250 + 1}"
    if ipaddress.IPv4Address(address) not in BLOCK:
        raise PodNetworkError(f"fake pod {index} is past the {BLOCK} block (4,000 pods)")
    return address


class PodNetwork:
    """The namespace, its veth and routes while in the ``with`` block; all removed after."""

    def __init__(self) -> None:
        self._lock_fd: int | None = None

    def __enter__(self) -> PodNetwork:
        if os.geteuid() != 0:
            raise PodNetworkError("fake pods on their own addresses need root (ip netns, veth)")
        if shutil.which("ip") is None:
            raise PodNetworkError("fake pods on their own addresses need iproute2's `ip`")
        fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise PodNetworkError(f"another bench holds {LOCK}") from None
        self._lock_fd = fd
        try:
            self._remove()  # a killed bench's leftovers
            self._create()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _create(self) -> None:
        _ip("netns", "add", NETNS)
        _ip("link", "add", HOST_LINK, "type", "veth", "peer", "name", "eth0", "netns", NETNS)
        _ip("addr", "add", f"{GATEWAY}/32", "dev", HOST_LINK)
        _ip("link", "set", HOST_LINK, "up")
        _ip("-n", NETNS, "link", "set", "lo", "up")
        _ip("-n", NETNS, "addr", "add", f"{NEXT_HOP}/32", "dev", "eth0")
        _ip("-n", NETNS, "link", "set", "eth0", "up")
        # Every address of the block is the namespace's own (bindable, answered to ARP).
        _ip("-n", NETNS, "route", "add", "local", str(BLOCK), "dev", "lo")
        _ip("-n", NETNS, "route", "add", f"{GATEWAY}/32", "dev", "eth0", "scope", "link")
        _ip("route", "add", f"{NEXT_HOP}/32", "dev", HOST_LINK, "scope", "link")
        _ip("route", "add", str(BLOCK), "via", NEXT_HOP, "dev", HOST_LINK, "src", GATEWAY)

    def _remove(self) -> None:
        _ip("route", "del", str(BLOCK), check=False)
        _ip("link", "del", HOST_LINK, check=False)  # removes its peer in the namespace too
        _ip("netns", "del", NETNS, check=False)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._lock_fd is None:
            return
        self._remove()
        os.close(self._lock_fd)
        self._lock_fd = None

    @staticmethod
    def enter_in_this_thread() -> None:
        """Move the calling thread (only) into the namespace: sockets it opens from now on
        live there."""
        libc = ctypes.CDLL(None, use_errno=True)
        with open(f"/var/run/netns/{NETNS}", "rb") as handle:
            if libc.setns(handle.fileno(), _CLONE_NEWNET) != 0:
                errno = ctypes.get_errno()
                raise PodNetworkError(f"setns into {NETNS}: {os.strerror(errno)}")
