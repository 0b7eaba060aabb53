"""Real processes and scenes for the operator's integration tests, on the real control plane.

The operator runs in the test's event loop as its ServiceAccount; the real Deployment, ReplicaSet,
Job and EndpointSlice controllers and the process kubelet run the model-server pods and the
retraining Jobs. Processes the tests start themselves (Prometheus, a bare model server) bind
127.0.0.1 on a free port and are stopped by the fixture that started them; pods listen on their
own addresses in network namespaces the kubelet made.
"""

from __future__ import annotations

import asyncio
import csv
import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kube_testbed.client import KubeClient, condition
from modelops.controller.settings import OperatorSettings

MODELOPS = [sys.executable, "-m", "modelops"]
#: Operator settings of the drift-loop tests: a 1 s drift tick, short scrape timeouts.
LOOP_SETTINGS = OperatorSettings(
    image="registry.example/modelops:test",
    image_pull_policy="Never",
    metrics_port=0,
    health_port=0,
    resync_seconds=5.0,
    drift_tick_seconds=1.0,
    scrape_timeout_seconds=2.0,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run(args: list[str], cwd: Path) -> None:
    subprocess.run([*MODELOPS, *args], cwd=cwd, check=True, capture_output=True, timeout=120)


@dataclass(frozen=True)
class Artifacts:
    """An iris model v1, reference and shifted traffic, and fresh labelled data."""

    root: Path
    model_dir: Path
    reference: list[list[float]]
    shifted: list[list[float]]
    fresh_data: Path
    output_dir: Path

    @property
    def model_uri(self) -> str:
        return f"file://{self.model_dir}"


def _rows(path: Path) -> list[list[float]]:
    with path.open() as handle:
        reader = csv.reader(handle)
        next(reader)
        return [[float(x) for x in row[:-1]] for row in reader]


def labelled_rows(path: Path) -> tuple[list[list[float]], list[int]]:
    """The features and the class label (the last column) of an example data CSV."""
    with path.open() as handle:
        reader = csv.reader(handle)
        next(reader)
        rows = list(reader)
    return [[float(x) for x in row[:-1]] for row in rows], [int(row[-1]) for row in rows]


def make_artifacts(root: Path) -> Artifacts:
    run(
        ["example", "model", "--dataset", "iris", "--output", str(root / "v1"), "--version", "v1"],
        root,
    )
    run(["example", "data", "--dataset", "iris", "--rows", "600", "--seed", "3",
         "--output", str(root / "reference.csv")], root)  # fmt: skip
    run(["example", "data", "--dataset", "iris", "--rows", "600", "--seed", "4", "--shift", "2",
         "--output", str(root / "shifted.csv")], root)  # fmt: skip
    return Artifacts(
        root=root,
        model_dir=root / "v1",
        reference=_rows(root / "reference.csv"),
        shifted=_rows(root / "shifted.csv"),
        fresh_data=root / "shifted.csv",
        output_dir=root / "candidates",
    )


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


def _wait_http(url: str, process: Process, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{url}: process exited; log:\n{process.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s; log:\n{process.log.read_text()[-2000:]}")


def start_model_server(model_uri: str, name: str, log: Path) -> Process:
    port = free_port()
    handle = log.open("wb")
    popen = subprocess.Popen(
        [*MODELOPS, "serve", "--model-uri", model_uri, "--name", name, "--host", "127.0.0.1",
         "--port", str(port), "--grpc-port", "0"],
        stdout=handle, stderr=subprocess.STDOUT,
    )  # fmt: skip
    process = Process(popen, port, log)
    _wait_http(f"http://127.0.0.1:{port}/v2/health/ready", process)
    return process


def start_prometheus(
    targets: list[str], root: Path, labels: dict[str, str] | None = None
) -> Process:
    """Prometheus scraping ``targets`` (host:port) every second, adding ``labels`` (e.g. the
    ``namespace`` a Kubernetes service discovery would add) to every series."""
    port = free_port()
    config = root / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: model\n    static_configs:\n"
        f"      - targets: {json.dumps(targets)}\n"
        f"        labels: {json.dumps(labels or {})}\n"
    )
    log = root / "prometheus.log"
    popen = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
         f"--storage.tsdb.path={root / 'tsdb'}"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    process = Process(popen, port, log)
    _wait_http(f"http://127.0.0.1:{port}/-/ready", process)
    return process


def prometheus_value(port: int, query: str) -> float | None:
    """The single value of an instant query, or None while it has no result."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=5) as response:
        result = json.load(response)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


async def wait_for_scrape(port: int, query: str, at_least: float, timeout: float = 30.0) -> float:
    """Wait until Prometheus has scraped a value of ``query`` of at least ``at_least``.

    ``increase()`` counts only what grew between two scrapes, so a test must see a scrape
    before its traffic and another after it; the first scrape comes seconds after start.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = prometheus_value(port, query)
        if value is not None and value >= at_least:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"Prometheus never scraped {query} >= {at_least} in {timeout}s")


async def send_rows(url: str, model: str, rows: list[list[float]], batch: int = 50) -> None:
    """V2 inference requests carrying ``rows`` (one 2-D FP64 tensor per request) to ``url``."""
    async with httpx.AsyncClient(
        base_url=url, headers={"Connection": "close"}, timeout=10
    ) as client:
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            body = {
                "inputs": [
                    {
                        "name": "input-0",
                        "shape": [len(chunk), len(chunk[0])],
                        "datatype": "FP64",
                        "data": chunk,
                    }
                ]
            }
            response = await client.post(f"/v2/models/{model}/infer", json=body)
            response.raise_for_status()


async def send_feedback(
    url: str, model: str, rows: list[list[float]], truth: list[int], target: str, batch: int = 50
) -> None:
    """Ground truth for ``rows``: POST .../feedback, the features as in ``send_rows`` plus the
    true labels as an INT64 tensor named as the model's target (metadata.json)."""
    async with httpx.AsyncClient(
        base_url=url, headers={"Connection": "close"}, timeout=10
    ) as client:
        for start in range(0, len(rows), batch):
            chunk, labels = rows[start : start + batch], truth[start : start + batch]
            body = {
                "inputs": [
                    {
                        "name": "input-0",
                        "shape": [len(chunk), len(chunk[0])],
                        "datatype": "FP64",
                        "data": chunk,
                    },
                    {"name": target, "shape": [len(labels)], "datatype": "INT64", "data": labels},
                ]
            }
            response = await client.post(f"/v2/models/{model}/feedback", json=body)
            response.raise_for_status()


async def pod_urls(kube: KubeClient, service: str, port: int = 8080) -> list[str]:
    """Base URLs of the Service's ready endpoints, as the EndpointSlice controller lists them."""
    slices = await kube.list("endpointslices", f"kubernetes.io/service-name={service}")
    return [
        f"http://{address}:{port}"
        for item in slices
        for endpoint in item.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready")
        for address in endpoint["addresses"]
    ]


async def wait_for_pod_urls(
    kube: KubeClient, service: str, count: int = 1, timeout: float = 60.0
) -> list[str]:
    """The Service's ready endpoints once there are ``count`` of them."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        urls = await pod_urls(kube, service)
        if len(urls) == count:
            return urls
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{service} has endpoints {urls}, not {count}")
        await asyncio.sleep(0.2)


# --- The iris ModelDeployment and DriftPolicy of the loop tests ---------------------------


def model_deployment(artifacts: Artifacts) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris"},
        "spec": {"model": {"uri": artifacts.model_uri, "version": "v1"}},
    }


def drift_policy(artifacts: Artifacts, name: str = "iris-drift", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelops.dev/v1alpha1",
        "kind": "DriftPolicy",
        "metadata": {"name": name},
        "spec": {
            "modelDeploymentRef": {"name": "iris"},
            "interval": "10s",
            "minSamples": 100,
            "metrics": [{"type": "psi", "threshold": 0.2}, {"type": "js", "threshold": 0.1}],
            "trigger": {"minBreachedFeatures": 2, "consecutiveEvaluations": 2},
            "retraining": {
                "dataUri": f"file://{artifacts.fresh_data}",
                "outputUri": f"file://{artifacts.output_dir}",
                "cooldown": "1h",
            },
            "promotion": {"mode": "auto", "metric": "accuracy", "minImprovement": 0.01},
            **spec,
        },
    }


def status_of(obj: dict[str, Any] | None) -> dict[str, Any]:
    return (obj or {}).get("status") or {}


async def start_serving(kube: KubeClient, artifacts: Artifacts) -> str:
    """The iris ModelDeployment, Ready; the base URL of its one serving pod."""
    await kube.create("modeldeployments", model_deployment(artifacts))
    await kube.wait_for(
        "modeldeployments", "iris", lambda m: status_of(m).get("phase") == "Ready", timeout=90
    )
    (url,) = await wait_for_pod_urls(kube, "iris")
    return url


async def wait_evaluated(api: KubeClient, name: str, after: str | None) -> dict[str, Any]:
    """The policy after its next evaluation that judged drift (lastEvaluationTime moved)."""
    return await api.wait_for(
        "driftpolicies",
        name,
        lambda p: status_of(p).get("lastEvaluationTime") not in (None, after),
        timeout=30,
    )


async def wait_baseline(api: KubeClient, name: str) -> dict[str, Any]:
    return await api.wait_for(
        "driftpolicies",
        name,
        lambda p: "baseline" in ((condition(p, "SourceReady") or {}).get("message") or ""),
        timeout=25,
    )


async def retraining_jobs(api: KubeClient, policy: str) -> list[dict[str, Any]]:
    return await api.list("jobs", f"modelops.dev/policy={policy}")


# --- Reading what the operator, the controllers and the kubelet did ---------------------------


def field_managers(obj: dict[str, Any] | None) -> set[str]:
    """The field managers named in ``obj``'s managedFields."""
    return {m["manager"] for m in ((obj or {}).get("metadata") or {}).get("managedFields") or []}


async def wait_for_events(
    kube: KubeClient, involved: str, reasons: set[str], timeout: float = 20.0
) -> list[dict[str, Any]]:
    """The Events about ``involved`` once all of ``reasons`` are among them (Kopf's poster sends
    them in the background)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        events = await kube.events(involved)
        if reasons <= {str(e.get("reason")) for e in events}:
            return events
        if asyncio.get_running_loop().time() > deadline:
            seen = sorted({str(e.get("reason")) for e in events})
            raise AssertionError(f"Events of {involved}: {seen}; missing {reasons - set(seen)}")
        await asyncio.sleep(0.2)


async def job_pods(kube: KubeClient, job: str) -> list[dict[str, Any]]:
    """The pods the Job controller made for ``job``."""
    return await kube.list("pods", f"batch.kubernetes.io/job-name={job}")


def terminated(pod: dict[str, Any], container: str = "trainer") -> dict[str, Any]:
    """The ``state.terminated`` the kubelet reported for ``container`` of ``pod`` (or {})."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == container:
            found: dict[str, Any] = (status.get("state") or {}).get("terminated") or {}
            return found
    return {}


def job_finished(job: dict[str, Any] | None, kind: str = "Complete") -> bool:
    """Whether the Job controller set the ``kind`` (Complete or Failed) condition."""
    return (condition(job, kind) or {}).get("status") == "True"


async def served_version(url: str, model: str) -> str:
    """The version the model server at ``url`` says it serves (V2 model metadata)."""
    async with httpx.AsyncClient(headers={"Connection": "close"}, timeout=10) as client:
        response = await client.get(f"{url}/v2/models/{model}")
        response.raise_for_status()
        versions: list[str] = response.json()["versions"]
    return versions[0]
