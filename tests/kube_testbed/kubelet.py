"""A process kubelet: one node of the test cluster, whose pods are local processes.

Test support, not product. With it the real controllers of ``ControlPlane`` drive everything:
Deployment -> ReplicaSet -> Pods -> EndpointSlices, Job -> Pod -> Complete/Failed, namespace
deletion -> graceful pod deletion. It plays two parts:

- the scheduler: every pending Pod without ``spec.nodeName`` (default scheduler, no scheduling
  gates, a ``nodeSelector`` this node matches) is bound to this node with ``pods/binding``;
- the kubelet: every Pod bound to this node is run. Each container's ``command`` + ``args`` (with
  ``$(VAR)`` expansion) is a local process with the pod's environment, its stdout and stderr go to
  a log file under ``root``, probes are sent to the pod IP, and the pod's status is reported as a
  kubelet reports it (phase, conditions, container states, restarts, termination messages).

Networking: each pod gets its own network namespace and address, as a kubelet + CNI give it. A
veth pair joins it to the host with point-to-point /32 routes (no bridge: traffic through a Linux
bridge is dropped on these machines). Each kubelet claims one /22 block of 10.244.0.0/16 (a lock
file under ``/run``, so concurrent test runs on one machine do not collide); its gateway address
``host_address`` sits on every host veth and on the host's ``lo``, so pods can reach host services
listening on it (or on 0.0.0.0), and it is the node's InternalIP. While a kubelet runs,
10.244.0.0/16 is routed ``unreachable`` on the host, so traffic to a stale pod IP never leaves the
machine; pods have routes only to the gateway and to their kubelet's block. Pod-to-pod traffic is
forwarded by the host veths only (per-interface forwarding; the global ``ip_forward`` is not
touched). Services bound to the host's 127.0.0.1 (the API server, for instance) are out of a pod's
reach, and there is no kube-proxy: ClusterIPs do not answer.

What is *not* isolated, unlike a container: the filesystem (a process sees the host's files as
they are: a PVC volume's backing directory is its ``mountPath`` itself, created when missing;
emptyDir, hostPath and every other volume are just the host's directory at the mount path;
ConfigMap, Secret, projected and ServiceAccount token volumes are not materialised), the user
(processes run as the test's user, whatever ``securityContext`` says), resources (no limits), the
hostname, and Service environment variables (``enableServiceLinks``) are not injected. A process
starts from the host's PATH, HOME, locale and Python variables (``BASE_ENV_NAMES``) plus the pod's
env. The container's ``terminationMessagePath`` (default ``/dev/termination-log``) is rewritten
wherever it appears in an argument or an environment value (so ``--termination-log PATH`` and
``sh -c 'echo x > /dev/termination-log'`` both work) to a per-container file under ``root``; the
message is read from there when the process exits. The image is not pulled: without ``command``,
the ``entrypoints`` given for the image (else nothing) precede ``args``.

It needs root and iproute2 (``ip netns``). ``stop()`` kills every pod process and removes every
network namespace, veth, route and address it created; it is idempotent and also registered with
``atexit``. Leftovers of a kubelet that was killed outright are removed by the next kubelet that
claims the same block. The node is registered once (no heartbeats: the node lifecycle controller
does not run in the test control plane).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import fcntl
import json
import logging
import os
import platform
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from kube_testbed.controlplane import KUBE_VERSION, ControlPlane

POD_CIDR = "10.244.0.0/16"
#: 64 blocks of /22 (1020 pod addresses each) cover 10.244.0.0/16.
BLOCKS = 64
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"
MAX_MESSAGE_BYTES = 4096
FALLBACK_LOG_LINES = 80
FALLBACK_LOG_BYTES = 2048
MAX_GRACE_SECONDS = 10.0
TICK_SECONDS = 0.25
#: The host environment a pod process starts from (a container starts from its image's).
BASE_ENV_NAMES = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "PYENV_ROOT",
    "PYENV_VERSION",
    "VIRTUAL_ENV",
    "PYTHONPATH",
)
OWN_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class KubeletError(RuntimeError):
    """The process kubelet cannot run on this machine (or lost its footing)."""


class _ConfigError(Exception):
    """A container's configuration cannot be resolved yet (CreateContainerConfigError)."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise KubeletError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined names are replaced, ``$$`` is ``$``, and anything
    else (an undefined name, a lone ``$``) is kept as written."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2 : end]
                    out.append(env[name] if name in env else text[i : end + 1])
                    i = end + 1
                    continue
        out.append(char)
        i += 1
    return "".join(out)


# --- The API ----------------------------------------------------------------------------------


class _Api:
    """Raw JSON requests as the cluster admin (never through a proxy)."""

    def __init__(self, plane: ControlPlane, timeout: float = 15.0) -> None:
        self.client = httpx.Client(
            base_url=plane.url,
            verify=plane.ssl_context(),
            trust_env=False,
            timeout=timeout,
            headers={"Accept": "application/json"},
        )

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        content = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": content_type} if content is not None else {}
        response = self.client.request(
            method, path, content=content, params=params, headers=headers
        )
        try:
            data = response.json() if response.content else None
        except ValueError:
            data = response.text
        return response.status_code, data

    def close(self) -> None:
        self.client.close()


# --- The network ------------------------------------------------------------------------------


def _state_dir() -> Path:
    base = Path("/run") if os.access("/run", os.W_OK) else Path(tempfile.gettempdir())
    path = base / "modelops-testbed-kubelet"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


@dataclass
class _PodNet:
    netns: str | None  # None: hostNetwork
    host_if: str | None
    ip: str


