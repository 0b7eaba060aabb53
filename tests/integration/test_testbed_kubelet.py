"""The process kubelet against the real control plane: the real controllers drive its pods.

Deployment -> ReplicaSet -> Pods (local processes in their own network namespaces) -> Service
EndpointSlices; Job -> Pod -> Complete/Failed; namespace deletion -> graceful pod deletion.
Needs the binaries of ``make k8s-bin`` and root (``ip netns``).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from kube_testbed.controlplane import ControlPlane, binaries_dir, missing_binaries
from kube_testbed.kubelet import POD_CIDR, ProcessKubelet, expand

pytestmark = pytest.mark.integration

T = TypeVar("T")


class Api:
    """Raw JSON requests as the cluster admin."""

    def __init__(self, plane: ControlPlane) -> None:
        self.client = httpx.Client(
            base_url=plane.url, verify=plane.ssl_context(), trust_env=False, timeout=30
        )

    def call(self, method: str, path: str, body: Any = None, patch: bool = False) -> Any:
        headers = {"Content-Type": "application/merge-patch+json" if patch else "application/json"}
        response = self.client.request(method, path, json=body, headers=headers)
        if response.status_code == 404 and method == "GET":
            return None
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def items(self, path: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.call("GET", path)["items"]
        return items


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    if missing_binaries():
        pytest.skip(
            f"the control plane binaries {missing_binaries()} are not in {binaries_dir()}: "
            "run `make k8s-bin`"
        )
    control_plane = ControlPlane(tmp_path_factory.mktemp("plane"))
    control_plane.start()
    yield control_plane
    control_plane.stop()


@pytest.fixture(scope="module")
def kubelet(
    plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProcessKubelet]:
    node = ProcessKubelet(plane, tmp_path_factory.mktemp("kubelet"))
    node.start()
    prefix, gateway = node.network.prefix, node.host_address
    yield node
    node.stop()
    node.stop()  # idempotent
    leftovers = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f" {prefix}h" not in leftovers
    assert not [n for n in node.network_namespaces() if n.startswith(prefix)]
    addresses = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    assert f"{gateway}/32" not in addresses


@pytest.fixture(scope="module")
def api(plane: ControlPlane) -> Iterator[Api]:
    client = Api(plane)
    yield client
    client.client.close()


@pytest.fixture
def namespace(api: Api, kubelet: ProcessKubelet) -> Iterator[str]:
    name = f"kt-{uuid.uuid4().hex[:8]}"
    api.call("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    # Pods are refused until the serviceaccount controller has made `default`.
    wait_for(lambda: api.get(f"/api/v1/namespaces/{name}/serviceaccounts/default"), 30, kubelet)
    yield name
    if api.get(f"/api/v1/namespaces/{name}") is not None:
        api.call("DELETE", f"/api/v1/namespaces/{name}")


def wait_for(fact: Callable[[], T], timeout: float, kubelet: ProcessKubelet, what: str = "") -> T:
    """Poll ``fact`` until it is truthy; fail with the kubelet's log at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = fact()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(
                f"not within {timeout}s: {what or fact}\n--- kubelet.log ---\n{kubelet.log_tail()}"
            )
        time.sleep(0.2)


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def http_server_pod(labels: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"labels": labels},
        "spec": {
            "terminationGracePeriodSeconds": 5,
            "containers": [
                {
                    "name": "web",
                    "image": "python:3.11",
                    "command": ["sh", "-c", "exec python3 -m http.server 8080 --bind $(POD_IP)"],
                    "env": [
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
                    ],
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "readinessProbe": {
                        "httpGet": {"path": "/", "port": "http"},
                        "periodSeconds": 1,
                    },
                }
            ],
        },
    }


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": http_server_pod(labels),
        },
    }


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": "http"}]},
    }


def job(name: str, script: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {"name": "main", "image": "busybox", "command": ["sh", "-c", script]}
                    ],
                }
            },
        },
    }


def ready_endpoints(api: Api, namespace: str, service_name: str) -> set[str]:
    path = (
        f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
        f"?labelSelector=kubernetes.io/service-name={service_name}"
    )
    found = set()
    for endpoint_slice in api.items(path):
        for endpoint in endpoint_slice.get("endpoints") or []:
            if endpoint.get("conditions", {}).get("ready"):
                found.update(endpoint["addresses"])
    return found


def condition(obj: dict[str, Any], kind: str) -> str | None:
    for item in obj.get("status", {}).get("conditions") or []:
        if item["type"] == kind:
            return str(item["status"])
    return None


def job_pod(api: Api, namespace: str, name: str) -> dict[str, Any]:
    pods = api.items(
        f"/api/v1/namespaces/{namespace}/pods?labelSelector=batch.kubernetes.io/job-name={name}"
    )
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


