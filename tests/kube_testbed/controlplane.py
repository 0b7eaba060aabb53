"""etcd + kube-apiserver + kube-controller-manager as local processes, as a cluster runs them.

The binaries come from ``make k8s-bin`` (hack/k8s). Everything binds 127.0.0.1 on free ports,
lives in one temporary directory and is stopped by ``stop()``; the logs stay in that directory.
The API server enforces RBAC, signs ServiceAccount tokens, runs Pod Security admission and writes
an audit log, so a test can ask which requests were forbidden.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kube_testbed.certs import CertificateAuthority, KeyPair, service_account_key

KUBE_VERSION = "v1.37.2"
ISSUER = "https://kubernetes.default.svc.cluster.local"
#: The controllers the loop needs; the others (nodes, volumes, cloud) would only cost CPU.
CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "job-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "garbage-collector-controller",
)
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  # The operator's status writes with their bodies, so a test can see what each one changed.
  - level: Request
    verbs: [patch, update]
    resources:
      - group: modelops.dev
        resources: [modeldeployments/status, driftpolicies/status]
  - level: Metadata
"""


def binaries_dir() -> Path:
    """Where ``make k8s-bin`` puts the binaries (``$MODELOPS_K8S_BIN`` overrides)."""
    if os.environ.get("MODELOPS_K8S_BIN"):
        return Path(os.environ["MODELOPS_K8S_BIN"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "modelops" / "k8s" / KUBE_VERSION


def missing_binaries() -> list[str]:
    """The control-plane binaries that ``make k8s-bin`` has not built yet."""
    tools = ("etcd", "kube-apiserver", "kube-controller-manager")
    return [t for t in tools if not os.access(binaries_dir() / t, os.X_OK)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Managed:
    """One control-plane process and its log."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


class ControlPlane:
    """A running control plane; ``url``, ``ca`` and ``admin`` let clients reach it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = binaries_dir()
        self.processes: list[Managed] = []
        pki = root / "pki"
        pki.mkdir(parents=True)
        self._ca = CertificateAuthority(pki)
        self.ca: Path = self._ca.cert
        self.api_port = free_port()
        self.url = f"https://127.0.0.1:{self.api_port}"
        self.serving = self._ca.issue(
            "apiserver",
            common_name="kube-apiserver",
            ips=("127.0.0.1",),
            dns=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
        )
        self.admin: KeyPair = self._ca.issue(
            "admin", common_name="modelops-test-admin", organization="system:masters"
        )
        self.sa_key = service_account_key(pki / "service-accounts.key")
        self.admin_kubeconfig = self.write_kubeconfig(root / "admin.kubeconfig", cert=self.admin)
        self.audit_log = root / "audit.log"

    # --- Start and stop ----------------------------------------------------------------------

    def start(self, before_controllers: Callable[[ControlPlane], None] | None = None) -> None:
        """etcd, then the API server, then ``before_controllers`` (e.g. install CRDs, which
        the garbage collector only discovers every ~30 s once it runs), then the controllers."""
        try:
            self._start_etcd()
            self._start_apiserver()
            if before_controllers is not None:
                before_controllers(self)
            self._start_controller_manager()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def _spawn(self, name: str, args: list[str]) -> Managed:
        log = self.root / f"{name}.log"
        with log.open("wb") as handle:
            popen = subprocess.Popen(
                [str(self.bin / name), *args],
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        managed = Managed(name, popen, log)
        self.processes.append(managed)
        return managed

    def _wait(self, process: Managed, probe: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process.alive():
                raise RuntimeError(f"{process.name} exited at start:\n{process.tail()}")
            if probe():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{process.name} not healthy after {timeout}s:\n{process.tail()}")

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        etcd = self._spawn(
            "etcd",
            [
                f"--data-dir={self.root / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--listen-metrics-urls=",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        self._wait(etcd, lambda: _http_ok(f"{self.etcd_url}/health"), timeout=30)

    def _start_apiserver(self) -> None:
        policy = self.root / "audit-policy.yaml"
        policy.write_text(AUDIT_POLICY)
        apiserver = self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
                f"--secure-port={self.api_port}",
                f"--cert-dir={self.root / 'apiserver-certs'}",
                f"--tls-cert-file={self.serving.cert}",
                f"--tls-private-key-file={self.serving.key}",
                f"--client-ca-file={self.ca}",
                "--authorization-mode=RBAC",
                f"--service-account-issuer={ISSUER}",
                f"--service-account-key-file={self.sa_key}",
                f"--service-account-signing-key-file={self.sa_key}",
                # ~4,000 Services: room for operator_bench --drift-scale 2000 (a /24 held 253).
                "--service-cluster-ip-range=10.96.0.0/20",
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-maxsize=0",
                "--v=1",
            ],
        )
        self._wait(apiserver, lambda: self._https_ok("/readyz"), timeout=90)

    def _start_controller_manager(self) -> None:
        kcm = self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={self.admin_kubeconfig}",
                f"--authentication-kubeconfig={self.admin_kubeconfig}",
                f"--authorization-kubeconfig={self.admin_kubeconfig}",
                "--authentication-skip-lookup",
                "--bind-address=127.0.0.1",
                f"--secure-port={(port := free_port())}",
                f"--cert-dir={self.root / 'kcm-certs'}",
                "--leader-elect=false",
                f"--controllers={','.join(CONTROLLERS)}",
                f"--root-ca-file={self.ca}",
                f"--service-account-private-key-file={self.sa_key}",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
                "--concurrent-job-syncs=10",
                "--v=1",
            ],
        )
        self._wait(kcm, lambda: _http_ok(f"https://127.0.0.1:{port}/healthz"), timeout=60)

    # --- Clients -----------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """TLS verifying the API server and presenting the admin certificate."""
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(self.admin.cert), str(self.admin.key))
        return context

    def _https_ok(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(
                self.url + path, timeout=2, context=self.ssl_context()
            ) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """One JSON request as the cluster admin (for set-up; tests use their own client)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        request.add_header("Accept", "application/json")
        with urllib.request.urlopen(request, timeout=30, context=self.ssl_context()) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def write_kubeconfig(
        self,
        path: Path,
        *,
        cert: KeyPair | None = None,
        token: str | None = None,
        server: str | None = None,
    ) -> Path:
        """A kubeconfig for this server (or a proxy of it at ``server``) with a client
        certificate or a bearer token."""
        user: dict[str, str] = {}
        if cert is not None:
            user = {"client-certificate": str(cert.cert), "client-key": str(cert.key)}
        if token is not None:
            user = {"token": token}
        cluster = {"server": server or self.url}
        if cluster["server"].startswith("https:"):
            cluster["certificate-authority"] = str(self.ca)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "testbed", "cluster": cluster}],
            "users": [{"name": "user", "user": user}],
            "contexts": [{"name": "testbed", "context": {"cluster": "testbed", "user": "user"}}],
            "current-context": "testbed",
        }
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o600)
        return path

    def service_account_token(self, namespace: str, name: str, seconds: int = 7200) -> str:
        """A bound token of ServiceAccount ``namespace/name`` (the TokenRequest API)."""
        review = self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": seconds},
            },
        )
        token: str = review["status"]["token"]
        return token

    # --- What the server saw -----------------------------------------------------------------

    def audit_events(self) -> list[dict[str, Any]]:
        """Every request the API server has finished so far (audit level Metadata).

        The server appends to the log while we read it: a last line without its newline is
        still being written and is left for the next read."""
        if not self.audit_log.exists():
            return []
        text = self.audit_log.read_text(errors="replace")
        complete = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def forbidden(self, user_prefix: str, since: float = 0.0) -> list[str]:
        """Requests by users whose name starts with ``user_prefix`` that got a 403; not those
        refused because their namespace is being deleted (an earlier test's), which no RBAC rule
        could allow."""
        denied = []
        for event in self.audit_events():
            user = event.get("user", {}).get("username", "")
            response = event.get("responseStatus") or {}
            terminating = "being terminated" in str(response.get("message", ""))
            if response.get("code") == 403 and user.startswith(user_prefix) and not terminating:
                stamp = _timestamp(event.get("stageTimestamp", ""))
                if stamp >= since:
                    denied.append(f"{event.get('verb')} {event.get('requestURI')} by {user}")
        return denied


def _timestamp(value: str) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _http_ok(url: str) -> bool:
    # Only health checks of our own processes on 127.0.0.1, whose certificates are self-signed.
    context = ssl._create_unverified_context() if url.startswith("https") else None
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except OSError:
        return False