class _Network:
    """This kubelet's /22 block of pod addresses and the host side of its pods' networks."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self.block = -1
        self.prefix = ""
        self.gateway = ""
        self.cidr = ""
        self._lock_fd: int | None = None
        self._in_use: set[str] = set()
        self._cursor = 0
        self._seq = 0
        self._mutex = threading.Lock()
        self._route_added = False

    # Claim and release.

    @staticmethod
    def check() -> None:
        if os.geteuid() != 0:
            raise KubeletError("the process kubelet needs root (network namespaces, veth pairs)")
        if shutil.which("ip") is None:
            raise KubeletError("the process kubelet needs iproute2's `ip` on the PATH")
        result = _ip("netns", "list", check=False)
        if result.returncode != 0:
            raise KubeletError(f"`ip netns` does not work here: {result.stderr.strip()}")

    def claim(self) -> None:
        state = _state_dir()
        with _flock(state / "lock"):
            for block in range(BLOCKS):
                fd = os.open(state / f"block-{block:02d}", os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._lock_fd = fd
                self._use_block(block)
                break
            else:
                raise KubeletError(f"all {BLOCKS} address blocks are held by other kubelets")
            self._remove_leftovers()
            _ip("route", "replace", "unreachable", POD_CIDR)
            self._route_added = True
            # The gateway lives on lo too: host services can bind it before any pod exists.
            # `replace`, not `add`: a killed kubelet of this block may have left it there.
            result = _ip("addr", "replace", f"{self.gateway}/32", "dev", "lo", check=False)
            if result.returncode != 0:
                raise KubeletError(f"cannot add {self.gateway} to lo: {result.stderr.strip()}")
        self._probe_netns()
        self.log.info(
            "claimed block %s (gateway %s, names %s*), %s unreachable",
            self.cidr,
            self.gateway,
            self.prefix,
            POD_CIDR,
        )

    def _use_block(self, block: int) -> None:
        self.block = block
        self.prefix = f"kt{block:02d}"
        self.gateway = f"10.244.{4 * block}.1"
        self.cidr = f"10.244.{4 * block}.0/22"

    def _probe_netns(self) -> None:
        name = f"{self.prefix}-probe"
        result = _ip("netns", "add", name, check=False)
        if result.returncode != 0:
            raise KubeletError(f"`ip netns add` does not work here: {result.stderr.strip()}")
        _ip("netns", "del", name, check=False)

    def release(self) -> None:
        if self._lock_fd is None:
            return
        state = _state_dir()
        with _flock(state / "lock"):
            self._remove_leftovers()
            _ip("addr", "del", f"{self.gateway}/32", "dev", "lo", check=False)
            if self._route_added and not self._others_hold_blocks(state):
                _ip("route", "del", "unreachable", POD_CIDR, check=False)
            self._route_added = False
            os.close(self._lock_fd)
            self._lock_fd = None
        self.log.info("released block %s", self.cidr)

    def _others_hold_blocks(self, state: Path) -> bool:
        for block in range(BLOCKS):
            if block == self.block:
                continue
            path = state / f"block-{block:02d}"
            if not path.exists():
                continue
            fd = os.open(path, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            finally:
                os.close(fd)
        return False

    def own_netns(self) -> list[str]:
        names = _ip("netns", "list", check=False).stdout.split("\n")
        return [n.split()[0] for n in names if n.startswith(f"{self.prefix}-")]

    def own_links(self) -> list[str]:
        links = []
        for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
            parts = line.split(":", 2)
            if len(parts) > 1:
                name = parts[1].strip().split("@")[0]
                if name.startswith(f"{self.prefix}h"):
                    links.append(name)
        return links

    def _remove_leftovers(self) -> None:
        """Every namespace and veth of this block (a crashed kubelet's, or ours at stop)."""
        for netns in self.own_netns():
            self.log.info("removing network namespace %s", netns)
            _kill_netns_pids(netns)
            _ip("netns", "del", netns, check=False)
        for link in self.own_links():
            self.log.info("removing veth %s", link)
            _ip("link", "del", link, check=False)

    # Pods.

    def _allocate(self) -> tuple[int, str]:
        with self._mutex:
            base = 4 * self.block
            for _ in range(1024):
                offset = 2 + self._cursor % 1021
                self._cursor += 1
                third, fourth = base + offset // 256, offset % 256
                address = f"10.244.{third}.{fourth}"
                if fourth in (0, 255) or address in self._in_use:
                    continue
                self._in_use.add(address)
                self._seq += 1
                return self._seq, address
        raise KubeletError(f"no free address in {self.cidr}")

    def create(self, host_network: bool) -> _PodNet:
        if host_network:
            return _PodNet(None, None, self.gateway)
        seq, address = self._allocate()
        netns, host_if, peer = (
            f"{self.prefix}-{seq}",
            f"{self.prefix}h{seq}",
            f"{self.prefix}c{seq}",
        )
        try:
            _ip("netns", "add", netns)
            _ip("link", "add", host_if, "type", "veth", "peer", "name", peer, "netns", netns)
            _ip("addr", "add", f"{self.gateway}/32", "dev", host_if)
            _ip("link", "set", host_if, "up")
            Path(f"/proc/sys/net/ipv4/conf/{host_if}/forwarding").write_text("1")
            _ip("-n", netns, "link", "set", "lo", "up")
            _ip("-n", netns, "link", "set", peer, "name", "eth0")
            _ip("-n", netns, "addr", "add", f"{address}/32", "dev", "eth0")
            _ip("-n", netns, "link", "set", "eth0", "up")
            _ip("-n", netns, "route", "add", f"{self.gateway}/32", "dev", "eth0", "scope", "link")
            _ip("-n", netns, "route", "add", self.cidr, "via", self.gateway, "dev", "eth0")
            _ip("route", "add", f"{address}/32", "dev", host_if, "src", self.gateway)
        except BaseException:
            self.destroy(_PodNet(netns, host_if, address))
            raise
        self.log.info("network %s: %s via %s", netns, address, host_if)
        return _PodNet(netns, host_if, address)

    def destroy(self, net: _PodNet) -> None:
        if net.netns is not None:
            _kill_netns_pids(net.netns)
            if net.host_if is not None:
                _ip("link", "del", net.host_if, check=False)
            _ip("netns", "del", net.netns, check=False)
            self.log.info("network %s removed (%s)", net.netns, net.ip)
        with self._mutex:
            self._in_use.discard(net.ip)


def _kill_netns_pids(netns: str) -> None:
    for pid in _ip("netns", "pids", netns, check=False).stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError, PermissionError):
            os.kill(int(pid), signal.SIGKILL)


@contextlib.contextmanager
def _flock(path: Path) -> Any:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# --- Containers and pods ----------------------------------------------------------------------


@dataclass
class _Probe:
    kind: str  # startup | liveness | readiness
    spec: dict[str, Any]
    due: float
    successes: int = 0
    failures: int = 0

    @property
    def period(self) -> float:
        return float(self.spec.get("periodSeconds") or 10)

    @property
    def failure_threshold(self) -> int:
        return int(self.spec.get("failureThreshold") or 3)

    @property
    def success_threshold(self) -> int:
        return int(self.spec.get("successThreshold") or 1)