# --- The tests --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("--bind $(POD_IP)", "--bind 10.244.0.2"),
        ("$(MISSING) $$(POD_IP) $$ $", "$(MISSING) $(POD_IP) $ $"),
        ("$(POD_IP", "$(POD_IP"),
    ],
)
def test_expansion_is_kubernetes(text: str, expanded: str) -> None:
    assert expand(text, {"POD_IP": "10.244.0.2"}) == expanded


def test_deployment_pods_serve_on_their_own_addresses(
    api: Api, kubelet: ProcessKubelet, namespace: str
) -> None:
    started = time.monotonic()
    base = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    api.call("POST", base, deployment("web", 2))
    api.call("POST", f"/api/v1/namespaces/{namespace}/services", service("web"))
    wait_for(
        lambda: (api.get(f"{base}/web") or {}).get("status", {}).get("availableReplicas") == 2,
        60,
        kubelet,
        "deployment web available with 2 replicas",
    )
    available = time.monotonic() - started
    pods = api.items(f"/api/v1/namespaces/{namespace}/pods")
    assert len(pods) == 2
    addresses = {p["status"]["podIP"] for p in pods}
    assert len(addresses) == 2
    for pod in pods:
        status = pod["status"]
        ip = ipaddress.ip_address(status["podIP"])
        assert ip in ipaddress.ip_network(kubelet.pod_cidr), ip
        assert status["podIPs"] == [{"ip": status["podIP"]}]
        assert status["hostIP"] == kubelet.host_address
        assert status["phase"] == "Running"
        assert condition(pod, "Ready") == "True"
        assert condition(pod, "PodScheduled") == "True"
        container = status["containerStatuses"][0]
        assert container["ready"]
        assert container["started"]
        assert "running" in container["state"]
        assert container["restartCount"] == 0
        assert pod["spec"]["nodeName"] == kubelet.node_name

    wait_for(
        lambda: ready_endpoints(api, namespace, "web") == addresses,
        30,
        kubelet,
        f"the EndpointSlices of web list {addresses} as ready",
    )
    with httpx.Client(trust_env=False, timeout=5) as client:
        for address in addresses:
            assert client.get(f"http://{address}:8080/").status_code == 200
    # Pod to pod, through the host veths; and no route out of the machine from a pod.
    first, second = sorted(pods, key=lambda p: p["status"]["podIP"])
    sandbox = kubelet.pod_sandbox(namespace, first["metadata"]["name"])
    assert sandbox is not None
    fetch = f"import urllib.request as u; u.urlopen('http://{second['status']['podIP']}:8080/')"
    inside = ["ip", "netns", "exec", sandbox]
    subprocess.run([*inside, "python3", "-c", fetch], check=True, timeout=30)
    outside = subprocess.run(["ip", "-n", sandbox, "route", "get", "192.0.2.1"], check=False)
    assert outside.returncode != 0

    pids = kubelet.processes(namespace)
    assert len(pids) == 2
    api.call("PATCH", f"{base}/web", {"spec": {"replicas": 0}}, patch=True)
    wait_for(
        lambda: not api.items(f"/api/v1/namespaces/{namespace}/pods"), 30, kubelet, "no pods left"
    )
    wait_for(lambda: not any(alive(p) for p in pids.values()), 15, kubelet, "processes killed")
    wait_for(lambda: not ready_endpoints(api, namespace, "web"), 30, kubelet, "no ready endpoints")
    print(f"available after {available:.1f}s, whole test {time.monotonic() - started:.1f}s")


def test_jobs_complete_and_fail_with_the_container_state(
    api: Api, kubelet: ProcessKubelet, namespace: str
) -> None:
    base = f"/apis/batch/v1/namespaces/{namespace}/jobs"
    api.call("POST", base, job("ok", "echo done > /dev/termination-log; exit 0"))
    api.call("POST", base, job("bad", "echo failing; exit 3"))
    wait_for(
        lambda: condition(api.get(f"{base}/ok"), "Complete") == "True", 60, kubelet, "job ok done"
    )
    pod = job_pod(api, namespace, "ok")
    assert pod["status"]["phase"] == "Succeeded"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert terminated["reason"] == "Completed"
    assert terminated["message"] == "done\n"  # as written: the kubelet does not strip it

    wait_for(
        lambda: condition(api.get(f"{base}/bad"), "Failed") == "True", 60, kubelet, "job bad failed"
    )
    pod = job_pod(api, namespace, "bad")
    assert pod["status"]["phase"] == "Failed"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 3
    assert terminated["reason"] == "Error"
    assert "failing" in kubelet.pod_log(namespace, pod["metadata"]["name"])
    assert not Path("/dev/termination-log").exists() or os.path.getsize("/dev/termination-log") == 0


