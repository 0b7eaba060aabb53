"""A node that runs nothing: pods bound to it are reported Running and Ready at once.

For scale benchmarks of the operator, the way the Kubernetes project measures controllers
(KWOK, "Kubernetes WithOut Kubelet"): hundreds of model servers would measure this machine, not
the operator. Everything else is real: the API server, the Deployment, ReplicaSet and
EndpointSlice controllers, the operator. Pods get this machine's own non-loopback address (as
host-network pods do), where nothing listens: a scrape of one is refused on this machine and
never leaves it.
"""

from __future__ import annotations

import datetime
import subprocess
import threading
from typing import Any

import httpx

from kube_testbed.controlplane import ControlPlane


def host_address() -> str:
    """This machine's own first global IPv4 address on a real interface (not ``lo``, where a
    process kubelet keeps its gateway address, and not a pod's veth)."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        interface, address = line.split()[1], line.split()[3].split("/")[0]
        if interface != "lo" and not address.startswith("10.244."):
            return address
    raise RuntimeError("this machine has no global IPv4 address")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PretendNode:
    """Binds every pending pod to itself and reports it Running and Ready; deletes pods that
    are being deleted. Polls every ``period`` seconds in its own thread."""

    def __init__(self, plane: ControlPlane, name: str = "pretend-node", period: float = 0.25):
        self.name = name
        self.period = period
        self.address = host_address()
        self._client = httpx.Client(
            base_url=plane.url, verify=plane.ssl_context(), timeout=30, trust_env=False
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.reported = 0

    def start(self) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": {"kubernetes.io/hostname": self.name}},
        }
        self._client.post("/api/v1/nodes", json=node)
        status = {
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "KubeletReady",
                     "lastHeartbeatTime": _now(), "lastTransitionTime": _now()}
                ],
                "addresses": [{"type": "InternalIP", "address": self.address}],
                "capacity": {"cpu": "64", "memory": "256Gi", "pods": "10000"},
                "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "10000"},
            }
        }  # fmt: skip
        self._patch(f"/api/v1/nodes/{self.name}/status", status)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._client.close()

    def _patch(self, path: str, body: dict[str, Any]) -> None:
        self._client.patch(
            path, json=body, headers={"Content-Type": "application/merge-patch+json"}
        )

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self._step()
            except httpx.HTTPError:
                continue  # the control plane is going away, or a hiccup: try again

    def _step(self) -> None:
        pods = self._client.get("/api/v1/pods").json().get("items") or []
        for pod in pods:
            meta, spec = pod["metadata"], pod["spec"]
            path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
            if meta.get("deletionTimestamp"):
                self._client.request("DELETE", path, json={"gracePeriodSeconds": 0})
            elif not spec.get("nodeName"):
                binding = {
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": meta["name"]},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": self.name},
                }
                self._client.post(f"{path}/binding", json=binding)
            elif spec["nodeName"] == self.name and not _ready(pod):
                self._patch(f"{path}/status", self._running(pod))
                self.reported += 1

    def _running(self, pod: dict[str, Any]) -> dict[str, Any]:
        now = _now()
        containers = [
            {"name": c["name"], "image": c["image"], "imageID": "", "ready": True,
             "started": True, "restartCount": 0, "state": {"running": {"startedAt": now}}}
            for c in pod["spec"]["containers"]
        ]  # fmt: skip
        conditions = [
            {"type": kind, "status": "True", "lastTransitionTime": now}
            for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ]
        return {
            "status": {
                "phase": "Running",
                "hostIP": self.address,
                "podIP": self.address,
                "podIPs": [{"ip": self.address}],
                "startTime": now,
                "conditions": conditions,
                "containerStatuses": containers,
            }
        }


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
