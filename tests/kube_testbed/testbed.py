"""The scene every operator test plays on: a control plane with the project's CRDs and RBAC
installed as a user installs them (``kubectl apply --server-side``), a process kubelet, and the
operator's ServiceAccount credentials.

Tests get a fresh namespace each (Pod Security "restricted" enforced) and run the operator in
their own event loop as its ServiceAccount; a test fails when any of the operator's requests
got a 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from kube_testbed.client import KubeClient
from kube_testbed.controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_NAMESPACE = "modelops-system"
OPERATOR_ACCOUNT = "modelops-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"
CRDS = ("modeldeployments.modelops.dev", "driftpolicies.modelops.dev")


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
    """Run kubectl against the testbed; its stdout, or an AssertionError with its stderr."""
    result = subprocess.run(
        ["kubectl", f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr.strip()}")
    return result.stdout


def install_crds(plane: ControlPlane) -> None:
    """Apply crds/ server-side and wait until both CRDs are Established."""
    kubectl(plane.admin_kubeconfig, "apply", "--server-side", "-k", str(ROOT / "manifests/crd"))
    deadline = time.monotonic() + 60
    for name in CRDS:
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
        while not _established(plane.request("GET", path)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"CRD {name} not Established after 60 s")
            time.sleep(0.1)


def _established(crd: dict[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def install_rbac(plane: ControlPlane) -> None:
    """The operator's namespace, ServiceAccount and ClusterRoles from the kustomize install."""
    for part in ("manifests/namespace", "manifests/rbac"):
        kubectl(plane.admin_kubeconfig, "apply", "--server-side", "-k", str(ROOT / part))


class Testbed:
    """A control plane with the project installed, a kubelet, and namespaces for the tests."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, root: Path) -> None:
        self.root = root
        self.plane = ControlPlane(root)
        self.kubelet: Any = None
        self.pvc_root = root / "pvc"
        self.pvc_root.mkdir()
        self.operator_kubeconfig = root / "operator.kubeconfig"
        self.operator_token = ""

    def start(self) -> None:
        self.plane.start(before_controllers=install_crds)
        try:
            install_rbac(self.plane)
            self._wait_for_service_account(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
            self.operator_token = self.plane.service_account_token(
                OPERATOR_NAMESPACE, OPERATOR_ACCOUNT
            )
            self.plane.write_kubeconfig(self.operator_kubeconfig, token=self.operator_token)
        except BaseException:
            self.stop()
            raise

    def start_kubelet(self) -> Any:
        """The process kubelet, started on first use (tests of the API alone need no node)."""
        from kube_testbed.kubelet import ProcessKubelet

        if self.kubelet is None:
            self.kubelet = ProcessKubelet(self.plane, self.root / "kubelet")
            self.kubelet.start()
        return self.kubelet

    def stop(self) -> None:
        if self.kubelet is not None:
            self.kubelet.stop()
        self.plane.stop()

    def _wait_for_service_account(self, namespace: str, name: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}"
        while True:
            try:
                self.plane.request("GET", path)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    # --- Per test ------------------------------------------------------------------------------

    def create_namespace(self, prefix: str = "t") -> str:
        """A fresh namespace with Pod Security "restricted" enforced, and its default account
        (pods cannot be created before the serviceaccount controller made it)."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        labels = {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        }
        self.plane.request(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}},
        )
        self._wait_for_service_account(name, "default")
        return name

    def delete_namespace(self, name: str) -> None:
        with contextlib.suppress(OSError):
            self.plane.request("DELETE", f"/api/v1/namespaces/{name}")

    def client(self, namespace: str) -> KubeClient:
        return KubeClient(self.plane.url, namespace, self.plane.ssl_context())

    def point_operator_at_cluster(self, through: str | None = None) -> str:
        """Make Kopf and the ``kubernetes`` client in this process use the operator's
        ServiceAccount token: everything the operator under test does is bound by its RBAC.
        ``through``: the URL of a fault proxy in front of the API server."""
        path = self.operator_kubeconfig
        if through is not None:
            path = self.root / "operator-via-proxy.kubeconfig"
            self.plane.write_kubeconfig(path, token=self.operator_token, server=through)
        return self.point_operator_at(path)

    def point_operator_at(self, kubeconfig: Path) -> str:
        """Make Kopf and the ``kubernetes`` client in this process use ``kubeconfig``."""
        import kubernetes

        path = str(kubeconfig)
        os.environ["KUBECONFIG"] = path
        kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION = path
        return path

    def forbidden_to_operator(self, since: float) -> list[str]:
        return self.plane.forbidden(OPERATOR_USER, since=since)

    def operator_requests(self, since: float) -> list[dict[str, Any]]:
        """Audit events of the operator's requests since ``since`` (epoch seconds)."""
        from kube_testbed.controlplane import _timestamp

        return [
            e
            for e in self.plane.audit_events()
            if e.get("user", {}).get("username") == OPERATOR_USER
            and _timestamp(e.get("stageTimestamp", "")) >= since
        ]


class RunningOperator:
    """``async with RunningOperator(settings, namespaces):`` runs the operator in this loop, as
    its ServiceAccount (``Testbed.point_operator_at_cluster`` first). ``namespaces=None``
    watches every namespace (``--all-namespaces``).

    Enter it inside the test body (Kopf cancels tasks created after it started, so it cannot
    live in an async fixture's teardown).
    """

    def __init__(self, settings: Any, namespaces: list[str] | None) -> None:
        self.settings = settings
        self.namespaces = namespaces
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self.memo: Any = None
        """Kopf's memo of the running operator (its ``ctx``: metrics, memory)."""

    async def __aenter__(self) -> RunningOperator:
        import kopf

        from modelops.controller.handlers import register

        registry = kopf.OperatorRegistry()
        register(registry, self.settings)
        self._stop = asyncio.Event()
        self.memo = kopf.Memo()
        ready = asyncio.Event()
        self._task = asyncio.create_task(
            kopf.operator(
                registry=registry,
                clusterwide=self.namespaces is None,
                namespaces=self.namespaces or [],
                standalone=True,
                stop_flag=self._stop,
                ready_flag=ready,
                memo=self.memo,
            )
        )
        await asyncio.wait_for(ready.wait(), timeout=30)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._stop is not None
        assert self._task is not None
        self._stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self._task, timeout=30)


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)[:4000]