def test_restarts_follow_the_policy_and_the_liveness_probe(
    api: Api, kubelet: ProcessKubelet, namespace: str
) -> None:
    sick = http_server_pod({"app": "sick"})["spec"]["containers"][0]
    sick["name"] = "sick"
    sick["livenessProbe"] = {
        "httpGet": {"path": "/missing", "port": 8080},
        "periodSeconds": 1,
        "failureThreshold": 2,
    }
    del sick["readinessProbe"]
    sick["startupProbe"] = {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "restarts"},
        "spec": {
            "terminationGracePeriodSeconds": 2,
            "containers": [
                {"name": "crash", "image": "busybox", "command": ["sh", "-c", "exit 1"]},
                sick,
            ],
        },
    }
    path = f"/api/v1/namespaces/{namespace}/pods"
    api.call("POST", path, pod)

    def restarted() -> dict[str, Any] | None:
        current = api.get(f"{path}/restarts")
        statuses = {c["name"]: c for c in current["status"].get("containerStatuses") or []}
        if statuses.get("crash", {}).get("restartCount", 0) >= 2 and (
            statuses.get("sick", {}).get("restartCount", 0) >= 1
        ):
            return statuses
        return None

    statuses = wait_for(restarted, 60, kubelet, "both containers restarted")
    assert statuses["crash"]["lastState"]["terminated"]["exitCode"] == 1
    assert statuses["sick"]["lastState"]["terminated"]["exitCode"] == 143  # SIGTERM
    assert api.get(f"{path}/restarts")["status"]["phase"] == "Running"


def test_namespace_deletion_removes_everything(
    api: Api, kubelet: ProcessKubelet, namespace: str
) -> None:
    api.call("POST", f"/apis/apps/v1/namespaces/{namespace}/deployments", deployment("web", 1))
    api.call("POST", f"/api/v1/namespaces/{namespace}/services", service("web"))
    api.call("POST", f"/apis/batch/v1/namespaces/{namespace}/jobs", job("sleeper", "sleep 600"))
    pids = wait_for(
        lambda: (found := kubelet.processes(namespace)) and len(found) == 2 and found,
        60,
        kubelet,
        "a web and a sleeper process",
    )
    pods = [p["metadata"]["name"] for p in api.items(f"/api/v1/namespaces/{namespace}/pods")]
    sandboxes = {kubelet.pod_sandbox(namespace, name) for name in pods}
    assert None not in sandboxes
    assert len(sandboxes) == 2

    started = time.monotonic()
    api.call("DELETE", f"/api/v1/namespaces/{namespace}")
    wait_for(
        lambda: api.get(f"/api/v1/namespaces/{namespace}") is None,
        120,
        kubelet,
        f"namespace {namespace} gone",
    )
    print(f"namespace gone after {time.monotonic() - started:.1f}s")
    assert not any(alive(p) for p in pids.values())
    assert not kubelet.processes(namespace)
    assert not sandboxes & set(kubelet.network_namespaces())


def test_pod_cidr_is_the_kubelets_block(kubelet: ProcessKubelet) -> None:
    block = ipaddress.ip_network(kubelet.pod_cidr)
    assert block.subnet_of(ipaddress.ip_network(POD_CIDR))
    assert ipaddress.ip_address(kubelet.host_address) in block
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    assert f"unreachable {POD_CIDR}" in routes