@dataclass
class _Container:
    spec: dict[str, Any]
    init: bool
    log: Path
    termination_file: Path
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    container_id: str = ""
    started_at: str = ""
    run_started: float = 0.0
    runs: int = 0
    restart_count: int = 0
    terminated: dict[str, Any] | None = None
    last_state: dict[str, Any] | None = None
    waiting: tuple[str, str] = ("ContainerCreating", "")
    next_start: float = 0.0
    backoff: float = 0.0
    started: bool = False
    ready: bool = False
    probes: dict[str, _Probe] = field(default_factory=dict)
    kill_deadline: float | None = None
    log_offset: int = 0

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    def succeeded(self) -> bool:
        return self.terminated is not None and self.terminated["exitCode"] == 0

    def status(self) -> dict[str, Any]:
        image = str(self.spec.get("image", ""))
        status: dict[str, Any] = {
            "name": self.name,
            "image": image,
            "imageID": f"process://{image}",
            "ready": self.ready,
            "started": self.started if self.proc is not None else False,
            "restartCount": self.restart_count,
            "lastState": {"terminated": self.last_state} if self.last_state else {},
        }
        if self.proc is not None:
            status["state"] = {"running": {"startedAt": self.started_at}}
            status["containerID"] = self.container_id
        elif self.terminated is not None:
            status["state"] = {"terminated": self.terminated}
            status["containerID"] = self.container_id
        else:
            reason, message = self.waiting
            waiting = {"reason": reason, "message": message} if message else {"reason": reason}
            status["state"] = {"waiting": waiting}
        return status