def test_init_containers_env_sources_volumes_and_log_fallback(
    api: Api, kubelet: ProcessKubelet, namespace: str, tmp_path: Path
) -> None:
    claim_dir = tmp_path / "pvc" / "data"  # the identity mapping of PVC volumes
    pods = f"/api/v1/namespaces/{namespace}/pods"
    api.call(
        "POST",
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"metadata": {"name": "conf"}, "data": {"colour": "blue"}},
    )
    env = [
        {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "CONF", "valueFrom": {"configMapKeyRef": {"name": "conf", "key": "colour"}}},
        {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "later", "key": "token"}}},
        {"name": "BOTH", "value": "$(CONF)-$(SECRET)"},
    ]
    script = f'cat {claim_dir}/init.txt; echo "$NAME $BOTH"; exit 2'
    pod = {
        "metadata": {"name": "sources"},
        "spec": {
            "restartPolicy": "Never",
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
            "initContainers": [
                {
                    "name": "prepare",
                    "image": "busybox",
                    "command": ["sh", "-c", f"echo prepared > {claim_dir}/init.txt"],
                    "volumeMounts": [{"name": "data", "mountPath": str(claim_dir)}],
                }
            ],
            "containers": [
                {
                    "name": "main",
                    "image": "busybox",
                    "command": ["sh", "-c", script],
                    "env": env,
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                    "volumeMounts": [{"name": "data", "mountPath": str(claim_dir)}],
                }
            ],
        },
    }
    api.call("POST", pods, pod)

    def waiting_reason() -> str | None:
        statuses = api.get(f"{pods}/sources")["status"].get("containerStatuses") or []
        return statuses[0]["state"].get("waiting", {}).get("reason") if statuses else None

    wait_for(
        lambda: waiting_reason() == "CreateContainerConfigError",
        30,
        kubelet,
        "main waits for its secret",
    )
    secret = {"metadata": {"name": "later"}, "stringData": {"token": "s3cret"}}
    api.call("POST", f"/api/v1/namespaces/{namespace}/secrets", secret)
    wait_for(
        lambda: api.get(f"{pods}/sources")["status"]["phase"] == "Failed", 30, kubelet, "failed"
    )
    status = api.get(f"{pods}/sources")["status"]
    init = status["initContainerStatuses"][0]["state"]["terminated"]
    assert init["exitCode"] == 0
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 2
    assert terminated["message"] == "prepared\nsources blue-s3cret\n"
    assert condition({"status": status}, "Initialized") == "True"
    assert "prepared\nsources blue-s3cret" in kubelet.pod_log(namespace, "sources")
    assert (claim_dir / "init.txt").read_text() == "prepared\n"


def test_stop_kills_pods_and_removes_the_network(
    api: Api, plane: ControlPlane, kubelet: ProcessKubelet, namespace: str, tmp_path: Path
) -> None:
    spare = ProcessKubelet(plane, tmp_path / "spare", node_name="spare-node")
    spare.start()
    try:
        assert spare.pod_cidr != kubelet.pod_cidr
        pod = {
            "metadata": {"name": "on-spare"},
            "spec": {
                "nodeSelector": {"kubernetes.io/hostname": "spare-node"},
                "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "600"]}],
            },
        }
        api.call("POST", f"/api/v1/namespaces/{namespace}/pods", pod)
        pids = wait_for(lambda: spare.processes(namespace), 30, spare, "the pod runs on spare")
        on_spare = api.get(f"/api/v1/namespaces/{namespace}/pods/on-spare")
        assert on_spare["spec"]["nodeName"] == "spare-node"
        assert condition(on_spare, "PodScheduled") == "True"
        sandbox = spare.pod_sandbox(namespace, "on-spare")
        assert sandbox in spare.network_namespaces()
        assert not kubelet.processes(namespace)
    finally:
        spare.stop()
    assert not any(alive(pid) for pid in pids.values())
    assert sandbox not in kubelet.network_namespaces() + spare.network_namespaces()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f" {spare.network.prefix}h" not in links
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    assert f"unreachable {POD_CIDR}" in routes  # still held by the module's kubelet
    spare.stop()  # idempotent
    # Nobody runs spare-node any more: remove its pod outright so the namespace can go.
    api.call(
        "DELETE",
        f"/api/v1/namespaces/{namespace}/pods/on-spare",
        {"gracePeriodSeconds": 0},
    )


def test_a_pod_deleted_outright_has_its_processes_killed(
    api: Api, kubelet: ProcessKubelet, namespace: str
) -> None:
    pod = {
        "metadata": {"name": "doomed"},
        "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["sleep", "600"]}]},
    }
    pods = f"/api/v1/namespaces/{namespace}/pods"
    api.call("POST", pods, pod)
    pids = wait_for(lambda: kubelet.processes(namespace), 30, kubelet, "doomed runs")
    sandbox = kubelet.pod_sandbox(namespace, "doomed")
    api.call("DELETE", f"{pods}/doomed", {"gracePeriodSeconds": 0})
    wait_for(lambda: not any(alive(p) for p in pids.values()), 15, kubelet, "doomed killed")
    wait_for(lambda: sandbox not in kubelet.network_namespaces(), 15, kubelet, "sandbox removed")


def test_a_gateway_left_on_lo_by_a_killed_kubelet_does_not_stop_the_next_one() -> None:
    """A kubelet killed before its release leaves its gateway on lo; the block stays claimable."""
    from kube_testbed.kubelet import _Network

    first = _Network(logging.getLogger("test"))
    first.claim()
    block, gateway = first.block, first.gateway
    first.release()
    subprocess.run(["ip", "addr", "add", f"{gateway}/32", "dev", "lo"], check=True)

    second = _Network(logging.getLogger("test"))
    try:
        second.claim()
        assert second.block == block
    finally:
        second.release()
    addresses = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    assert f"{gateway}/32" not in addresses