class _PodWorker:
    """Runs one pod bound to this node, in its own thread, until it is deleted."""

    def __init__(self, kubelet: ProcessKubelet, pod: dict[str, Any]) -> None:
        self.kubelet = kubelet
        self.log = kubelet.log
        self.pod = pod
        meta = pod["metadata"]
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.key = f"{self.namespace}/{self.name}"
        self.dir = kubelet.root / "pods" / f"{self.namespace}_{self.name}_{self.uid[:8]}"
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "work").mkdir(exist_ok=True)
        spec = pod["spec"]
        self.policy: str = spec.get("restartPolicy", "Always")
        self.init_containers = [self._container(c, True) for c in spec.get("initContainers", [])]
        self.containers = [self._container(c, False) for c in spec["containers"]]
        self.net: _PodNet | None = None
        self.pod_ip: str | None = None
        self.start_time: str | None = None
        self.started_mono = 0.0
        status = pod.get("status", {})
        self.phase: str = status.get("phase", "Pending")
        self.terminal = self.phase in ("Succeeded", "Failed")
        #: A pod that had ended before this kubelet saw it: its status is left as it is.
        self.passive = self.terminal
        self.reason: str | None = None
        self.message: str | None = None
        self.conditions: dict[str, dict[str, Any]] = {
            c["type"]: dict(c) for c in status.get("conditions", []) if c["type"] in OWN_CONDITIONS
        }
        self.reported: dict[str, Any] | None = None
        self.lock = threading.RLock()
        self.wake = threading.Event()
        self.vanished = False
        self.shut = False
        self.done = False
        self.thread = threading.Thread(target=self._run, name=f"pod {self.key}", daemon=True)

    def _container(self, spec: dict[str, Any], init: bool) -> _Container:
        name = spec["name"]
        return _Container(
            spec=spec,
            init=init,
            log=self.dir / f"{name}.log",
            termination_file=self.dir / f"{name}.termination-log",
        )

    # Events from the kubelet's threads.

    def update(self, pod: dict[str, Any]) -> None:
        self.pod = pod
        self.wake.set()

    def vanish(self) -> None:
        self.vanished = True
        self.wake.set()

    def shutdown(self) -> None:
        """The kubelet stops: kill everything now and take the network down."""
        self.shut = True
        self.wake.set()
        with self.lock:
            self._kill_all(grace=2.0, record=False)
            self._teardown()

    # The loop.

    def _run(self) -> None:
        self.log.info(
            "pod %s (uid %s): admitted, restartPolicy %s", self.key, self.uid, self.policy
        )
        try:
            while not self.shut and not self.kubelet.stopping:
                self.wake.clear()
                if self.vanished:
                    self.log.info("pod %s: gone from the API, killing its processes", self.key)
                    with self.lock:
                        self._kill_all(grace=2.0, record=False)
                    break
                if self.pod["metadata"].get("deletionTimestamp"):
                    self._delete()
                    break
                try:
                    if not self.terminal:
                        with self.lock:
                            if self.shut:
                                break
                            self._step()
                    if self.terminal and self.net is not None:
                        with self.lock:
                            self._kill_all(grace=0.0, record=False)
                            self._teardown()
                    self._report()
                except Exception:
                    self.log.exception("pod %s: step failed", self.key)
                    self.wake.wait(1.0)
                self.wake.wait(self._wait_time())
        except Exception:
            self.log.exception("pod %s: worker failed", self.key)
        finally:
            with self.lock:
                self._kill_all(grace=0.0, record=False)
                self._teardown()
            self.done = True
            self.log.info("pod %s: worker done", self.key)

    def _wait_time(self) -> float:
        if self.terminal:
            return 5.0
        now = time.monotonic()
        times = [now + TICK_SECONDS]
        for c in self.init_containers + self.containers:
            times += [p.due for p in c.probes.values()]
            if c.proc is None and c.terminated is None:
                times.append(c.next_start)
        return max(0.01, min(times) - now)

    def _step(self) -> None:
        now = time.monotonic()
        spec = self.pod["spec"]
        if self.net is None:
            self._setup()
        deadline = spec.get("activeDeadlineSeconds")
        if deadline is not None and now - self.started_mono > float(deadline):
            self.log.info("pod %s: active deadline of %ss exceeded", self.key, deadline)
            self._kill_all(grace=self._grace(), record=True)
            self.phase, self.terminal = "Failed", True
            self.reason = "DeadlineExceeded"
            self.message = "Pod was active on the node longer than the specified deadline"
            return
        initialized = True
        for c in self.init_containers:
            if c.succeeded():
                continue
            self._drive(c, now)
            if not c.succeeded():
                initialized = False
                break
        if initialized:
            for c in self.containers:
                self._drive(c, now)
        self.phase = self._phase()
        if self.phase in ("Succeeded", "Failed"):
            self.terminal = True
            self.log.info("pod %s: %s", self.key, self.phase)

    def _setup(self) -> None:
        spec = self.pod["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in self.init_containers + self.containers:
            for mount in c.spec.get("volumeMounts", []):
                if "persistentVolumeClaim" in volumes.get(mount["name"], {}):
                    Path(mount["mountPath"]).mkdir(parents=True, exist_ok=True)
        self.net = self.kubelet.network.create(bool(spec.get("hostNetwork")))
        self.pod_ip = self.net.ip
        self.start_time = _now()
        self.started_mono = time.monotonic()
        self.log.info("pod %s: sandbox ready, pod IP %s", self.key, self.pod_ip)

    # Containers.

    def _should_restart(self, c: _Container, exit_code: int) -> bool:
        if c.init:
            return exit_code != 0 and self.policy != "Never"
        return self.policy == "Always" or (self.policy == "OnFailure" and exit_code != 0)

    def _drive(self, c: _Container, now: float) -> None:
        if c.proc is not None:
            code = c.proc.poll()
            if code is None:
                if c.kill_deadline is not None:
                    if now >= c.kill_deadline:
                        _kill_group(c.proc.pid, signal.SIGKILL)
                else:
                    self._probe_all(c, now)
                return
            self._exited(c, code, restart=True)
        if c.terminated is not None or now < c.next_start:
            return
        self._start(c, now)

    def _start(self, c: _Container, now: float) -> None:
        assert self.net is not None
        try:
            argv, env = self._config(c)
        except _ConfigError as exc:
            if c.waiting != ("CreateContainerConfigError", str(exc)):
                self.log.info("pod %s container %s: %s", self.key, c.name, exc)
            c.waiting = ("CreateContainerConfigError", str(exc))
            c.next_start = now + 1.0
            return
        c.termination_file.write_bytes(b"")
        c.log_offset = c.log.stat().st_size if c.log.exists() else 0
        c.container_id = f"process://{uuid.uuid4().hex}"
        c.started_at = _now()
        c.run_started = now
        if c.runs > 0:
            c.restart_count += 1
        c.runs += 1
        c.env = env
        program = shutil.which(argv[0], path=env.get("PATH", os.defpath)) if argv else None
        if program is None:
            message = (
                f'exec: "{argv[0]}": executable file not found in $PATH'
                if argv
                else "no command specified"
            )
            self.log.info("pod %s container %s: %s", self.key, c.name, message)
            self._finish(c, 128, "StartError", message, restart=True)
            return
        prefix = ["ip", "netns", "exec", self.net.netns] if self.net.netns else []
        workdir = c.spec.get("workingDir") or str(self.dir / "work")
        with c.log.open("ab") as log:
            try:
                c.proc = subprocess.Popen(
                    [*prefix, program, *argv[1:]],
                    env=env,
                    cwd=workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                self.log.info("pod %s container %s: cannot start: %s", self.key, c.name, exc)
                self._finish(c, 128, "StartError", str(exc), restart=True)
                return
        c.kill_deadline = None
        c.ready = False
        c.probes = {}
        for kind in ("startup", "liveness", "readiness"):
            probe = c.spec.get(f"{kind}Probe")
            if probe and not c.init:
                delay = float(probe.get("initialDelaySeconds") or 0)
                c.probes[kind] = _Probe(kind, probe, now + delay)
        c.started = "startup" not in c.probes
        self.log.info(
            "pod %s container %s: started pid %d (run %d): %s",
            self.key,
            c.name,
            c.proc.pid,
            c.runs,
            " ".join(argv),
        )

    def _exited(self, c: _Container, code: int, *, restart: bool) -> None:
        assert c.proc is not None
        pid = c.proc.pid
        _kill_group(pid, signal.SIGKILL)  # what the runtime does to the rest of a container
        c.proc = None
        exit_code = code if code >= 0 else 128 - code
        self.log.info("pod %s container %s: pid %d exited %d", self.key, c.name, pid, exit_code)
        message = self._termination_message(c, exit_code)
        reason = "Completed" if exit_code == 0 else "Error"
        self._finish(c, exit_code, reason, message, restart=restart)

    def _finish(
        self, c: _Container, exit_code: int, reason: str, message: str, *, restart: bool
    ) -> None:
        term: dict[str, Any] = {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": c.started_at,
            "finishedAt": _now(),
            "containerID": c.container_id,
        }
        if message:
            term["message"] = message
        c.ready = False
        c.started = False
        c.kill_deadline = None
        c.probes = {}
        if restart and self._should_restart(c, exit_code):
            now = time.monotonic()
            if now - c.run_started > self.kubelet.backoff_reset:
                c.backoff = 0.0
            delay = c.backoff or self.kubelet.backoff_base
            c.backoff = min(delay * 2, self.kubelet.backoff_cap)
            c.last_state, c.terminated = term, None
            c.next_start = now + delay
            c.waiting = (
                "CrashLoopBackOff",
                f"back-off {delay:g}s restarting failed container={c.name} "
                f"pod={self.name}_{self.namespace}({self.uid})",
            )
            self.log.info("pod %s container %s: restart in %.1fs", self.key, c.name, delay)
        else:
            c.terminated = term

    def _termination_message(self, c: _Container, exit_code: int) -> str:
        data = c.termination_file.read_bytes() if c.termination_file.exists() else b""
        policy = c.spec.get("terminationMessagePolicy", "File")
        if not data and exit_code != 0 and policy == "FallbackToLogsOnError" and c.log.exists():
            with c.log.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                start = max(c.log_offset, size - FALLBACK_LOG_BYTES)
                handle.seek(start)
                tail = handle.read()
            data = b"\n".join(tail.split(b"\n")[-FALLBACK_LOG_LINES:])
        return data[:MAX_MESSAGE_BYTES].decode(errors="replace")

    def _kill(self, c: _Container, reason: str, grace: float) -> None:
        """Stop a container that a probe gave up on; it is restarted as its policy says."""
        assert c.proc is not None
        self.log.info("pod %s container %s: %s, killing it", self.key, c.name, reason)
        _kill_group(c.proc.pid, signal.SIGTERM)
        c.kill_deadline = time.monotonic() + grace

    def _kill_all(self, grace: float, *, record: bool) -> None:
        running = [c for c in self.init_containers + self.containers if c.proc is not None]
        for c in running:
            assert c.proc is not None
            _kill_group(c.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and not self.kubelet.stopping:
            if all(c.proc is None or c.proc.poll() is not None for c in running):
                break
            time.sleep(0.05)
        for c in running:
            assert c.proc is not None
            if c.proc.poll() is None:
                self.log.info("pod %s container %s: SIGKILL", self.key, c.name)
                _kill_group(c.proc.pid, signal.SIGKILL)
            try:
                code = c.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = -signal.SIGKILL
            if record:
                self._exited(c, code, restart=False)
            else:
                _kill_group(c.proc.pid, signal.SIGKILL)
                self.log.info("pod %s container %s: killed", self.key, c.name)
                c.proc = None
        if self.net is not None and self.net.netns is not None:
            _kill_netns_pids(self.net.netns)

    def _teardown(self) -> None:
        if self.net is not None:
            self.kubelet.network.destroy(self.net)
            self.net = None

    def _grace(self) -> float:
        meta, spec = self.pod["metadata"], self.pod["spec"]
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        return min(float(grace), MAX_GRACE_SECONDS)

    # Configuration: environment, command, termination message path.

    def _config(self, c: _Container) -> tuple[list[str], dict[str, str]]:
        spec = c.spec
        path = spec.get("terminationMessagePath") or DEFAULT_TERMINATION_MESSAGE_PATH
        local = str(c.termination_file)
        env: dict[str, str] = {}
        for source in spec.get("envFrom", []):
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                ref = source["configMapRef"]
                data = self._object_data("configmaps", ref["name"], ref.get("optional"))
            else:
                ref = source["secretRef"]
                data = self._object_data("secrets", ref["name"], ref.get("optional"))
            for key, value in (data or {}).items():
                if _ENV_NAME.match(prefix + key):
                    env[prefix + key] = value
        for item in spec.get("env", []):
            value = self._env_value(item, env)
            if value is not None:
                env[item["name"]] = value
        env = {k: v.replace(path, local) for k, v in env.items()}
        command = list(spec.get("command") or self.kubelet.entrypoint(spec.get("image", "")))
        argv = [expand(a, env).replace(path, local) for a in [*command, *spec.get("args", [])]]
        full = {**self.kubelet.base_env, "HOSTNAME": self.name, **env}
        return argv, full

    def _env_value(self, item: dict[str, Any], env: Mapping[str, str]) -> str | None:
        if "valueFrom" not in item:
            return expand(str(item.get("value", "")), env)
        source = item["valueFrom"]
        if "fieldRef" in source:
            return self._field(source["fieldRef"]["fieldPath"])
        for kind, key in (("secrets", "secretKeyRef"), ("configmaps", "configMapKeyRef")):
            if key in source:
                ref = source[key]
                data = self._object_data(kind, ref["name"], ref.get("optional"))
                if data is None:
                    return None
                if ref["key"] not in data:
                    if ref.get("optional"):
                        return None
                    what = "Secret" if kind == "secrets" else "ConfigMap"
                    raise _ConfigError(
                        f"couldn't find key {ref['key']} in {what} {self.namespace}/{ref['name']}"
                    )
                return data[ref["key"]]
        raise _ConfigError(f"unsupported env source for {item['name']}: {sorted(source)}")

    def _field(self, path: str) -> str:
        meta, spec = self.pod["metadata"], self.pod["spec"]
        simple = {
            "metadata.name": self.name,
            "metadata.namespace": self.namespace,
            "metadata.uid": self.uid,
            "spec.nodeName": spec.get("nodeName", ""),
            "spec.serviceAccountName": spec.get("serviceAccountName", ""),
            "status.podIP": self.pod_ip or "",
            "status.podIPs": self.pod_ip or "",
            "status.hostIP": self.kubelet.host_address,
            "status.hostIPs": self.kubelet.host_address,
        }
        if path in simple:
            return simple[path]
        match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path)
        if match:
            return str(meta.get(match.group(1), {}).get(match.group(2), ""))
        if path in ("metadata.labels", "metadata.annotations"):
            values = meta.get(path.split(".")[1], {})
            return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
        raise _ConfigError(f"unsupported fieldRef {path}")

    def _object_data(self, kind: str, name: str, optional: bool | None) -> dict[str, str] | None:
        code, obj = self.kubelet.api.call(
            "GET", f"/api/v1/namespaces/{self.namespace}/{kind}/{name}"
        )
        what = "secret" if kind == "secrets" else "configmap"
        if code == 404:
            if optional:
                return None
            raise _ConfigError(f'{what} "{name}" not found')
        if code != 200:
            raise _ConfigError(f"cannot read {what} {name}: {code}")
        data: dict[str, str] = dict(obj.get("data") or {})
        if kind == "secrets":
            data = {k: base64.b64decode(v).decode(errors="replace") for k, v in data.items()}
        else:
            for k, v in (obj.get("binaryData") or {}).items():
                data[k] = base64.b64decode(v).decode(errors="replace")
        return data

    # Probes.

    def _probe_all(self, c: _Container, now: float) -> None:
        for kind in ("startup", "liveness", "readiness"):
            probe = c.probes.get(kind)
            if probe is None or now < probe.due or c.kill_deadline is not None:
                continue
            if (kind == "startup") == c.started:
                continue  # startup runs until started; the others only after
            ok, detail = self._probe(c, probe.spec)
            probe.due = time.monotonic() + probe.period
            if ok:
                probe.successes, probe.failures = probe.successes + 1, 0
            else:
                probe.successes, probe.failures = 0, probe.failures + 1
            grace = min(
                float(probe.spec.get("terminationGracePeriodSeconds") or self._grace()),
                MAX_GRACE_SECONDS,
            )
            if kind == "startup":
                if ok and probe.successes >= probe.success_threshold:
                    c.started = True
                    self.log.info("pod %s container %s: started", self.key, c.name)
                    if "readiness" not in c.probes:
                        c.ready = True
                elif probe.failures >= probe.failure_threshold:
                    self._kill(c, f"Startup probe failed: {detail}", grace)
            elif kind == "liveness":
                if probe.failures >= probe.failure_threshold:
                    probe.failures = 0
                    self._kill(c, f"Liveness probe failed: {detail}", grace)
            elif ok and probe.successes >= probe.success_threshold and not c.ready:
                c.ready = True
                self.log.info("pod %s container %s: ready", self.key, c.name)
            elif not ok and probe.failures >= probe.failure_threshold and c.ready:
                c.ready = False
                self.log.info("pod %s container %s: not ready: %s", self.key, c.name, detail)
        if c.started and "readiness" not in c.probes:
            c.ready = True

    def _port(self, c: _Container, port: Any) -> int:
        if isinstance(port, int) or str(port).isdigit():
            return int(port)
        for item in c.spec.get("ports", []):
            if item.get("name") == port:
                return int(item["containerPort"])
        raise ValueError(f"port {port!r} not found in container {c.name}")

    def _probe(self, c: _Container, spec: dict[str, Any]) -> tuple[bool, str]:
        timeout = float(spec.get("timeoutSeconds") or 1)
        try:
            if "exec" in spec:
                prefix = (
                    ["ip", "netns", "exec", self.net.netns] if self.net and self.net.netns else []
                )
                result = subprocess.run(
                    [*prefix, *spec["exec"]["command"]],
                    env=c.env,
                    capture_output=True,
                    timeout=timeout,
                    check=False,
                )
                return result.returncode == 0, f"exit code {result.returncode}"
            action = spec.get("httpGet") or spec.get("tcpSocket") or spec.get("grpc") or {}
            host = action.get("host") or self.pod_ip or ""
            if not self.kubelet.is_local(host):
                return False, f"probe host {host} is not on this machine"
            port = self._port(c, action.get("port"))
            if "httpGet" in spec:
                scheme = str(action.get("scheme", "HTTP")).lower()
                path = action.get("path") or "/"
                headers = {h["name"]: h["value"] for h in action.get("httpHeaders", [])}
                url = f"{scheme}://{host}:{port}{path if path.startswith('/') else '/' + path}"
                response = self.kubelet.prober.get(url, headers=headers, timeout=timeout)
                ok = 200 <= response.status_code < 400
                return ok, f"HTTP probe failed with statuscode: {response.status_code}"
            with socket.create_connection((host, port), timeout=timeout):
                return True, ""
        except (httpx.HTTPError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
            return False, f"{type(exc).__name__}: {exc}"

    # Phase and status.

    def _phase(self) -> str:
        for c in self.init_containers:
            if not c.succeeded():
                if c.terminated is not None and self.policy == "Never":
                    return "Failed"
                return "Pending"
        running = waiting = stopped = succeeded = 0
        for c in self.containers:
            if c.proc is not None:
                running += 1
            elif c.terminated is not None:
                stopped += 1
                succeeded += c.succeeded()
            elif c.last_state is not None:
                stopped += 1
            else:
                waiting += 1
        if waiting:
            return "Pending"
        if running:
            return "Running"
        if stopped:
            if self.policy == "Always":
                return "Running"
            if stopped == succeeded:
                return "Succeeded"
            if self.policy == "Never":
                return "Failed"
            return "Running"
        return "Pending"

    def _condition(self, kind: str, status: bool, reason: str = "", message: str = "") -> None:
        value = "True" if status else "False"
        old = self.conditions.get(kind)
        changed = old is None or old.get("status") != value
        condition: dict[str, Any] = {
            "type": kind,
            "status": value,
            "lastProbeTime": None,
            "lastTransitionTime": _now() if changed or old is None else old["lastTransitionTime"],
        }
        if reason:
            condition["reason"] = reason
        if message:
            condition["message"] = message
        if changed:
            self.log.info("pod %s: condition %s=%s %s", self.key, kind, value, reason)
        self.conditions[kind] = condition

    def _status(self) -> dict[str, Any]:
        completed = self.phase in ("Succeeded", "Failed")
        initialized = all(c.succeeded() for c in self.init_containers)
        unready = [c.name for c in self.containers if not c.ready]
        self._condition("PodReadyToStartContainers", self.net is not None)
        if initialized:
            self._condition("Initialized", True, "PodCompleted" if completed else "")
        else:
            pending = " ".join(c.name for c in self.init_containers if not c.succeeded())
            self._condition(
                "Initialized",
                False,
                "ContainersNotInitialized",
                f"containers with incomplete status: [{pending}]",
            )
        if completed:
            self._condition("ContainersReady", False, "PodCompleted")
            self._condition("Ready", False, "PodCompleted")
        elif unready:
            message = f"containers with unready status: [{' '.join(unready)}]"
            self._condition("ContainersReady", False, "ContainersNotReady", message)
            self._condition("Ready", False, "ContainersNotReady", message)
        else:
            self._condition("ContainersReady", True)
            gates = [g["conditionType"] for g in self.pod["spec"].get("readinessGates", [])]
            theirs = {c["type"]: c for c in self.pod.get("status", {}).get("conditions", [])}
            missing = [g for g in gates if theirs.get(g, {}).get("status") != "True"]
            if missing:
                message = f"corresponding condition of pod readiness gate {missing[0]!r} not True"
                self._condition("Ready", False, "ReadinessGatesNotReady", message)
            else:
                self._condition("Ready", True)
        foreign = [
            c
            for c in self.pod.get("status", {}).get("conditions", [])
            if c["type"] not in OWN_CONDITIONS
        ]
        if not any(c["type"] == "PodScheduled" for c in foreign):
            foreign.append({"type": "PodScheduled", "status": "True", "lastTransitionTime": _now()})
        status: dict[str, Any] = {
            "phase": self.phase,
            "conditions": foreign + [self.conditions[t] for t in OWN_CONDITIONS],
            "hostIP": self.kubelet.host_address,
            "hostIPs": [{"ip": self.kubelet.host_address}],
            "containerStatuses": [c.status() for c in self.containers],
            "reason": self.reason,
            "message": self.message,
        }
        if self.init_containers:
            status["initContainerStatuses"] = [c.status() for c in self.init_containers]
        if self.start_time:
            status["startTime"] = self.start_time
        if self.pod_ip:
            status["podIP"] = self.pod_ip
            status["podIPs"] = [{"ip": self.pod_ip}]
        return status

    def _report(self) -> None:
        if self.passive:
            return
        status = self._status()
        if status == self.reported:
            return
        path = f"/api/v1/namespaces/{self.namespace}/pods/{self.name}/status"
        body = {"metadata": {"uid": self.uid}, "status": status}
        code, answer = self.kubelet.api.call(
            "PATCH", path, body, content_type="application/merge-patch+json"
        )
        if code == 200:
            self.reported = status
            self.pod = answer
            return
        if code == 404 or (code in (409, 422) and not self._still_ours()):
            self.vanish()
            return
        message = answer.get("message") if isinstance(answer, dict) else answer
        self.log.warning("pod %s: status update refused (%s): %s", self.key, code, message)

    def _still_ours(self) -> bool:
        code, pod = self.kubelet.api.call(
            "GET", f"/api/v1/namespaces/{self.namespace}/pods/{self.name}"
        )
        return code == 200 and pod["metadata"]["uid"] == self.uid

    # Deletion.

    def _delete(self) -> None:
        grace = self._grace()
        self.log.info("pod %s: deleted, stopping it (grace %.0fs)", self.key, grace)
        with self.lock:
            if not self.terminal:
                self._kill_all(grace=grace, record=True)
                self.phase = (
                    "Succeeded" if all(c.succeeded() for c in self.containers) else "Failed"
                )
                self.terminal = True
            else:
                self._kill_all(grace=0.0, record=False)
            self._teardown()
        try:
            self._report()
        except httpx.HTTPError as exc:
            self.log.warning("pod %s: final status not reported: %s", self.key, exc)
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": self.uid},
        }
        path = f"/api/v1/namespaces/{self.namespace}/pods/{self.name}"
        for _ in range(10):
            try:
                code, answer = self.kubelet.api.call("DELETE", path, body)
            except httpx.HTTPError as exc:
                code, answer = 0, str(exc)
            if code in (200, 202, 404, 409):
                self.log.info("pod %s: removed from the API (%s)", self.key, code)
                return
            self.log.warning("pod %s: delete refused (%s): %s", self.key, code, answer)
            if self.kubelet.stopping_event.wait(1.0):
                return

    # For the tests.

    def processes(self) -> dict[str, int]:
        return {c.name: c.proc.pid for c in self.init_containers + self.containers if c.proc}

    def logs(self, limit: int = 65536) -> str:
        parts = []
        for c in self.init_containers + self.containers:
            text = c.log.read_text(errors="replace") if c.log.exists() else ""
            header = f"--- {self.key} container {c.name} (restarts {c.restart_count}) ---"
            parts.append(f"{header}\n{text[-limit:]}")
        return "\n".join(parts)


# --- The kubelet ------------------------------------------------------------------------------


class ProcessKubelet:
    """One node of the test cluster: schedules pending pods onto itself and runs them."""

    def __init__(
        self,
        plane: ControlPlane,
        root: Path,
        node_name: str = "testbed-node",
        *,
        base_env: Mapping[str, str] | None = None,
        entrypoints: Mapping[str, Sequence[str]] | None = None,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        backoff_reset: float = 30.0,
    ) -> None:
        self.plane = plane
        self.root = Path(root)
        self.node_name = node_name
        self.log_path = self.root / "kubelet.log"
        self.base_env = dict(
            base_env
            if base_env is not None
            else {k: os.environ[k] for k in BASE_ENV_NAMES if k in os.environ}
        )
        #: image -> ENTRYPOINT, for containers without ``command`` (else ``args`` alone run).
        self.entrypoints = {k: list(v) for k, v in (entrypoints or {}).items()}
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.backoff_reset = backoff_reset
        self.log = logging.getLogger(f"kube_testbed.kubelet.{node_name}.{id(self):x}")
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        self.network = _Network(self.log)
        self.stopping_event = threading.Event()
        self._workers: dict[str, _PodWorker] = {}
        self._by_name: dict[tuple[str, str], _PodWorker] = {}
        self._lock = threading.Lock()
        self._bind_queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._bound: set[str] = set()
        self._unschedulable: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._watch_response: httpx.Response | None = None
        self._handler: logging.Handler | None = None
        self._state = "new"
        self.api: _Api
        self.prober: httpx.Client

    # Public surface.

    @property
    def stopping(self) -> bool:
        return self.stopping_event.is_set()

    @property
    def host_address(self) -> str:
        """The node's InternalIP: the gateway of every pod, on the host's lo and host veths."""
        return self.network.gateway

    @property
    def pod_cidr(self) -> str:
        return self.network.cidr

    def start(self) -> None:
        if self._state != "new":
            raise KubeletError("a ProcessKubelet starts once")
        self._state = "starting"
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "pods").mkdir(exist_ok=True)
        self._handler = logging.FileHandler(self.log_path)
        self._handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s [%(threadName)s] %(message)s")
        )
        self.log.addHandler(self._handler)
        atexit.register(self.stop)
        try:
            _Network.check()
            self.network.claim()
            self.api = _Api(plane=self.plane)
            self.prober = httpx.Client(
                trust_env=False,
                verify=False,
                follow_redirects=False,
                headers={"Connection": "close", "User-Agent": f"kube-probe/{KUBE_VERSION[1:]}"},
                limits=httpx.Limits(max_keepalive_connections=0),
            )
            self._register_node()
            for target, name in ((self._watch_loop, "watch"), (self._bind_loop, "scheduler")):
                thread = threading.Thread(target=target, name=f"kubelet {name}", daemon=True)
                self._threads.append(thread)
                thread.start()
        except BaseException:
            self.stop()
            raise
        self._state = "running"
        self.log.info("kubelet %s running against %s", self.node_name, self.plane.url)

    def stop(self) -> None:
        """Kill every pod process, remove every namespace, veth, route and address; idempotent."""
        with self._lock:
            if self._state in ("stopped", "new"):
                self._state = "stopped"
                return
            self._state = "stopped"
            self.stopping_event.set()
            workers = list(self._workers.values())
        self.log.info("kubelet %s stopping", self.node_name)
        self._interrupt_watch()
        for worker in workers:
            try:
                worker.shutdown()
            except Exception:
                self.log.exception("pod %s: shutdown failed", worker.key)
        for thread in [*self._threads, *(w.thread for w in workers)]:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout=5)
        try:
            self.network.release()
        except Exception:
            self.log.exception("network release failed")
        for client in (getattr(self, "api", None), getattr(self, "prober", None)):
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()
        atexit.unregister(self.stop)
        self.log.info("kubelet %s stopped", self.node_name)
        if self._handler is not None:
            self.log.removeHandler(self._handler)
            self._handler.close()

    def pod_log(self, namespace: str, name: str) -> str:
        """The output of every container of the latest pod ``namespace/name`` run here."""
        worker = self._by_name.get((namespace, name))
        if worker is None:
            return f"(pod {namespace}/{name} never ran on {self.node_name})"
        return worker.logs()

    def log_tail(self, chars: int = 5000) -> str:
        """The end of kubelet.log, for a test's failure message."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-chars:]

    def processes(self, namespace: str | None = None) -> dict[tuple[str, str, str], int]:
        """The live container processes: (namespace, pod, container) -> pid."""
        with self._lock:
            workers = list(self._workers.values())
        found = {}
        for worker in workers:
            if namespace is None or worker.namespace == namespace:
                for container, pid in worker.processes().items():
                    found[(worker.namespace, worker.name, container)] = pid
        return found

    def pod_sandbox(self, namespace: str, name: str) -> str | None:
        """The network namespace of the latest pod ``namespace/name``, while it has one."""
        worker = self._by_name.get((namespace, name))
        net = worker.net if worker is not None else None
        return net.netns if net is not None else None

    def network_namespaces(self) -> list[str]:
        """The network namespaces of this kubelet's pods that exist on the host now."""
        return self.network.own_netns()

    def entrypoint(self, image: str) -> list[str]:
        return self.entrypoints.get(image) or self.entrypoints.get(image.split(":")[0]) or []

    def is_local(self, host: str) -> bool:
        """Whether a probe may go to ``host``: only pod addresses and this machine's own."""
        if host.startswith("10.244.") or host in ("127.0.0.1", "localhost"):
            return True
        words = _ip("-o", "-4", "addr", "show", check=False).stdout.split()
        return host in {w.split("/")[0] for w in words}

    # The node.

    def _register_node(self) -> None:
        now = _now()
        resources = {"cpu": "2", "memory": "8Gi", "pods": "110", "ephemeral-storage": "20Gi"}

        def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
            return {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }

        status = {
            "capacity": resources,
            "allocatable": resources,
            "phase": "Running",
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "ok"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "ok"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "ok"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": self.host_address},
                {"type": "Hostname", "address": self.node_name},
            ],
            "nodeInfo": {
                "machineID": uuid.uuid4().hex,
                "systemUUID": str(uuid.uuid4()),
                "bootID": str(uuid.uuid4()),
                "kernelVersion": platform.release(),
                "osImage": "modelops testbed (process kubelet)",
                "containerRuntimeVersion": "process://1.0.0",
                "kubeletVersion": KUBE_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
        self.labels = {
            "kubernetes.io/hostname": self.node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64",
        }
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.node_name, "labels": self.labels},
            "spec": {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]},
            "status": status,
        }
        code, answer = self.api.call("POST", "/api/v1/nodes", node)
        if code == 409:
            patch = {"metadata": {"labels": self.labels}}
            code, answer = self.api.call(
                "PATCH",
                f"/api/v1/nodes/{self.node_name}",
                patch,
                content_type="application/merge-patch+json",
            )
        if code not in (200, 201):
            raise KubeletError(f"cannot register node {self.node_name}: {code} {answer}")
        code, answer = self.api.call(
            "PATCH",
            f"/api/v1/nodes/{self.node_name}/status",
            {"status": status},
            content_type="application/merge-patch+json",
        )
        if code != 200:
            raise KubeletError(f"cannot report node status: {code} {answer}")
        self.log.info("node %s registered (InternalIP %s)", self.node_name, self.host_address)

    # Watching pods.

    def _watch_loop(self) -> None:
        version: str | None = None
        while not self.stopping:
            try:
                if version is None:
                    version = self._relist()
                version = self._watch(version)
            except Exception as exc:
                if self.stopping:
                    break
                self.log.warning("pod watch failed (%s: %s), resuming", type(exc).__name__, exc)
                self.stopping_event.wait(1.0)

    def _relist(self) -> str:
        code, answer = self.api.call("GET", "/api/v1/pods")
        if code != 200:
            raise KubeletError(f"cannot list pods: {code} {answer}")
        seen = set()
        for pod in answer.get("items", []):
            seen.add(pod["metadata"]["uid"])
            self._handle("ADDED", pod)
        with self._lock:
            gone = [w for uid, w in self._workers.items() if uid not in seen]
        for worker in gone:
            self._handle("DELETED", worker.pod)
        version: str = answer["metadata"]["resourceVersion"]
        self.log.info("listed %d pods at resourceVersion %s", len(seen), version)
        return version

    def _watch(self, version: str) -> str | None:
        """Events from ``version`` on; the version to resume from, or None to relist."""
        params = {
            "watch": "true",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "300",
        }
        timeout = httpx.Timeout(15.0, read=None)
        with self.api.client.stream("GET", "/api/v1/pods", params=params, timeout=timeout) as resp:
            self._watch_response = resp
            if resp.status_code == 410:
                return None
            if resp.status_code != 200:
                raise KubeletError(f"watch answered {resp.status_code}: {resp.read()[:300]!r}")
            for line in resp.iter_lines():
                if self.stopping:
                    return version
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event["type"], event["object"]
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        self.log.info("watch expired (410 Gone), relisting")
                        return None
                    raise KubeletError(f"watch error: {obj}")
                version = obj["metadata"]["resourceVersion"]
                if kind != "BOOKMARK":
                    self._handle(kind, obj)
        return version

    def _interrupt_watch(self) -> None:
        response = self._watch_response
        if response is None:
            return
        with contextlib.suppress(Exception):
            stream = response.extensions["network_stream"]
            sock = stream.get_extra_info("socket")
            sock.shutdown(socket.SHUT_RDWR)

    def _handle(self, kind: str, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        uid = meta["uid"]
        with self._lock:
            worker = self._workers.get(uid)
            if kind == "DELETED":
                if worker is not None:
                    del self._workers[uid]
                    worker.vanish()
                self._bound.discard(uid)
                self._unschedulable.discard(uid)
                return
            if self.stopping:
                return
            node = spec.get("nodeName")
            if not node:
                if uid not in self._bound and not meta.get("deletionTimestamp"):
                    self._bind_queue.put(pod)
                return
            if node != self.node_name:
                return
            if worker is None:
                worker = _PodWorker(self, pod)
                self._workers[uid] = worker
                self._by_name[(worker.namespace, worker.name)] = worker
                worker.thread.start()
            else:
                worker.update(pod)

    # Scheduling.

    def _bind_loop(self) -> None:
        while not self.stopping:
            try:
                pod = self._bind_queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._bind(pod)
            except Exception as exc:
                self.log.warning("binding %s failed: %s", pod["metadata"]["name"], exc)
                if not self.stopping_event.wait(1.0):
                    self._bind_queue.put(pod)

    def _bind(self, pod: dict[str, Any]) -> None:
        meta, spec = pod["metadata"], pod["spec"]
        uid, namespace, name = meta["uid"], meta["namespace"], meta["name"]
        if uid in self._bound:
            return
        if spec.get("schedulerName", "default-scheduler") != "default-scheduler":
            return
        if spec.get("schedulingGates"):
            return
        selector = spec.get("nodeSelector") or {}
        if any(self.labels.get(k) != v for k, v in selector.items()):
            if uid not in self._unschedulable:
                self._unschedulable.add(uid)
                self._unschedulable_status(namespace, name)
            return
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, "uid": uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        code, answer = self.api.call(
            "POST", f"/api/v1/namespaces/{namespace}/pods/{name}/binding", binding
        )
        if code in (200, 201):
            self._bound.add(uid)
            self.log.info("pod %s/%s: bound to %s", namespace, name, self.node_name)
        elif code in (404, 409):
            self.log.info("pod %s/%s: not bound (%s)", namespace, name, code)
        else:
            raise KubeletError(f"binding answered {code}: {answer}")

    def _unschedulable_status(self, namespace: str, name: str) -> None:
        """Say so in PodScheduled, as the scheduler does (unless another node took the pod)."""
        code, pod = self.api.call("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
        if code != 200 or pod["spec"].get("nodeName"):
            return
        message = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": _now(),
        }
        # The resourceVersion makes it a no-op (409) if the pod was bound since the GET.
        version = pod["metadata"]["resourceVersion"]
        code, _ = self.api.call(
            "PATCH",
            f"/api/v1/namespaces/{namespace}/pods/{name}/status",
            {"metadata": {"resourceVersion": version}, "status": {"conditions": [condition]}},
            content_type="application/strategic-merge-patch+json",
        )
        if code == 200:
            self.log.info("pod %s/%s: unschedulable (nodeSelector)", namespace, name)
